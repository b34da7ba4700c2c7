"""Daemons a lab starts and stops through their pidfiles.

A pidfile alone is not proof: a PID can be reused after a crash. A daemon counts as ours only
while its command line names our run directory, so ``down`` never kills a stranger.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mirrorctl.lab._errors import LabError
from mirrorctl.lab._namespaces import netns_argv

log = logging.getLogger(__name__)

START_TIMEOUT = 10.0
STOP_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True)
class Daemon:
    """How to recognise one daemon: name, pidfile, a string its command line contains, and the
    network namespace it must run in (None: wherever it runs)."""

    name: str
    pidfile: Path
    marker: str
    netns: str | None = None


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    # Field 3 (after the parenthesised comm, which may itself contain spaces) is the state.
    return stat.rsplit(")", 1)[-1].split()[0] not in {"Z", "X"}


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def running_pid(daemon: Daemon) -> int | None:
    """The daemon's PID while it runs and is ours, else None."""
    try:
        pid = int(daemon.pidfile.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    if pid <= 1 or not _alive(pid) or daemon.marker not in _cmdline(pid):
        return None
    return pid


def in_its_netns(daemon: Daemon, pid: int) -> bool:
    """Whether ``pid`` runs in the daemon's namespace: a namespace deleted and created again
    under the same name is a new one, and a daemon left in the old one serves nobody."""
    if daemon.netns is None:
        return True
    try:
        actual = os.stat(f"/proc/{pid}/ns/net").st_ino
        wanted = os.stat(f"/var/run/netns/{daemon.netns}").st_ino
    except OSError:
        return False
    return actual == wanted


def start(
    daemon: Daemon,
    argv: Sequence[str],
    *,
    netns: str,
    env: Mapping[str, str] | None = None,
    log_file: Path | None = None,
) -> int:
    """Run a self-daemonising ``argv`` in ``netns`` unless it already runs; returns its PID."""
    pid = running_pid(daemon)
    if pid is not None and in_its_netns(daemon, pid):
        return pid
    if pid is not None:
        log.info("%s (pid %d) runs in a stale netns, restarting it", daemon.name, pid)
        stop(daemon)
    daemon.pidfile.unlink(missing_ok=True)
    stderr_path = daemon.pidfile.with_suffix(".stderr")
    # stdout/stderr go to files, not pipes: a daemon that keeps a pipe open would hang us.
    with stderr_path.open("wb") as stderr:
        try:
            result = subprocess.run(
                netns_argv(netns, argv),
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                env={**os.environ, **(env or {})},
                timeout=START_TIMEOUT,
                check=False,
            )
        except FileNotFoundError as exc:
            raise LabError(f"cannot start {daemon.name}: {exc}; run make bootstrap") from exc
        except subprocess.TimeoutExpired as exc:
            raise LabError(f"{daemon.name} did not daemonise within {START_TIMEOUT:.0f} s") from exc
    deadline = time.monotonic() + START_TIMEOUT
    while (pid := running_pid(daemon)) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if result.returncode != 0 or pid is None:
        detail = stderr_path.read_text(errors="replace").strip()
        if not detail and log_file is not None and log_file.exists():
            detail = "\n".join(log_file.read_text(errors="replace").splitlines()[-5:])
        raise LabError(
            f"{daemon.name} failed to start (exit {result.returncode}): {detail or 'no output'}"
        )
    stderr_path.unlink(missing_ok=True)
    log.debug("started %s pid %d", daemon.name, pid)
    return pid


def stop(daemon: Daemon) -> bool:
    """SIGTERM, then SIGKILL after a grace period; removes the pidfile. False if not running."""
    pid = running_pid(daemon)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(pid):
            log.warning("%s (pid %d) ignored SIGTERM, killing it", daemon.name, pid)
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + STOP_TIMEOUT
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
        log.debug("stopped %s pid %d", daemon.name, pid)
    daemon.pidfile.unlink(missing_ok=True)
    daemon.pidfile.with_suffix(".stderr").unlink(missing_ok=True)
    return pid is not None
