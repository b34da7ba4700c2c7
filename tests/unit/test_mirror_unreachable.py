"""An OVSDB that does not answer: one error line for commands, logged backoff for watch."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

from mirrorctl.cli import main
from mirrorctl.ovs._backoff import Backoff
from mirrorctl.ovs._errors import OVSDBUnreachableError
from mirrorctl.ovs._keeper import MirrorKeeper
from mirrorctl.ovs._ovsdb import connect, follow
from mirrorctl.ovs._spec import MirrorSpec


def _nowhere() -> str:
    return f"unix:/tmp/mirrorscope-no-ovsdb-{uuid.uuid4().hex[:8]}.sock"


@pytest.mark.parametrize("command", [["status"], ["enable", "--global"], ["disable", "--global"]])
def test_unreachable_ovsdb_is_one_line_and_exit_3(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Each command names the endpoint in one stderr line and exits 3, without a traceback."""
    endpoint = _nowhere()
    assert main([*command, "--ovsdb", endpoint]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"mirrorctl: error: cannot reach OVSDB at {endpoint}: No such file or directory "
        "(is ovsdb-server running? pass --ovsdb or set MIRRORSCOPE_OVSDB)"
    ]


def test_unreachable_via_the_console_script_has_no_traceback() -> None:
    """The installed entry point behaves the same (env MIRRORSCOPE_OVSDB is honoured)."""
    endpoint = _nowhere()
    proc = subprocess.run(
        [sys.executable, "-m", "mirrorctl.cli", "status"],
        env={"MIRRORSCOPE_OVSDB": endpoint, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 3
    assert endpoint in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_bad_endpoint_and_empty_enable_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed endpoint or an enable without selection exits 2 with a hint."""
    assert main(["status", "--ovsdb", "db.sock"]) == 2
    assert "unix:/path/to/db.sock or tcp:HOST:PORT" in capsys.readouterr().err
    assert main(["enable", "--ovsdb", _nowhere()]) == 2
    assert "--global, --pod NS/NAME or --namespace NS" in capsys.readouterr().err


def test_backoff_doubles_to_its_cap_and_resets() -> None:
    """Retry delays grow 0.1, 0.2, 0.4 … up to the cap, and start over after a success."""
    b = Backoff(0.1, 1.6)
    assert [b.next() for _ in range(7)] == [0.1, 0.2, 0.4, 0.8, 1.6, 1.6, 1.6]
    b.reset()
    assert b.next() == 0.1


def test_follow_keeps_retrying_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    """follow() logs 'OVSDB at X unreachable … retrying in Ns' per attempt, waiting as told."""
    endpoint = _nowhere()
    stop = threading.Event()
    delays: list[float] = []

    def sleep(delay: float) -> None:
        delays.append(delay)
        if len(delays) == 5:
            stop.set()

    with caplog.at_level(logging.WARNING, logger="mirrorctl.ovs._ovsdb"):
        follow(endpoint, lambda *_: None, stop, sleep=sleep, backoff=Backoff(0.25, 1.0))
    assert delays == [0.25, 0.5, 1.0, 1.0, 1.0]
    retries = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(retries) == 5
    assert retries[0].startswith(f"OVSDB at {endpoint} unreachable")
    assert "retrying in 0.25s" in retries[0]


def test_keeper_reconcile_once_raises_unreachable() -> None:
    """reconcile_once outside the loop surfaces OVSDBUnreachableError with the endpoint."""
    endpoint = _nowhere()
    keeper = MirrorKeeper(endpoint, MirrorSpec(select_all=True))
    with pytest.raises(Exception, match=endpoint) as info:
        keeper.reconcile_once()
    assert type(info.value).__name__ == "OVSDBUnreachableError"


def test_a_peer_that_never_answers_times_out() -> None:
    """A loopback listener that accepts but stays silent is 'unreachable' after the timeout."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        endpoint = f"tcp:127.0.0.1:{server.getsockname()[1]}"
        start = time.monotonic()
        with pytest.raises(OVSDBUnreachableError, match=r"no answer within 0\.3 s") as info:
            connect(endpoint, timeout=0.3)
    assert info.value.endpoint == endpoint
    assert time.monotonic() - start < 2
