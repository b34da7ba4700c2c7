"""The lab's OVSDB content, written through ovsdbapp exactly as kube-ovn-cni lays it out."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ovsdbapp.backend.ovs_idl import connection, transaction
from ovsdbapp.schema.open_vswitch import impl_idl

from mirrorctl.lab._errors import LabError
from mirrorctl.lab._plan import interface_external_ids, node_port_external_ids
from mirrorctl.lab._state import KubeOvnMirror, LabState
from mirrorctl.ovs import OVSDBUnreachableError

log = logging.getLogger(__name__)

TIMEOUT = 10
KUBE_OVN_MIRROR_PORT = "mirror0"
KUBE_OVN_MIRROR_NAME = "m0"


@contextmanager
def connect(endpoint: str, timeout: int = TIMEOUT) -> Iterator[Any]:
    """An ovsdbapp Open_vSwitch API on ``endpoint``; the IDL thread stops on exit."""
    # ovsdbapp's Backend keeps its connection in a class attribute and the first one ever set
    # wins: a second lab (or a reconnect) would silently talk to the first OVSDB. A fresh
    # subclass per connection gives each API object its own.
    api_class = type("LabOvsdbIdl", (impl_idl.OvsdbIdl,), {"_ovsdb_connection": None})
    try:
        idl = connection.OvsdbIdl.from_server(endpoint, "Open_vSwitch")
        conn = connection.Connection(idl=idl, timeout=timeout)
        api = api_class(conn)
    except Exception as exc:  # ovsdbapp raises bare Exception/TimeoutException on connect
        raise OVSDBUnreachableError(endpoint, str(exc)) from exc
    try:
        yield api
    finally:
        conn.stop(timeout=timeout)


@contextmanager
def ovsdb_errors(endpoint: str, what: str) -> Iterator[None]:
    """Turn ovsdbapp's exceptions (plain Exception subclasses: RowNotFound, TimeoutException,
    transaction errors) into one LabError line that names the endpoint."""
    try:
        yield
    except LabError:
        raise
    except Exception as exc:
        raise LabError(f"OVSDB at {endpoint}: {what} failed: {exc}") from exc


def ensure_root_row(api: Any) -> None:
    """A fresh database has no Open_vSwitch row; ovs-vsctl's ``init`` creates it.

    ovsdbapp's vsctl-style transaction bumps ``next_cfg`` on that very row, so the first
    insert goes through the plain transaction class.
    """
    if api.tables["Open_vSwitch"].rows:
        return
    txn = transaction.Transaction(api, api.ovsdb_connection, TIMEOUT, check_error=True)
    txn.add(api.db_create("Open_vSwitch"))
    txn.commit()


def configure(api: Any, state: LabState) -> None:
    """Bridge, node port and pod ports with Kube-OVN's external_ids, in one transaction."""
    with api.transaction(check_error=True) as txn:
        txn.add(api.add_br(state.bridge, may_exist=True, datapath_type="netdev"))
        node = state.node_port
        txn.add(api.add_port(state.bridge, node.name, may_exist=True))
        txn.add(
            api.db_set(
                "Interface",
                node.name,
                ("type", "internal"),
                ("external_ids", node_port_external_ids(node)),
            )
        )
        for pod in state.pods:
            txn.add(api.add_port(state.bridge, pod.host_veth, may_exist=True))
            txn.add(
                api.db_set(
                    "Interface", pod.host_veth, ("external_ids", interface_external_ids(pod))
                )
            )
    if state.kube_ovn_mirror is not KubeOvnMirror.NONE:
        _kube_ovn_mirror(api, state)


def unplug(api: Any, state: LabState, ports: list[str]) -> None:
    """Delete these ports from the bridge (if there), so that ``configure`` adds them afresh."""
    if not ports:
        return
    with api.transaction(check_error=True) as txn:
        for port in ports:
            txn.add(api.del_port(port, bridge=state.bridge, if_exists=True))


def _kube_ovn_mirror(api: Any, state: LabState) -> None:
    """What kube-ovn-cni writes at start: internal port mirror0 and a Mirror ``m0`` into it."""
    with api.transaction(check_error=True) as txn:
        txn.add(api.add_port(state.bridge, KUBE_OVN_MIRROR_PORT, may_exist=True))
        txn.add(api.db_set("Interface", KUBE_OVN_MIRROR_PORT, ("type", "internal")))
    existing = api.db_find(
        "Mirror", ("name", "=", KUBE_OVN_MIRROR_NAME), columns=["_uuid"]
    ).execute(check_error=True)
    if existing:
        return
    port_uuid = api.db_get("Port", KUBE_OVN_MIRROR_PORT, "_uuid").execute(check_error=True)
    columns: dict[str, Any] = {"name": KUBE_OVN_MIRROR_NAME, "output_port": port_uuid}
    if state.kube_ovn_mirror is KubeOvnMirror.GLOBAL:
        columns["select_all"] = True
    with api.transaction(check_error=True) as txn:
        mirror = txn.add(api.db_create("Mirror", **columns))
        txn.add(api.db_add("Bridge", state.bridge, "mirrors", mirror))


def ofports(api: Any, names: list[str]) -> dict[str, int]:
    """OpenFlow port numbers ovs-vswitchd assigned; -1 or missing means it could not open it."""
    rows = api.db_list("Interface", names, columns=["name", "ofport"], if_exists=True)
    result: dict[str, int] = {}
    for row in rows.execute(check_error=True):
        ofport = row["ofport"]
        result[row["name"]] = ofport[0] if isinstance(ofport, list) and ofport else ofport or -1
    return result


def interface_external_ids_of(api: Any, name: str) -> dict[str, str]:
    try:
        ids = api.db_get("Interface", name, "external_ids").execute(check_error=True)
    except Exception as exc:  # ovsdbapp raises RowNotFound (a plain Exception subclass)
        raise LabError(f"no Interface {name} in OVSDB: {exc}") from exc
    return dict(ids)
