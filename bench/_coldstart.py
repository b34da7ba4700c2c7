"""Cold start: ``mirrorctl capture read`` on a small pcap, first run after install and a later one.

The compiled hot path (README "Compiled hot path") costs once per install (numba compiles the
kernels and caches them on disk) and once per process (numba's import and the cache load). A fresh
``NUMBA_CACHE_DIR`` stands for a fresh install: the first run in it compiles, the second loads
the cache; a run of the same command on an empty pcap's worth of work shows the process's own floor.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._report import Figure

SECTION = "offline"
#: Enough packets to reach both kernels (TCP events included), few enough to be all start-up.
_TRACE = Path(__file__).resolve().parents[2] / "shared/corpus/zeek-dev/traces/http__get.pcap"


def _read(pcap: Path, cache_dir: str) -> float:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "mirrorctl.cli", "capture", "read", str(pcap)],
        env=env,
        capture_output=True,
        check=True,
        timeout=600,
    )
    return time.perf_counter() - t


def measure(pcap: Path | None = None) -> list[Figure]:
    """Wall seconds of the first run after install (compile), a later run and a third one."""
    trace = pcap or _TRACE
    if not trace.is_file():
        return [Figure(SECTION, "cold start", None, text=f"not available: no {trace}")]
    with tempfile.TemporaryDirectory(prefix="bench-numba-") as cache:
        first = _read(trace, cache)
        later = min(_read(trace, cache) for _ in range(2))
    note = f"{trace.name}; first run compiles into a fresh NUMBA_CACHE_DIR, later runs load it"
    return [
        Figure.value_of(SECTION, "capture read cold start, first run after install", first, "s"),
        Figure.value_of(SECTION, "capture read cold start, later run", later, "s", note=note),
    ]
