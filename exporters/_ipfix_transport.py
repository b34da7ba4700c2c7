"""Getting IPFIX messages to one collector: UDP or TCP, from a bounded queue, in a thread.

The capture thread only appends message bodies to a queue; a sender thread adds the header (the
export time is when it leaves) and writes it. When the collector is unreachable the sender
counts the error, waits (doubling up to ``RETRY_MAX_S``) and tries again with the same message;
when the queue is full the oldest body is dropped and counted, so capture never waits for a
collector. Sequence numbers are given at enqueue time, so a dropped body leaves the gap RFC 7011
§10.3.2 tells collectors to report as loss. Templates go first on every connection and, over
UDP, again every ``template_refresh_s`` (RFC 7011 §8.4).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass

from exporters._errors import ExporterError
from exporters._ipfix_message import Body, message

log = logging.getLogger(__name__)

DEFAULT_PORT = 4739  # IANA's IPFIX port
RETRY_MIN_S = 0.5
RETRY_MAX_S = 5.0


class IpfixTargetError(ExporterError):
    """An ``--ipfix`` value that is not ``[udp:|tcp:]HOST:PORT``."""

    exit_code = 2

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(
            f"--ipfix {value!r}: {reason} (expected HOST:PORT, udp:HOST:PORT or tcp:HOST:PORT; "
            "IPv6 as [ADDR]:PORT)"
        )
        self.value = value


@dataclass(frozen=True, slots=True)
class IpfixTarget:
    """One collector: transport, host and port; ``str()`` is its metrics label."""

    transport: str  # "udp" or "tcp"
    host: str
    port: int

    @classmethod
    def parse(cls, value: str) -> IpfixTarget:
        transport, rest = "udp", value
        for prefix in ("udp:", "tcp:"):
            if value.startswith(prefix):
                transport, rest = prefix[:-1], value[len(prefix) :]
        host, sep, port_s = rest.rpartition(":")
        if not sep or not host:
            raise IpfixTargetError(value, "no port")
        if not port_s.isdigit() or not 0 < int(port_s) <= 65535:
            raise IpfixTargetError(value, f"port {port_s!r} is not 1 to 65535")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        return cls(transport, host, int(port_s))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class SenderCounters:
    """One collector's counts so far (cumulative, for Prometheus counters)."""

    records: int = 0  # data records in messages written to the socket
    messages: int = 0  # messages written, templates included
    send_errors: int = 0  # failed connects and writes
    dropped_records: int = 0  # records whose message the full queue dropped
    queued: int = 0  # messages waiting now


@dataclass(slots=True)
class _Queued:
    body: Body
    sequence: int


class IpfixSender:
    """Sends message bodies to one collector from its own thread; ``close`` drains and stops."""

    def __init__(
        self,
        target: IpfixTarget,
        templates: bytes,
        *,
        domain: int = 0,
        queue_max: int = 4096,
        template_refresh_s: float = 60.0,
    ) -> None:
        self.target = target
        self._templates = templates
        self._domain = domain
        self._queue: deque[_Queued] = deque()
        self._queue_max = queue_max
        self._refresh_s = template_refresh_s
        self._cond = threading.Condition()
        self._sequence = 0
        self._closing = False
        self._records = self._messages = self._errors = self._dropped = 0
        self._sock: socket.socket | None = None
        self._addr: tuple[str, int] | None = None
        self._templates_at = 0.0
        self._thread = threading.Thread(target=self._run, name=f"ipfix {target}", daemon=True)
        self._thread.start()

    def counters(self) -> SenderCounters:
        with self._cond:
            return SenderCounters(
                self._records, self._messages, self._errors, self._dropped, len(self._queue)
            )

    def send(self, bodies: list[Body]) -> None:
        """Queue *bodies* (never blocks); the oldest go when the queue is full."""
        with self._cond:
            for body in bodies:
                if len(self._queue) >= self._queue_max:
                    self._dropped += self._queue.popleft().body.records
                self._queue.append(_Queued(body, self._sequence))
                self._sequence += body.records
            self._cond.notify()

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (for at most *timeout* seconds), then close the connection."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)
        with self._cond:
            if self._queue:
                left = sum(q.body.records for q in self._queue)
                log.warning("IPFIX %s: %d records not sent at close", self.target, left)
                self._dropped += left
                self._queue.clear()
        self._disconnect()

    # ------------------------------------------------------------------ sender thread
    def _run(self) -> None:
        delay = RETRY_MIN_S
        while True:
            with self._cond:
                if not self._queue and not self._closing:
                    self._cond.wait(timeout=self._refresh_s / 4)
                if not self._queue and self._closing:
                    return
                head = self._queue[0] if self._queue else None
                sequence = head.sequence if head is not None else self._sequence
            try:
                self._send_templates_if_due(sequence)
                if head is not None:
                    self._write(head.body.sets, sequence, head.body.records)
                    with self._cond:
                        # a full queue may have dropped it meanwhile: pop only that one
                        if self._queue and self._queue[0] is head:
                            self._queue.popleft()
                delay = RETRY_MIN_S
            except OSError as e:
                with self._cond:
                    self._errors += 1
                    closing = self._closing
                log.warning("IPFIX %s: %s; retrying in %.1f s", self.target, e, delay)
                self._disconnect()
                if closing:
                    return  # close() counts what is left as dropped
                with self._cond:
                    self._cond.wait(timeout=delay)
                delay = min(delay * 2, RETRY_MAX_S)

    def _send_templates_if_due(self, sequence: int) -> None:
        fresh = self._sock is None
        if fresh:
            self._connect()
        due = self.target.transport == "udp" and (
            time.monotonic() - self._templates_at >= self._refresh_s
        )
        if fresh or due:
            self._write(self._templates, sequence, 0)
            self._templates_at = time.monotonic()

    def _connect(self) -> None:
        kind = socket.SOCK_STREAM if self.target.transport == "tcp" else socket.SOCK_DGRAM
        family, _, _, _, addr = socket.getaddrinfo(self.target.host, self.target.port, 0, kind)[0]
        sock = socket.socket(family, kind)
        try:
            if kind == socket.SOCK_STREAM:
                sock.settimeout(5.0)
                sock.connect(addr)
        except OSError:
            sock.close()
            raise
        self._sock, self._addr = sock, (str(addr[0]), int(addr[1]))

    def _write(self, sets: bytes, sequence: int, records: int) -> None:
        sock = self._sock
        if sock is None or self._addr is None:
            raise ConnectionError("not connected")
        data = message(sets, export_s=int(time.time()), sequence=sequence, domain=self._domain)
        if self.target.transport == "tcp":
            sock.sendall(data)
        else:
            sock.sendto(data, self._addr)
        with self._cond:
            self._messages += 1
            self._records += records

    def _disconnect(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
