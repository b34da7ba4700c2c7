"""`mirrorctl report --pcap` on lab traffic: per-pod totals equal tshark's per-address sums."""

from __future__ import annotations

import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from mirrorctl import LabState
from mirrorctl.cli import main
from tests.functional._flowtruth import Tcpdump, run_traffic
from tests.functional.conftest import LabFactory


@pytest.fixture(scope="module")
def lab_pcap(
    lab_factory: LabFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LabState, Path]]:
    """A lab with a global mirror, and a tcpdump capture of one round of its traffic."""
    state = lab_factory(pods=4)
    assert main(["enable", "--global", "--ovsdb", state.ovsdb, "--netns", state.node_netns]) == 0
    pcap = tmp_path_factory.mktemp("report") / "mirror0.pcap"
    dump = Tcpdump(state.node_netns, pcap)
    try:
        run_traffic(state)
        time.sleep(0.5)  # the last FIN/ACKs reach mirror0
    finally:
        stats = dump.stop()
    assert "0 packets dropped by kernel" in stats, stats
    yield state, pcap
    main(["disable", "--global", "--ovsdb", state.ovsdb, "--netns", state.node_netns])


def tshark_per_address(pcap: Path) -> dict[str, list[int]]:
    """address -> [tx wire bytes, rx wire bytes, tx packets, rx packets] by tshark."""
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-n", "-T", "fields", "-E", "separator=\t",
         "-E", "occurrence=f", "-e", "frame.len", "-e", "ip.src", "-e", "ipv6.src",
         "-e", "ip.dst", "-e", "ipv6.dst", "-Y", "ip or ipv6"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for line in out.splitlines():
        length, src4, src6, dst4, dst6 = line.split("\t")
        src, dst = src4 or src6, dst4 or dst6
        sums[src][0] += int(length)
        sums[src][2] += 1
        sums[dst][1] += int(length)
        sums[dst][3] += 1
    return sums


def test_report_pcap_pod_totals_equal_tshark(
    lab_pcap: tuple[LabState, Path], tmp_path: Path
) -> None:
    """Per pod (both its addresses), tx/rx wire bytes and packets equal tshark's sums."""
    state, pcap = lab_pcap
    csv = tmp_path / "pods.csv"
    rc = main(
        ["report", "--pcap", str(pcap), "--ovsdb", state.ovsdb, "--by", "pod",
         "--format", "csv", "-o", str(csv)]
    )  # fmt: skip
    assert rc == 0
    ours = pd.read_csv(csv, keep_default_na=False).set_index(["namespace", "pod"])
    truth = tshark_per_address(pcap)
    checked = 0
    for p in state.pods:
        want = [a + b for a, b in zip(truth[p.ipv4], truth[p.ipv6], strict=True)]
        if not any(want):
            continue
        row = ours.loc[(p.namespace, p.name)]
        got = [int(row[c]) for c in ("tx_bytes", "rx_bytes", "tx_packets", "rx_packets")]
        assert got == want, f"{p.namespace}/{p.name}"
        checked += 1
    assert checked >= 3
