"""The listener's API on loopback: the token, open probes, 400s that name the parameter, the
OpenAPI description, /api/v1/status and the download concurrency limit."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import pytest
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from prometheus_client import CollectorRegistry, Counter
from starlette.background import BackgroundTask

from exporters import (
    OPENAPI_PATH,
    CaptureHealth,
    ConcurrencyLimit,
    HttpServer,
    build_app,
    status_router,
)

TOKEN = "s3cret-token-for-tests"  # noqa: S105 - a test fixture, guards nothing real


class Reply:
    def __init__(self, code: int, headers: dict[str, str], body: bytes) -> None:
        self.code = code
        self.headers = headers
        self.body = body

    def json(self) -> dict[str, object]:
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value


def get(server: HttpServer, path: str, token: str | None = None, timeout: float = 5) -> Reply:
    host, port = server.address
    req = urllib.request.Request(f"http://{host}:{port}{path}")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback
            return Reply(resp.status, dict(resp.headers), resp.read())
    except urllib.error.HTTPError as err:
        return Reply(err.code, dict(err.headers), err.read())


def _echo_router() -> APIRouter:
    """A stand-in for a later endpoint with typed query parameters."""
    router = APIRouter(prefix="/api/v1")

    @router.get("/echo")
    def echo(limit: Annotated[int, Query(ge=1, le=100)], since: str = "5m") -> dict[str, object]:
        return {"limit": limit, "since": since}

    return router


@pytest.fixture
def registry() -> CollectorRegistry:
    reg = CollectorRegistry()
    Counter("mirrorscope_test_things", "Things.", registry=reg).inc(3)
    return reg


@pytest.fixture
def locked(registry: CollectorRegistry) -> Iterator[HttpServer]:
    health = CaptureHealth(received=42, kernel_dropped=1, malformed={"bad_ip": 2}, duplicates=5)
    routers = [status_router("node-a", lambda: health), _echo_router()]
    app = build_app(registry, token=TOKEN, routers=routers)
    with HttpServer(app, "127.0.0.1:0") as srv:
        yield srv


@pytest.mark.parametrize("path", ["/api/v1/status", OPENAPI_PATH, "/api/v1/nothing"])
def test_without_the_token_every_path_but_metrics_and_probes_is_401(
    locked: HttpServer, path: str
) -> None:
    """No Authorization header: 401 with WWW-Authenticate: Bearer and a body saying what to send."""
    reply = get(locked, path)
    assert reply.code == 401
    assert reply.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in str(reply.json()["detail"])


@pytest.mark.parametrize("token", ["wrong", TOKEN + "x", TOKEN[:-1], ""])
def test_a_wrong_token_is_401_invalid_token(locked: HttpServer, token: str) -> None:
    """A token that differs (longer, shorter, empty) is refused like a missing one."""
    reply = get(locked, "/api/v1/status", token=token)
    assert reply.code == 401
    assert reply.headers["www-authenticate"].startswith("Bearer")


def test_the_token_opens_the_api(locked: HttpServer) -> None:
    """With 'Authorization: Bearer <token>' the API answers."""
    assert get(locked, "/api/v1/status", token=TOKEN).code == 200


@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/readyz"])
def test_metrics_and_probes_stay_open_with_a_token_configured(
    locked: HttpServer, path: str
) -> None:
    """Prometheus and the kubelet reach /metrics, /healthz and /readyz without credentials."""
    assert get(locked, path).code == 200


def test_status_reports_node_uptime_readiness_and_capture_counters(locked: HttpServer) -> None:
    """/api/v1/status: the node's name, seconds since start, and the capture's health counters."""
    status = get(locked, "/api/v1/status", token=TOKEN).json()
    assert status["node"] == "node-a"
    assert status["ready"] is True
    assert isinstance(status["uptime_s"], float)
    assert 0 <= status["uptime_s"] < 60
    assert status["capture"] == {
        "received": 42,
        "kernel_dropped": 1,
        "duplicates": 5,
        "malformed": {"bad_ip": 2},
    }


@pytest.mark.parametrize(
    ("query", "parameter"),
    [("limit=many", "limit"), ("limit=0", "limit"), ("since=5m", "limit")],
)
def test_a_bad_parameter_is_400_naming_it_and_why(
    locked: HttpServer, query: str, parameter: str
) -> None:
    """Validation failures are 400 (not FastAPI's 422) and name the parameter with the reason."""
    reply = get(locked, f"/api/v1/echo?{query}", token=TOKEN)
    assert reply.code == 400
    body = reply.json()
    assert f"'{parameter}'" in str(body["detail"])
    errors = body["errors"]
    assert isinstance(errors, list)
    assert errors[0]["parameter"] == parameter
    assert errors[0]["in"] == "query"
    assert errors[0]["reason"]


def test_a_good_parameter_reaches_the_endpoint(locked: HttpServer) -> None:
    """The plugged-in router serves its typed parameters."""
    reply = get(locked, "/api/v1/echo?limit=7", token=TOKEN)
    assert (reply.code, reply.json()) == (200, {"limit": 7, "since": "5m"})


def test_openapi_describes_the_routes_the_token_and_400s(locked: HttpServer) -> None:
    """/api/v1/openapi.json lists every endpoint, the bearer scheme on the API, 400 for bad
    parameters and no 422."""
    doc = get(locked, OPENAPI_PATH, token=TOKEN).json()
    paths = doc["paths"]
    assert isinstance(paths, dict)
    assert {"/metrics", "/healthz", "/readyz", "/api/v1/status", "/api/v1/echo"} <= set(paths)
    echo = paths["/api/v1/echo"]["get"]
    assert "400" in echo["responses"]
    assert "422" not in json.dumps(doc)
    assert echo["security"] == [{"bearer": []}]
    assert "security" not in paths["/metrics"]["get"]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"  # type: ignore[index]


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/api/v1/docs"])
def test_no_html_docs_are_served(locked: HttpServer, path: str) -> None:
    """FastAPI's script-loading /docs and /redoc pages are off; the JSON description remains."""
    assert get(locked, path, token=TOKEN).code == 404


def test_without_a_token_the_api_is_open(registry: CollectorRegistry) -> None:
    """token=None serves the API to anyone (the service warns at start)."""
    app = build_app(registry, token=None, routers=[status_router("n", CaptureHealth)])
    with HttpServer(app, "127.0.0.1:0") as srv:
        assert get(srv, "/api/v1/status").code == 200


def test_an_empty_token_is_refused_rather_than_opening_the_api(
    registry: CollectorRegistry,
) -> None:
    """An empty string is no token: building the app fails instead of letting '' through."""
    with pytest.raises(ValueError, match="empty token"):
        build_app(registry, token="")


def test_a_slow_collection_does_not_hold_up_other_requests() -> None:
    """/metrics collects in a worker thread: while a scrape takes 1.5 s, /healthz answers now."""

    class Slow:
        def collect(self) -> list[object]:
            time.sleep(1.5)
            return []

    reg = CollectorRegistry()
    reg.register(Slow())  # type: ignore[arg-type]
    with HttpServer(build_app(reg, token=None), "127.0.0.1:0") as srv:
        scrape = threading.Thread(target=get, args=(srv, "/metrics"))
        scrape.start()
        time.sleep(0.2)
        started = time.monotonic()
        assert get(srv, "/healthz").code == 200
        took = time.monotonic() - started
        scrape.join()
    assert took < 0.5


def _stream_router(limit: ConcurrencyLimit, release: asyncio.Event) -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.get("/download")
    async def download() -> StreamingResponse:
        slot = limit.acquire()

        async def body() -> AsyncIterator[bytes]:
            yield b"first\n"
            await release.wait()
            yield b"last\n"

        return StreamingResponse(slot.hold(body()), background=BackgroundTask(slot.release))

    return router


def test_concurrent_downloads_beyond_the_limit_are_429_with_a_reason(
    registry: CollectorRegistry,
) -> None:
    """With a limit of 1, a second download while one streams is 429 naming the limit; once the
    first ends a new one is served."""
    limit = ConcurrencyLimit(1, "pcap downloads")
    release = asyncio.Event()
    app = build_app(registry, token=None, routers=[_stream_router(limit, release)])
    with HttpServer(app, "127.0.0.1:0") as srv:
        host, port = srv.address
        first = socket.create_connection((host, port), timeout=5)
        first.sendall(b"GET /api/v1/download HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"200 OK" in first.recv(4096)  # headers and the first chunk are out
        busy = get(srv, "/api/v1/download")
        assert busy.code == 429
        assert busy.headers["retry-after"] == "1"
        assert "too many concurrent pcap downloads: 1 of 1" in str(busy.json()["detail"])
        first.close()  # the client leaves mid-stream: its slot must come back
        deadline = time.monotonic() + 5
        while limit.in_use and time.monotonic() < deadline:
            time.sleep(0.05)
        assert limit.in_use == 0
        # a later download gets the slot; the event loop owns ``release``, so set it from there
        done = threading.Timer(0.3, lambda: _set_on_loop(release))
        done.start()
        reply = get(srv, "/api/v1/download")
        done.join()
    assert (reply.code, reply.body) == (200, b"first\nlast\n")
    assert limit.in_use == 0


def _set_on_loop(event: asyncio.Event) -> None:
    loop = getattr(event, "_loop", None)
    assert loop is not None, "the event is bound to the server's loop once awaited"
    loop.call_soon_threadsafe(event.set)


def test_a_limit_below_one_is_refused() -> None:
    """ConcurrencyLimit(0) would refuse every download: it is an error at construction."""
    with pytest.raises(ValueError, match="at least 1"):
        ConcurrencyLimit(0)


def test_stop_returns_promptly_with_idle_connections_open(registry: CollectorRegistry) -> None:
    """stop() closes connections that never sent a request instead of waiting for them."""
    srv = HttpServer(build_app(registry, token=None), "127.0.0.1:0").start()
    host, port = srv.address
    idle = [socket.create_connection((host, port), timeout=5) for _ in range(50)]
    try:
        started = time.monotonic()
        srv.stop()
        took = time.monotonic() - started
    finally:
        for s in idle:
            s.close()
    assert took < 3.0
