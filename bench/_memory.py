"""Memory: anonymous RSS of the flow table holding N concurrent flows (target: 1 M in <= 256 MB).

Runs in a fresh interpreter so nothing else in the benchmark inflates the figure. The flows are
SYNs with distinct 5-tuples, fed to the service's analysis pipeline (dedup, decoder, flow table)
built with its defaults, and never expired (1 M SYNs span one second of packet time). RssAnon
(/proc/self/status) is sampled after every batch and its peak reported: mapped files (a pcap,
shared libraries) are not anonymous memory and do not count; the interpreter's own baseline is
reported beside it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt

from analyzers import AnalysisPipeline, IdentityMap
from bench._report import Figure
from capture import FrameBatch

SECTION = "memory"
_BATCH = 8192
_TARGET_MB = 256.0  # issue 15
_FRAME_LEN = 54  # Ethernet + IPv4 + TCP, no options, no payload


def rss_anon_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    raise RuntimeError("no RssAnon in /proc/self/status (Linux >= 4.5 has it)")


def _syn_frames(first: int, count: int) -> npt.NDArray[np.uint8]:
    """``count`` SYN frames whose (source address, source port) encode flow numbers first.."""
    n = np.arange(first, first + count, dtype=np.uint64)
    f = np.zeros((count, _FRAME_LEN), dtype=np.uint8)
    f[:, 0:6] = (0x0A, 0, 0, 0, 0, 1)
    f[:, 6:12] = (0x02, 0, 0, 0, 0, 1)
    f[:, 12:14] = (0x08, 0x00)
    f[:, 14] = 0x45
    f[:, 16:18] = (0, 40)
    f[:, 20] = 0x40  # DF
    f[:, 22] = 64
    f[:, 23] = 6
    src = (10 << 24) | (16 << 16) | (n & np.uint64(0xFFFF))  # 10.16.0.0/16
    be_src = src.astype(">u4").view(np.uint8).reshape(-1, 4)
    f[:, 26:30] = be_src
    f[:, 30:34] = (10, 96, 0, 1)
    sport = (np.uint64(1024) + (n >> np.uint64(16))).astype(">u2").view(np.uint8).reshape(-1, 2)
    f[:, 34:36] = sport
    f[:, 36:38] = (0, 80)
    # Distinct IP ids and initial sequence numbers, as real SYNs have: otherwise duplicate
    # suppression rightly takes SYNs to one server 1 µs apart for mirrored copies of one packet.
    f[:, 18:20] = (n & np.uint64(0xFFFF)).astype(">u2").view(np.uint8).reshape(-1, 2)
    isn = (n * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
    f[:, 38:42] = isn.astype(">u4").view(np.uint8).reshape(-1, 4)
    f[:, 46] = 0x50
    f[:, 47] = 0x02  # SYN
    f[:, 48:50] = (0xFA, 0xF0)
    return f


_WARM_FLOWS = 2 * _BATCH  # the warm-up's flows: two batches go through every kernel


def _child(n_flows: int) -> dict[str, object]:
    if n_flows > (0xFFFF - 1024) << 16:
        raise ValueError("at most ~4 G flows fit the 5-tuple plan")
    base = rss_anon_kib()
    # The service's own chain with its defaults (max_flows, timeouts, dedup window).
    pipeline = AnalysisPipeline(IdentityMap())
    peak = rss_anon_kib()
    t0 = 1_767_225_600 * 1_000_000_000
    lengths = np.full(_BATCH, _FRAME_LEN, dtype=np.int64)
    for first in range(0, n_flows, _BATCH):
        count = min(_BATCH, n_flows - first)
        frames = _syn_frames(first, count)
        batch = FrameBatch(
            data=frames.reshape(-1),
            offsets=np.arange(count, dtype=np.int64) * _FRAME_LEN,
            caplens=lengths[:count],
            wirelens=lengths[:count],
            ts_ns=t0 + np.arange(first, first + count, dtype=np.int64) * 1000,
        )
        pipeline.on_batch(batch)
        peak = max(peak, rss_anon_kib())
    return {"flows": len(pipeline.table), "base_kib": base, "peak_kib": peak}


def _run_child(n_flows: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench._memory", str(n_flows)],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


def measure(n_flows: int) -> list[Figure]:
    # A small run first: every kernel the measured run calls is then in numba's disk cache, as it
    # is for the service after its first start. Compiling in the measured process would add
    # LLVM's memory to the figure (~150 MB with nothing cached).
    _run_child(_WARM_FLOWS)
    proc = _run_child(n_flows)
    lines = proc.stdout.strip().splitlines()
    name = f"peak RssAnon, {n_flows:,} concurrent flows"
    target = f"<= {_TARGET_MB:.0f} MB" if n_flows >= 1_000_000 else ""
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return [Figure.missing(SECTION, name, f"failed: {tail}", target=target)]
    r = json.loads(lines[-1])
    peak_mb = int(r["peak_kib"]) / 1024
    base_mb = int(r["base_kib"]) / 1024
    held = int(r["flows"])
    note = f"interpreter+imports baseline {base_mb:.0f} MB"
    return [
        Figure.value_of(
            SECTION,
            name,
            peak_mb,
            "MB",
            target=target,
            ok=(peak_mb <= _TARGET_MB and held == n_flows) if target else None,
            note=note,
        ),
        Figure.value_of(
            SECTION,
            "flows held by the table",
            held,
            "flows",
            target=f"= {n_flows:,}",
            ok=held == n_flows,
        ),
    ]


def main(argv: list[str]) -> int:
    print(json.dumps(_child(int(argv[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
