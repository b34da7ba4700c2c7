"""Talking to OVSDB: endpoints, one ovsdbapp connection per session, plain-data snapshots.

Everything above this module works on :class:`Snapshot` values (frozen copies of the rows it needs),
so planning and status are pure functions, and only transactions touch the live IDL.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

# python-ovs ships no type information; pyproject's override covers only ovsdbapp.
from ovs import jsonrpc, poller, stream, timeval  # type: ignore[import-untyped]
from ovsdbapp import exceptions as ovsdbapp_exceptions
from ovsdbapp.backend.ovs_idl import connection, idlutils, transaction
from ovsdbapp.schema.open_vswitch import impl_idl

from capture import MirrorscopeError
from mirrorctl.ovs._backoff import Backoff
from mirrorctl.ovs._defaults import DEFAULT_ENDPOINT, ENDPOINT_ENV
from mirrorctl.ovs._errors import (
    OVSDBError,
    OVSDBUnreachableError,
    UsageError,
    VswitchdTimeoutError,
)

log = logging.getLogger(__name__)

SCHEMA = "Open_vSwitch"
_TABLES = ("Open_vSwitch", "Bridge", "Port", "Interface", "Mirror")
_ENDPOINT_RE = re.compile(r"^(?:unix:(?P<path>/.+)|tcp:(?P<host>[^\s]+):(?P<port>\d{1,5}))$")


def parse_endpoint(text: str) -> str:
    """Validate ``unix:PATH`` (absolute) or ``tcp:HOST:PORT``; return it unchanged."""
    match = _ENDPOINT_RE.match(text.strip())
    if match is None or (match["port"] is not None and not 0 < int(match["port"]) < 65536):
        raise UsageError(
            f"invalid OVSDB endpoint {text!r}: use unix:/path/to/db.sock or tcp:HOST:PORT"
        )
    return text.strip()


def resolve_endpoint(value: str | None, environ: Mapping[str, str]) -> str:
    """The endpoint from the flag, else ``$MIRRORSCOPE_OVSDB``, else Kube-OVN's socket."""
    return parse_endpoint(value or environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT)


@dataclass(frozen=True, slots=True)
class InterfaceRow:
    uuid: UUID
    name: str
    type: str
    external_ids: Mapping[str, str]
    ofport: int | None
    error: str
    statistics: Mapping[str, int] = field(default_factory=dict)  # written by ovs-vswitchd
    options: Mapping[str, str] = field(default_factory=dict)  # a tunnel's remote_ip, key, ...


@dataclass(frozen=True, slots=True)
class PortRow:
    uuid: UUID
    name: str
    interfaces: tuple[UUID, ...]


@dataclass(frozen=True, slots=True)
class MirrorRow:
    uuid: UUID
    name: str
    select_all: bool
    select_src_port: frozenset[UUID]
    select_dst_port: frozenset[UUID]
    output_port: UUID | None
    external_ids: Mapping[str, str]
    statistics: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class BridgeRow:
    uuid: UUID
    name: str
    ports: frozenset[UUID]
    mirrors: frozenset[UUID]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A consistent copy of the rows mirrorctl reads, taken under the IDL lock."""

    bridges: Mapping[str, BridgeRow] = field(default_factory=dict)
    ports: Mapping[UUID, PortRow] = field(default_factory=dict)
    interfaces: Mapping[UUID, InterfaceRow] = field(default_factory=dict)
    mirrors: Mapping[UUID, MirrorRow] = field(default_factory=dict)
    seqno: int = 0

    def port_named(self, name: str) -> PortRow | None:
        return next((p for p in self.ports.values() if p.name == name), None)

    def bridge_of_port(self, port: UUID) -> BridgeRow | None:
        return next((b for b in self.bridges.values() if port in b.ports), None)

    def interfaces_of(self, port: PortRow) -> list[InterfaceRow]:
        return [self.interfaces[i] for i in port.interfaces if i in self.interfaces]


def _opt(value: list[Any]) -> Any:
    return value[0] if value else None


def _uuids(rows: list[Any]) -> frozenset[UUID]:
    return frozenset(r.uuid for r in rows)


def snapshot_of(idl: Any) -> Snapshot:
    """Copy the tables out of a live ``ovs.db.idl.Idl`` (caller holds the connection lock)."""
    tables = idl.tables
    bridges = {
        r.name: BridgeRow(r.uuid, r.name, _uuids(r.ports), _uuids(r.mirrors))
        for r in tables["Bridge"].rows.values()
    }
    ports = {
        r.uuid: PortRow(r.uuid, r.name, tuple(i.uuid for i in r.interfaces))
        for r in tables["Port"].rows.values()
    }
    interfaces = {
        r.uuid: InterfaceRow(
            r.uuid,
            r.name,
            r.type,
            dict(r.external_ids),
            _opt(r.ofport),
            _opt(r.error) or "",
            {k: int(v) for k, v in r.statistics.items()},
            dict(r.options),
        )
        for r in tables["Interface"].rows.values()
    }
    mirrors = {}
    for r in tables["Mirror"].rows.values():
        out = _opt(r.output_port)
        mirrors[r.uuid] = MirrorRow(
            uuid=r.uuid,
            name=r.name,
            select_all=bool(r.select_all),
            select_src_port=_uuids(r.select_src_port),
            select_dst_port=_uuids(r.select_dst_port),
            output_port=out.uuid if out is not None else None,
            external_ids=dict(r.external_ids),
            statistics={k: int(v) for k, v in r.statistics.items()},
        )
    return Snapshot(bridges, ports, interfaces, mirrors, idl.change_seqno)


class _Idl(connection.OvsdbIdl):  # type: ignore[misc]
    def is_connected(self) -> bool:
        # python-ovs exposes the session state only through its private session object.
        return bool(self._session.is_connected())


class _Transaction(transaction.Transaction):  # type: ignore[misc]
    """A plain transaction: no wait for ovs-vswitchd to apply it.

    ovsdbapp's vsctl-style transaction blocks the IDL thread until ovs-vswitchd catches up and
    only logs when it does not; mirrorctl waits for the links it needs itself, with a clear error.
    """

    next_cfg: int | None = None

    def pre_commit(self, txn: Any) -> None:
        txn.expected_ifaces = set()  # AddPortCommand records the interfaces it inserts here.
        # ovs-vswitchd copies next_cfg to cur_cfg once it has applied the database: the only
        # way to know that a new mirror is in effect.
        rows = list(self.api.tables["Open_vSwitch"].rows.values())
        if rows:
            rows[0].increment("next_cfg")

    def post_commit(self, txn: Any) -> None:
        super().post_commit(txn)
        value = txn.get_increment_new_value()
        self.next_cfg = value if isinstance(value, int) and value >= 0 else None


class _Backend(impl_idl.OvsdbIdl):  # type: ignore[misc]
    """ovsdbapp keeps one connection per *class*; keep it per instance so sessions coexist."""

    @property
    def ovsdb_connection(self) -> Any:
        return self._instance_connection

    @ovsdb_connection.setter
    def ovsdb_connection(self, conn: Any) -> None:
        self._instance_connection = conn

    def create_transaction(
        self, check_error: bool = False, log_errors: bool = True, **_kwargs: Any
    ) -> _Transaction:
        return _Transaction(
            self, self.ovsdb_connection, check_error=check_error, log_errors=log_errors
        )


def _fetch_schema(endpoint: str, timeout: float) -> dict[str, Any]:
    # ovsdbapp's own fetch blocks without a deadline: a black-holed tcp: endpoint, or a peer
    # that accepts and never answers, would hang the command.
    deadline = timeval.msec() + int(timeout * 1000)
    error, strm = stream.Stream.open_block(stream.Stream.open(endpoint), int(timeout * 1000))
    if error:
        raise OVSDBUnreachableError(endpoint, os.strerror(error))
    rpc = jsonrpc.Connection(strm)
    try:
        request = jsonrpc.Message.create_request("get_schema", [SCHEMA])
        error, reply = rpc.send(request), None
        while not error:
            error, reply = rpc.recv()
            if error == errno.EAGAIN:
                if timeval.msec() >= deadline:
                    raise OVSDBUnreachableError(endpoint, f"no answer within {timeout:g} s")
                error, reply = 0, None
                rpc.run()
                waiter = poller.Poller()
                rpc.wait(waiter)
                rpc.recv_wait(waiter)
                waiter.timer_wait_until(deadline)
                waiter.block()
                continue
            if reply is not None and reply.id == request.id:
                break
    finally:
        rpc.close()
    if error or reply is None:
        raise OVSDBUnreachableError(endpoint, os.strerror(error) if error else "connection closed")
    if reply.error:
        raise OVSDBError(endpoint, f"no {SCHEMA} database here ({reply.error})")
    result: dict[str, Any] = reply.result
    return result


class OVSDBSession:
    """One live connection (ovsdbapp ``Connection`` thread + IDL). Close it, or use ``with``."""

    def __init__(self, endpoint: str, api: Any, conn: Any) -> None:
        self.endpoint = endpoint
        self.api = api
        self._conn = conn
        self.pending_cfg: int | None = None

    def wait_applied(
        self,
        timeout: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        """Wait until ovs-vswitchd has applied this session's last transaction."""
        if self.pending_cfg is None:
            return
        deadline = clock() + timeout
        while True:
            with self._conn.lock:
                rows = list(self._conn.idl.tables["Open_vSwitch"].rows.values())
                cur = int(rows[0].cur_cfg) if rows else 0
            if cur >= self.pending_cfg:
                self.pending_cfg = None
                return
            if clock() >= deadline:
                raise VswitchdTimeoutError(self.endpoint, timeout)
            sleep(0.02)

    @property
    def change_seqno(self) -> int:
        return int(self._conn.idl.change_seqno)

    def is_connected(self) -> bool:
        return bool(self._conn.idl.is_connected())

    def snapshot(self) -> Snapshot:
        with self._conn.lock:
            return snapshot_of(self._conn.idl)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """An ovsdbapp transaction committed on exit; failures become mirrorctl errors."""
        try:
            with self.api.transaction(check_error=True, log_errors=False) as txn:
                yield txn
            if txn.next_cfg is not None:
                self.pending_cfg = txn.next_cfg
        except ovsdbapp_exceptions.TimeoutException as exc:
            raise OVSDBUnreachableError(
                self.endpoint, f"no answer within {self._conn.timeout:g} s"
            ) from exc
        except idlutils.RowNotFound as exc:
            raise OVSDBError(self.endpoint, f"{exc} (changed concurrently, try again)") from exc
        except RuntimeError as exc:
            raise OVSDBError(self.endpoint, str(exc)) from exc

    def close(self) -> None:
        if not self._conn.stop(timeout=self._conn.timeout):
            log.warning("OVSDB connection thread for %s did not stop in time", self.endpoint)

    def __enter__(self) -> OVSDBSession:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def connect(endpoint: str, *, timeout: float = 5.0) -> OVSDBSession:
    """Open a session and wait for the first full copy of the tables mirrorctl reads."""
    helper = idlutils.create_schema_helper(_fetch_schema(endpoint, timeout))
    for table in _TABLES:
        helper.register_table(table)
    idl = _Idl(endpoint, helper)
    conn = connection.Connection(idl, timeout=timeout)
    api = _Backend(conn, start=False)
    try:
        conn.start()
    except ovsdbapp_exceptions.TimeoutException as exc:
        idl.close()
        raise OVSDBUnreachableError(endpoint, f"no database dump within {timeout:g} s") from exc
    return OVSDBSession(endpoint, api, conn)


Connector = Callable[[str], OVSDBSession]


def follow(
    endpoint: str,
    on_change: Callable[[OVSDBSession, Snapshot], None],
    stop: threading.Event,
    *,
    poll: float = 0.1,
    tick: float = 0.5,
    connector: Connector | None = None,
    backoff: Backoff | None = None,
    sleep: Callable[[float], object] | None = None,
) -> None:
    """Call ``on_change`` after every IDL change (and at least every ``tick`` s) until ``stop``.

    Reconnects with backoff when the server goes away, logging each retry; a new connection always
    triggers ``on_change``, so callers see the state of a restarted ovsdb-server at once.
    """
    connector = connector or connect
    backoff = backoff or Backoff()
    sleep = sleep or stop.wait
    session: OVSDBSession | None = None
    try:
        while not stop.is_set():
            if session is None:
                try:
                    session = connector(endpoint)
                except OVSDBUnreachableError as exc:
                    delay = backoff.next()
                    log.warning(
                        "OVSDB at %s unreachable (%s), retrying in %gs",
                        endpoint,
                        exc.reason,
                        delay,
                    )
                    sleep(delay)
                    continue
                log.info("connected to OVSDB at %s", endpoint)
                backoff.reset()
                seen, waited = -1, tick
            if not session.is_connected():
                log.warning("OVSDB at %s dropped the connection, reconnecting", endpoint)
                session.close()
                session = None
                continue
            seqno = session.change_seqno
            if seqno != seen or waited >= tick:
                seen, waited = seqno, 0.0
                try:
                    on_change(session, session.snapshot())
                except OVSDBUnreachableError as exc:
                    log.warning("%s; reconnecting", exc)
                    session.close()
                    session = None
                    continue
                except MirrorscopeError as exc:
                    # A refused transaction or a link that is not there yet: try again next tick.
                    log.warning("%s; retrying", exc)
            sleep(poll)
            waited += poll
    finally:
        if session is not None:
            session.close()
