"""`mirrorctl capture run` as a subprocess on a lab: started, probed over HTTP, stopped cleanly."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from mirrorctl import LabState

_START_S = 120.0


class Service:
    """`mirrorctl capture run` in a subprocess; stderr collected by a thread.

    ``listen`` defaults to an ephemeral loopback port; the URL actually served is parsed from the
    service's "serving http://…/metrics" line.
    """

    def __init__(
        self, state: LabState, records: Path, *extra: str, listen: str = "127.0.0.1:0"
    ) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mirrorctl.cli", "-v", "capture", "run",
             "--iface", "mirror0", "--netns", state.node_netns, "--ovsdb", state.ovsdb,
             "--records", str(records), "--listen", listen, "--duration", "120",
             "--block-mb", "1", "--blocks", "16", *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = self._wait_for(r"serving (http://\S+)/metrics").group(1)
        # the service loads its compiled kernels before it captures (compiles them, the first
        # time after an install: a fresh clone's first service start)
        self._wait_for(r"^capturing on mirror0", timeout=_START_S)

    @property
    def target(self) -> str:
        """``host:port`` for a Prometheus scrape config."""
        return self.url.removeprefix("http://")

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def _wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if m := re.search(pattern, line):
                    return m
            assert self.proc.poll() is None, "\n".join(self.lines)
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} within {timeout}s:\n" + "\n".join(self.lines))

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as r:  # noqa: S310 - loopback
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=30)
        self._reader.join(timeout=5)
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def metric(body: str, name: str) -> float:
    """The first sample of ``name`` in an exposition body."""
    m = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", body, re.MULTILINE)
    assert m is not None, f"{name} not in /metrics"
    return float(m.group(1))
