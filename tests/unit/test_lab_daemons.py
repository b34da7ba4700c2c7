"""Pidfiles are not trusted blindly: a daemon is ours only if its command line says so."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mirrorctl.lab._daemons import Daemon, running_pid, stop


def test_pidfile_of_a_live_process_with_our_marker_is_running(tmp_path: Path) -> None:
    """A live PID whose command line contains the marker counts as our running daemon."""
    pidfile = tmp_path / "me.pid"
    pidfile.write_text(f"{os.getpid()}\n")
    marker = Path(sys.executable).name
    assert running_pid(Daemon("me", pidfile, marker)) == os.getpid()


def test_a_reused_pid_without_our_marker_is_not_ours(tmp_path: Path) -> None:
    """A PID that now belongs to another program is ignored, and stop() never signals it."""
    pidfile = tmp_path / "x.pid"
    pidfile.write_text(f"{os.getpid()}\n")
    spec = Daemon("x", pidfile, f"{tmp_path}/never-on-any-command-line/")
    assert running_pid(spec) is None
    assert stop(spec) is False  # and we are still alive to assert it
    assert not pidfile.exists()


def test_garbage_or_missing_pidfiles_mean_not_running(tmp_path: Path) -> None:
    """Empty, non-numeric, PID 1 or absent pidfiles all read as not running."""
    for content in ("", "abc", "1", "-5"):
        (tmp_path / "g.pid").write_text(content)
        assert running_pid(Daemon("g", tmp_path / "g.pid", "")) is None
    assert running_pid(Daemon("m", tmp_path / "missing.pid", "")) is None
