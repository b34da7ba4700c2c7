"""The service's HTTP listener: an ASGI app served by uvicorn in a background thread.

One asyncio loop in one thread holds every connection, so idle or slow clients cost a few KB
each instead of a thread each (the standard library's ThreadingHTTPServer made 3,006 threads and
466 MB RSS for 3,000 idle sockets). The socket is bound here, before the thread starts, so a busy
port is a ``ListenError`` from ``start()`` rather than a log line from a dying thread.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

from exporters._errors import ExporterError, ListenError
from exporters._listen import DEFAULT_LISTEN, TlsFiles, parse_listen

log = logging.getLogger(__name__)

#: Connections waiting to be accepted; uvicorn's own default.
_BACKLOG = 2048
#: On stop, open responses (a long download) get this long before they are cut.
_GRACE_S = 2
_START_TIMEOUT_S = 10.0


class HttpServer:
    """Serves ``app`` on ``listen`` until ``stop()``; usable as a context manager.

    With ``tls`` the listener speaks only HTTPS; the files are read at ``start()``, so a bad
    certificate or key is an ``ExporterError`` there, not a dead thread.
    """

    def __init__(
        self, app: ASGIApp, listen: str = DEFAULT_LISTEN, *, tls: TlsFiles | None = None
    ) -> None:
        self.app = app
        self.listen = listen
        self.tls = tls
        self._bind = parse_listen(listen)
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port): the real port when ``listen`` asked for port 0."""
        if self._sock is None:
            raise RuntimeError("HttpServer.address before start()")
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    def start(self) -> HttpServer:
        self._sock = _bind(self._bind, self.listen)
        tls = self.tls
        config = uvicorn.Config(
            self.app,
            loop="asyncio",
            http="h11",
            ws="none",
            lifespan="off",
            log_config=None,  # the service's logging configuration applies
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=_GRACE_S,
            ssl_certfile=tls.cert if tls is not None else None,
            ssl_keyfile=tls.key if tls is not None else None,
        )
        if tls is not None:
            try:
                config.load()  # builds the SSL context: a bad file fails here, in the caller
            except (OSError, ValueError) as exc:
                self.stop()
                raise ExporterError(f"TLS certificate {tls.cert} / key {tls.key}: {exc}") from exc
        server = uvicorn.Server(config)
        self._server = server
        sock = self._sock
        self._thread = threading.Thread(
            target=lambda: server.run(sockets=[sock]), name="mirrorscope-http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ExporterError(f"the HTTP server on {self.listen} did not start (see log)")
            time.sleep(0.005)
        log.info("serving %s://%s:%d/", self.scheme, *self.address)
        return self

    def stop(self) -> None:
        """Stop accepting, close every connection and the socket, and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join()
        if self._sock is not None:
            self._sock.close()
        self._server = None
        self._thread = None
        self._sock = None

    def __enter__(self) -> HttpServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _bind(addr: tuple[str, int], listen: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(_BACKLOG)
    except OSError as exc:
        sock.close()
        raise ListenError(listen, exc.strerror or str(exc)) from exc
    sock.setblocking(False)
    return sock
