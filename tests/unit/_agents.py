"""Stand-in agents for the fan-out's tests: real HTTP servers on loopback that answer the
service's pcap endpoints with real pcapng bodies (the service's own writer), and misbehave on
demand: an error status, a connection cut mid-way, no answer at all."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from exporters._pcapindex import address_key
from exporters._pcapngout import pcapng_chunks
from exporters._pcapquery import StoredFrame

PODS = {"10.16.0.10": "default/web-0", "10.16.0.11": "default/db-0"}


def frame(node: str, ts_ns: int, size: int = 60, src: str = "10.16.0.10") -> StoredFrame:
    """An Ethernet frame of ``size`` bytes (its first bytes say node and time, so each frame of
    a test is unique) from ``src`` to db-0."""
    head = f"{node}@{ts_ns}".encode()
    data = (head + b"\0" * size)[:size]
    return StoredFrame(ts_ns, data, size, 1, node, address_key(src), address_key("10.16.0.11"))


@dataclass
class Behaviour:
    """What the agent answers: ``frames`` (pcapng, chunked), or ``status``; ``cut_after`` closes
    the connection after that many frames; ``gap_s`` pauses between frames (a live stream)."""

    frames: Sequence[StoredFrame] = ()
    status: int = 200
    cut_after: int | None = None
    gap_s: float = 0.0
    requests: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _AgentServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        b = self.server.behaviour
        b.requests.append(self.path)
        b.headers.append(dict(self.headers.items()))
        if b.status != 200:
            body = b'{"detail": "not here"}' if b.status >= 400 else b""
            self.send_response(b.status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-pcapng")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in _chunks(b):
            if chunk is None:  # cut: no terminating chunk, the connection just closes
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


def _chunks(b: Behaviour) -> Iterator[bytes | None]:
    def frames() -> Iterator[StoredFrame | None]:
        for n, f in enumerate(b.frames):
            if b.cut_after is not None and n == b.cut_after:
                return
            if b.gap_s:
                time.sleep(b.gap_s)
            yield f
            yield None  # flush each frame: a live stream

    yield from pcapng_chunks(frames(), pod_of=PODS.get)
    if b.cut_after is not None:
        yield None


class _AgentServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, behaviour: Behaviour) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.behaviour = behaviour


class Agent:
    """A stand-in agent serving ``behaviour`` until ``stop``."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self._server = _AgentServer(behaviour)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Silent:
    """A port that accepts connections and never answers (a hung agent)."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def stop(self) -> None:
        self._sock.close()


def closed_port_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"
