"""The service listener on loopback: /metrics, /healthz, /readyz, 404s, clean stop."""

from __future__ import annotations

import gzip
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter

from exporters import DEFAULT_LISTEN, HttpServer, ListenError, build_app, parse_listen


def metrics_server(
    registry: CollectorRegistry,
    listen: str = "127.0.0.1:0",
    ready: Callable[[], bool] = lambda: True,
) -> HttpServer:
    """The listener as the service builds it without a token: /metrics and the probes."""
    return HttpServer(build_app(registry, ready, token=None), listen)


def get(server: HttpServer, path: str) -> tuple[int, str, str]:
    host, port = server.address
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


@pytest.fixture
def registry() -> CollectorRegistry:
    reg = CollectorRegistry()
    Counter("mirrorscope_test_things", "Things.", registry=reg).inc(3)
    return reg


@pytest.fixture
def readiness() -> list[bool]:
    return [True]


@pytest.fixture
def server(registry: CollectorRegistry, readiness: list[bool]) -> Iterator[HttpServer]:
    with metrics_server(registry, ready=lambda: readiness[0]) as srv:
        yield srv


def test_metrics_serves_the_registry_in_text_format(server: HttpServer) -> None:
    """/metrics returns the passed registry's exposition with the Prometheus content type."""
    code, ctype, body = get(server, "/metrics")
    assert code == 200
    assert ctype.startswith("text/plain; version=0.0.4")
    assert "mirrorscope_test_things_total 3.0" in body


def test_healthz_answers_while_the_process_serves(server: HttpServer) -> None:
    """/healthz is a liveness probe: 200 whatever the readiness."""
    assert get(server, "/healthz")[0] == 200


def test_readyz_follows_the_readiness_callable(server: HttpServer, readiness: list[bool]) -> None:
    """/readyz is 200 when the service says ready, 503 with a reason otherwise."""
    assert get(server, "/readyz")[:1] == (200,)
    readiness[0] = False
    code, _, body = get(server, "/readyz")
    assert code == 503
    assert "capture not running or OVSDB unreachable" in body


def test_readiness_probe_that_raises_is_not_ready_with_its_message(
    registry: CollectorRegistry,
) -> None:
    """An exception in the readiness callable becomes a 503 that quotes it."""

    def probe() -> bool:
        raise ConnectionRefusedError("ovsdb at unix:/x refused")

    with metrics_server(registry, ready=probe) as srv:
        code, _, body = get(srv, "/readyz")
    assert code == 503
    assert "ovsdb at unix:/x refused" in body


def test_unknown_path_is_404_with_the_valid_paths(server: HttpServer) -> None:
    """Anything else is a 404 that names the paths that exist."""
    code, _, body = get(server, "/favicon.ico")
    assert code == 404
    assert "/metrics" in body
    assert "/favicon.ico" in body


def test_stop_closes_the_socket_and_ends_the_thread(registry: CollectorRegistry) -> None:
    """After stop() the port is free again and no serving thread is left."""
    srv = metrics_server(registry).start()
    host, port = srv.address
    srv.stop()
    assert not any(t.name == "mirrorscope-http" for t in threading.enumerate())
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))


def test_port_in_use_is_a_listen_error_that_says_what_to_do(registry: CollectorRegistry) -> None:
    """Binding a busy port raises ListenError naming the address and the --listen flag."""
    with metrics_server(registry) as first:
        busy = f"127.0.0.1:{first.address[1]}"
        with pytest.raises(ListenError, match="--listen") as err:
            metrics_server(registry, listen=busy).start()
    assert err.value.listen == busy


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("0.0.0.0:10097", ("0.0.0.0", 10097)),  # noqa: S104 - parsed, never bound
        ("[::1]:9", ("::1", 9)),
        (":10097", ("0.0.0.0", 10097)),  # noqa: S104 - parsed, never bound
        ("127.0.0.1:0", ("127.0.0.1", 0)),
    ],
)
def test_parse_listen_accepts_addr_port_forms(listen: str, expected: tuple[str, int]) -> None:
    """IPv4, bracketed IPv6 and bare :PORT forms parse to (host, port)."""
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("listen", ["10097", "localhost:10097", "1.2.3.4:99999", "1.2.3.4:x", ""])
def test_parse_listen_rejects_bad_input_in_one_line(listen: str) -> None:
    """Malformed addresses raise ListenError with a one-line message, never a traceback."""
    with pytest.raises(ListenError) as err:
        parse_listen(listen)
    assert "\n" not in str(err.value)


def test_default_listen_is_documented_port_10097() -> None:
    """The documented default listen address is all IPv4 addresses, port 10097."""
    assert parse_listen(DEFAULT_LISTEN) == ("0.0.0.0", 10097)  # noqa: S104 - parsed, never bound


def test_metrics_are_gzipped_when_the_scraper_asks(server: HttpServer) -> None:
    """Accept-Encoding: gzip (what Prometheus sends) gets a gzip body with the same exposition."""
    host, port = server.address
    req = urllib.request.Request(
        f"http://{host}:{port}/metrics", headers={"Accept-Encoding": "gzip"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - an http:// URL built above
        assert resp.headers["Content-Encoding"] == "gzip"
        body = gzip.decompress(resp.read()).decode()
    assert "mirrorscope_test_things_total 3.0" in body


def test_failing_collector_is_a_500_that_says_why() -> None:
    """A collector that raises turns into a 500 naming the error; the server keeps serving."""

    class Broken:
        def collect(self) -> list[object]:
            raise RuntimeError("flow table gone")

    reg = CollectorRegistry()
    reg.register(Broken())  # type: ignore[arg-type]
    with metrics_server(reg) as srv:
        code, _, body = get(srv, "/metrics")
        assert code == 500
        assert "flow table gone" in body
        assert get(srv, "/healthz")[0] == 200
