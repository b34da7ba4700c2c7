"""`mirrorctl bench` end to end on a two-node lab: one tiny point per mode, tables and sinks."""

from __future__ import annotations

import csv
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.bench


def test_tiny_bench_measures_every_mode_and_fills_the_sinks(tmp_path: Path) -> None:
    """Cross-node pod-pod and host-to-pod HTTP, 1 s points, 1 repeat: every mode has numbers,
    the service's sinks received data, CPU is reported per mode, and the lab is gone after."""
    name = f"bt-{secrets.token_hex(3)}"
    proc = subprocess.run(
        [sys.executable, "-m", "mirrorctl.cli", "bench", "--quick", "--repeats", "1",
         "--scenario", "pod-pod different nodes",
         "--scenario", "host to pod on own node (no NodePort NAT)",
         "--name", name, "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]

    netperf = list(csv.DictReader((tmp_path / "netperf.csv").open()))
    assert [(r["scenario"], r["mirror"], r["size"]) for r in netperf] == [
        ("pod-pod different nodes", mode, "1k") for mode in ("off", "on", "on+analysis")
    ]
    for row in netperf:
        assert row["tcp_latency"].endswith(" us"), row
        assert row["tcp_bandwidth"].endswith("bits/sec"), row
        assert row["udp_lost_rate"].endswith("%"), row
    assert netperf[1]["tcp_bandwidth_change"].endswith(" %")
    assert netperf[1]["tcp_bandwidth_seed_change"] == "-15.0 %"  # seed: 969 Mbit/s vs 1.14 Gbit/s

    qps = list(csv.DictReader((tmp_path / "qps.csv").open()))
    assert {(r["mirror"], r["tcp_connections"]) for r in qps} == {
        (m, c) for m in ("off", "on", "on+analysis") for c in ("10", "100")
    }
    assert all(float(r["qps"]) > 0 for r in qps)

    report = (tmp_path / "report.md").read_text()
    assert proc.stdout == report + "\n"
    cpu = [line for line in report.splitlines() if line.startswith("| on+analysis |")]
    assert len(cpu) == 1
    assert cpu[0].count("%") == 4, cpu  # both vswitchds, both services
    sinks = next(line for line in report.splitlines() if line.startswith("- sinks"))
    scrapes = int(sinks.split("Prometheus stored ")[1].split()[0])
    records = int(sinks.split("; ")[1].split()[0])
    assert scrapes >= 1, sinks
    assert records >= 1, sinks

    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert f"ms-{name}-" not in left.stdout
