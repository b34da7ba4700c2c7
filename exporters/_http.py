"""The metrics HTTP endpoint: ``/metrics``, ``/healthz`` and ``/readyz``, in a background thread.

``/healthz`` answers as long as the process serves HTTP (a liveness probe); ``/readyz`` asks the
service whether capture runs and OVSDB answers (a readiness probe), so Kubernetes stops routing
scrapes to a pod that cannot see traffic without restarting it.
"""

from __future__ import annotations

import gzip
import ipaddress
import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from exporters._errors import ListenError

log = logging.getLogger(__name__)

#: Default listen address. The Prometheus exporter range 9100-9999 is fully allocated, so we sit
#: beside Retina's agent (10093) on a port that IANA, Kubernetes (10250-10259), Kube-OVN
#: (10660-10665) and Hubble (9965) do not use.
DEFAULT_LISTEN = "0.0.0.0:10097"


def parse_listen(listen: str) -> tuple[str, int]:
    """``ADDR:PORT``, ``[V6ADDR]:PORT`` or ``:PORT`` (all IPv4 addresses) to (host, port)."""
    host, sep, port_s = listen.rpartition(":")
    if not sep or not port_s.isdigit() or int(port_s) > 65535:
        raise ListenError(listen, "expected ADDR:PORT with a port from 0 to 65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host or "0.0.0.0"  # noqa: S104 - ":PORT" means every address, as in Go's net.Listen
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ListenError(listen, f"{host!r} is not an IP address") from None
    return host, int(port_s)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr: tuple[str, int], app: MetricsServer) -> None:
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.app = app
        super().__init__(addr, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        app = self.server.app
        if path == "/metrics":
            try:
                body = generate_latest(app.registry)
            except Exception as exc:  # a collector bug must not kill the endpoint
                log.exception("collecting metrics failed")
                self._reply(500, f"collecting metrics failed: {exc}\n".encode())
                return
            if "gzip" in self.headers.get("Accept-Encoding", ""):
                # Prometheus asks for gzip; a few MB of text shrink ~10x, level 1 keeps it cheap
                self._reply(200, gzip.compress(body, 1), CONTENT_TYPE_PLAIN_0_0_4, "gzip")
            else:
                self._reply(200, body, CONTENT_TYPE_PLAIN_0_0_4)
        elif path == "/healthz":
            self._reply(200, b"ok\n")
        elif path == "/readyz":
            try:
                ready = app.ready()
            except Exception as exc:  # a failing probe means "not ready", said with the reason
                self._reply(503, f"not ready: {exc}\n".encode())
                return
            if ready:
                self._reply(200, b"ready\n")
            else:
                self._reply(503, b"not ready: capture not running or OVSDB unreachable\n")
        else:
            self._reply(404, f"no such path {path!r}: try /metrics, /healthz or /readyz\n".encode())

    def _reply(
        self,
        code: int,
        body: bytes,
        ctype: str = "text/plain; charset=utf-8",
        encoding: str | None = None,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        if encoding is not None:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class MetricsServer:
    """Serves ``registry`` over HTTP until ``stop()``; usable as a context manager."""

    def __init__(
        self,
        registry: CollectorRegistry,
        listen: str = DEFAULT_LISTEN,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.registry = registry
        self.listen = listen
        self.ready = ready
        self._bind = parse_listen(listen)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port): the real port when ``listen`` asked for port 0."""
        if self._server is None:
            raise RuntimeError("MetricsServer.address before start()")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> MetricsServer:
        try:
            self._server = _Server(self._bind, self)
        except OSError as exc:
            raise ListenError(self.listen, exc.strerror or str(exc)) from exc
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )
        self._thread.start()
        log.info("serving metrics on http://%s:%d/metrics", *self.address)
        return self

    def stop(self) -> None:
        """Stop accepting, close the socket and wait for the serving thread."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
