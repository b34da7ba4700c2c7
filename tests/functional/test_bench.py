"""`python -m bench --quick` end to end: every section prints figures with numbers (no timing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.bench


def test_quick_bench_prints_every_section_with_numbers_and_saves_them(tmp_path: Path) -> None:
    """Offline, live, memory and report each report measured values, in the table and in
    results.json."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = proc.stdout
    assert table.splitlines()[0].split()[:3] == ["section", "figure", "value"]

    doc = json.loads((tmp_path / "results.json").read_text())
    figures = doc["figures"]
    measured = {f["section"] for f in figures if f["value"] is not None}
    assert measured == {"offline", "live", "memory", "report"}, figures
    by_name = {f["name"]: f for f in figures}
    for name in (
        "ours / NFStream packets/s",
        "ours / tcpdump packets/s",
        "mirrorscope in-process flows",
        "flows held by the table",
        "mirrorscope 64 B max rate: dropped by kernel",
        "mirrorscope 64 B at 100 k pps: CPU",
        "tcpdump 64 B max rate: dropped by kernel",
        "peak RssAnon, 100,000 concurrent flows",
    ):
        fig = by_name[name]
        assert isinstance(fig["value"], float), table
        assert name in table
    # The generator's truth is what every flow count is judged against.
    assert by_name["mirrorscope in-process flows"]["target"] == "= 10,000 (truth)"
    assert by_name["flows held by the table"]["target"] == "= 100,000"
    assert all(f["verdict"] in {"", "PASS", "MISS", "n/a"} for f in figures)
    assert list(tmp_path.glob("gen-*.pcap")), "the generated pcap is cached under --out"
