"""The service's listener wiring: --token-file / MIRRORSCOPE_TOKEN resolved, serve() guarded."""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from analyzers import IdentityMap
from exporters import CaptureHealth, EndedFlows, HttpServer, MetricsConfig
from mirrorctl.cli import build_parser, main
from mirrorctl.ovs import UsageError
from mirrorctl.service import TOKEN_ENV, RunConfig
from mirrorctl.service._config import resolve_token
from mirrorctl.service._feed import OvsdbFeed
from mirrorctl.service._runtime import serve
from tests.unit._metrics_doubles import FakeFlowTable

TOKEN = "tok-123"  # noqa: S105 - a test fixture, guards nothing real


def test_token_file_first_line_is_the_token(tmp_path: Path) -> None:
    """--token-file FILE: the first line, without surrounding whitespace (a trailing newline)."""
    f = tmp_path / "token"
    f.write_text(f"  {TOKEN}\nignored\n")
    assert resolve_token(f, {}) == TOKEN


def test_the_environment_supplies_the_token_without_a_file() -> None:
    """Without --token-file, MIRRORSCOPE_TOKEN (how a Kubernetes Secret arrives) is the token."""
    assert resolve_token(None, {TOKEN_ENV: f"{TOKEN}\n"}) == TOKEN


def test_the_file_wins_over_the_environment(tmp_path: Path) -> None:
    """A flag given on the command line overrides the environment."""
    f = tmp_path / "token"
    f.write_text("from-file\n")
    assert resolve_token(f, {TOKEN_ENV: "from-env"}) == "from-file"


@pytest.mark.parametrize("env", [{}, {TOKEN_ENV: ""}, {TOKEN_ENV: "  "}])
def test_no_token_anywhere_means_an_open_service(env: dict[str, str]) -> None:
    """No file and no (or a blank) variable: None, the service runs open and warns."""
    assert resolve_token(None, env) is None


@pytest.mark.parametrize("content", [None, "", "\n", "   \nsecond\n"])
def test_an_unreadable_or_empty_token_file_is_an_error_not_an_open_service(
    tmp_path: Path, content: str | None
) -> None:
    """A named file that is missing or has no token on its first line fails, naming the file."""
    f = tmp_path / "token"
    if content is not None:
        f.write_text(content)
    with pytest.raises(UsageError, match="--token-file") as err:
        resolve_token(f, {TOKEN_ENV: "would-be-used"})
    assert str(f) in str(err.value)


def test_a_missing_token_file_stops_capture_run_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`capture run --token-file MISSING` exits 2 with one line, before any OVSDB connection."""
    missing = tmp_path / "nope"
    rc = main(["capture", "run", "--ovsdb", "unix:/nonexistent/db.sock", "--token-file",
               str(missing)])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1, err
    assert f"--token-file {missing}" in err[0]


def test_the_flag_parses_to_a_path() -> None:
    """--token-file is a path on `capture run`; without it the value is None."""
    parser = build_parser()
    assert parser.parse_args(["capture", "run"]).token_file is None
    args = parser.parse_args(["capture", "run", "--token-file", "/run/secrets/t"])
    assert args.token_file == Path("/run/secrets/t")


def test_the_token_stays_out_of_the_configs_repr() -> None:
    """RunConfig is logged and pickled to workers: its repr never shows the token."""
    field = RunConfig.__dataclass_fields__["token"]
    assert field.repr is False


def _status(server: HttpServer, path: str, token: str | None = None) -> int:
    host, port = server.address
    req = urllib.request.Request(f"http://{host}:{port}{path}")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - loopback
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code


def _serve(token: str | None) -> tuple[HttpServer, threading.Event]:
    identity = IdentityMap()
    feed = OvsdbFeed("unix:/nonexistent/db.sock", identity, bridge="br-int", iface="mirror0",
                     node="node-a")  # fmt: skip
    running = threading.Event()
    running.set()
    _, server, _ = serve(
        "127.0.0.1:0", source=FakeFlowTable(), identity=identity,
        metrics=MetricsConfig(node="node-a"), ended=EndedFlows(), health=CaptureHealth,
        feed=feed, running=running, token=token,
    )  # fmt: skip
    assert server is not None
    return server, running


@pytest.fixture
def guarded() -> Iterator[HttpServer]:
    server, _ = _serve(TOKEN)
    try:
        yield server
    finally:
        server.stop()


def test_the_service_guards_its_api_and_leaves_metrics_open(guarded: HttpServer) -> None:
    """serve(token=…): /api/v1/status is 401 without the token and 200 with it; /metrics and
    /healthz answer anyone; /readyz says 503 (no OVSDB) without asking for credentials."""
    assert _status(guarded, "/api/v1/status") == 401
    assert _status(guarded, "/api/v1/status", "nope") == 401
    assert _status(guarded, "/api/v1/status", TOKEN) == 200
    assert _status(guarded, "/metrics") == 200
    assert _status(guarded, "/healthz") == 200
    assert _status(guarded, "/readyz") == 503


def test_the_token_also_passes_in_its_own_header_beside_another_authorization(
    guarded: HttpServer,
) -> None:
    """X-Mirrorscope-Token carries the token where a proxy (the Kubernetes API server's) strips
    Authorization or fills it with its own credentials: right token 200, wrong one 401."""

    def status(token: str) -> int:
        host, port = guarded.address
        req = urllib.request.Request(f"http://{host}:{port}/api/v1/status")
        req.add_header("Authorization", "Bearer a-kubernetes-token")
        req.add_header("X-Mirrorscope-Token", token)
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - loopback
                return int(resp.status)
        except urllib.error.HTTPError as err:
            return err.code

    assert status(TOKEN) == 200
    assert status("nope") == 401


def test_an_open_service_says_so_at_start(caplog: pytest.LogCaptureFixture) -> None:
    """Without a token the API answers anyone, and a warning at start says how to lock it."""
    with caplog.at_level(logging.WARNING, logger="mirrorctl.service._runtime"):
        server, _ = _serve(None)
    try:
        assert _status(server, "/api/v1/status") == 200
    finally:
        server.stop()
    assert any("--token-file" in r.getMessage() for r in caplog.records)


def test_listen_off_serves_nothing() -> None:
    """--listen off: the collector exists, no listener is started."""
    identity = IdentityMap()
    feed = OvsdbFeed("unix:/x", identity, bridge="br-int", iface="mirror0", node="n")
    collector, server, endpoints = serve(
        "off", source=FakeFlowTable(), identity=identity, metrics=MetricsConfig(node="n"),
        ended=EndedFlows(), health=CaptureHealth, feed=feed, running=threading.Event(),
    )  # fmt: skip
    assert server is None
    assert endpoints is None
    assert collector is not None
