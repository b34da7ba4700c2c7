"""IPFIX export to real collectors: nfcapd (nfdump), tshark's dissector and softflowd's view.

The lab's traffic (tests/functional/_flowtruth) is captured on mirror0; `capture read` of that
pcap and the running service both export to nfcapd on loopback, and nfdump's flows (interim
records summed per 5-tuple) must equal the records mirrorscope writes itself.
"""

from __future__ import annotations

import csv
import signal
import socket
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from mirrorctl import LabState
from mirrorctl.cli import main
from tests.functional._flowtruth import (
    Counts,
    FlowKey,
    Tcpdump,
    our_flows,
    record_lines,
    run_traffic,
)
from tests.functional._service import Service, metric
from tests.functional.conftest import LabFactory
from tests.unit._ipfix_decode import receive_all

pytestmark = pytest.mark.root


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Nfcapd:
    """nfcapd on a loopback UDP port, writing into *flows*; ``flows()`` reads them via nfdump."""

    def __init__(self, flows: Path) -> None:
        self.dir = flows
        flows.mkdir(parents=True, exist_ok=True)
        self.port = free_udp_port()
        self.proc = subprocess.Popen(
            ["nfcapd", "-b", "127.0.0.1", "-p", str(self.port), "-w", str(flows), "-t", "3600",
             "-B", "8000000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(0.5)
        assert self.proc.poll() is None, self.proc.stderr

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)

    def rows(self) -> list[dict[str, str]]:
        """nfdump's records (one per IPFIX data record), as its CSV columns."""
        self.stop()
        out = subprocess.run(
            ["nfdump", "-R", str(self.dir), "-o", "csv", "-q"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        header = ("ts", "te", "td", "sa", "da", "sp", "dp", "pr", "flg", "fwd", "stos",
                  "ipkt", "ibyt", "opkt", "obyt")  # fmt: skip
        return [dict(zip(header, row, strict=False)) for row in csv.reader(out.splitlines())]


def nfdump_flows(rows: list[dict[str, str]]) -> dict[FlowKey, Counts]:
    """TCP/UDP flows: records of one 5-tuple (interim ones) summed, in ``our_flows`` shape."""
    sums: dict[FlowKey, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for r in rows:
        proto = r["pr"].strip().lower()
        if proto not in ("tcp", "udp"):
            continue
        key = (proto, r["sa"], int(r["sp"]), r["da"], int(r["dp"]))
        c = sums[key]
        for i, col in enumerate(("ipkt", "ibyt", "opkt", "obyt")):
            c[i] += int(r[col])
    return {k: (c[0], c[1], c[2], c[3]) for k, c in sums.items()}


@pytest.fixture(scope="module")
def mirrored_lab(lab_factory: LabFactory) -> Iterator[LabState]:
    state = lab_factory(pods=4)
    assert main(["enable", "--global", "--ovsdb", state.ovsdb, "--netns", state.node_netns]) == 0
    yield state
    main(["disable", "--global", "--ovsdb", state.ovsdb, "--netns", state.node_netns])


@pytest.fixture(scope="module")
def recorded(mirrored_lab: LabState, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pcap = tmp_path_factory.mktemp("ipfix") / "mirror0.pcap"
    dump = Tcpdump(mirrored_lab.node_netns, pcap)
    try:
        run_traffic(mirrored_lab)
        time.sleep(0.5)
    finally:
        stats = dump.stop()
    assert "0 packets dropped by kernel" in stats, stats
    return pcap


@pytest.fixture
def nfcapd(tmp_path: Path) -> Iterator[Nfcapd]:
    collector = Nfcapd(tmp_path / "nfcapd")
    yield collector
    collector.stop()


@pytest.fixture
def exported(
    mirrored_lab: LabState,
    recorded: Path,
    nfcapd: Nfcapd,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> tuple[list[str], list[bytes]]:
    """`capture read --ipfix` to nfcapd and to a socket of ours (the flag repeated): our records
    and the datagrams the second collector got."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8_000_000)
    sock.bind(("127.0.0.1", 0))
    try:
        rc = main(["capture", "read", "--ovsdb", mirrored_lab.ovsdb, "--ipfix",
                   f"127.0.0.1:{nfcapd.port}", "--ipfix", f"127.0.0.1:{sock.getsockname()[1]}",
                   str(recorded)])  # fmt: skip
        out, err = capsys.readouterr()
        assert rc == 0, err
        return out.splitlines(), receive_all(sock)
    finally:
        sock.close()


def test_nfdump_flows_equal_capture_read_records(
    exported: tuple[list[str], list[bytes]], nfcapd: Nfcapd
) -> None:
    """nfcapd collects every flow of `capture read`: addresses, ports, packets, bytes both ways."""
    lines, _ = exported
    ours = our_flows(lines)
    rows = nfcapd.rows()
    assert len(rows) == len(ours.records)  # one record per flow, ICMP included
    theirs = nfdump_flows(rows)
    assert len(theirs) >= 8
    assert theirs == ours.counts


def test_tshark_decodes_every_message_with_ntop_and_pod_elements(
    exported: tuple[list[str], list[bytes]], tmp_path: Path, mirrored_lab: LabState
) -> None:
    """tshark's IPFIX dissector: no malformed or expert entries, ntop's names, pods' bytes."""
    _, datagrams = exported
    assert datagrams
    pcap = tmp_path / "ipfix.pcap"
    frames = [
        Ether() / IP(src="127.0.0.1", dst="127.0.0.1") / UDP(sport=40000, dport=4739) / d
        for d in datagrams
    ]
    wrpcap(str(pcap), frames)
    text = subprocess.run(
        ["tshark", "-r", str(pcap), "-d", "udp.port==4739,cflow", "-V"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert text.count("Cisco NetFlow/IPFIX") == len(datagrams)
    assert "Malformed" not in text
    assert "Expert Info" not in text
    for name in ("Number of retransmitted TCP flow packets (src->dst)",
                 "Network RTT/2 client <-> nprobe", "Network RTT/2 nprobe <-> server"):  # fmt: skip
        assert name in text
    for pod in mirrored_lab.pods:
        hexed = " ".join(f"{b:02x}" for b in pod.name.encode())
        if f"(Project Antrea) Type 101: Value (hex bytes): {hexed}" in text:
            break
    else:
        pytest.fail("no sourcePodName of a lab pod in tshark's output")
    hexed = " ".join(f"{b:02x}" for b in mirrored_lab.service("http").pod.name.encode())
    assert f"(Project Antrea) Type 103: Value (hex bytes): {hexed}" in text


def test_softflowd_on_the_same_pcap_gives_the_same_flows(
    recorded: Path, exported: tuple[list[str], list[bytes]], tmp_path: Path
) -> None:
    """softflowd (bidirectional IPFIX) into nfcapd: the same TCP/UDP 5-tuples and counts."""
    lines, _ = exported
    ours = our_flows(lines).counts
    collector = Nfcapd(tmp_path / "softflowd")
    try:
        subprocess.run(
            ["softflowd", "-r", str(recorded), "-n", f"127.0.0.1:{collector.port}", "-v", "10",
             "-b", "-d"],
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        time.sleep(0.5)
        theirs = nfdump_flows(collector.rows())
    finally:
        collector.stop()
    # softflowd names the originator by the lower address, not by who sent the first packet:
    # compare with the direction normalised
    assert normalised(theirs) == normalised(ours)


def normalised(flows: dict[FlowKey, Counts]) -> dict[FlowKey, Counts]:
    out = {}
    for (proto, a, ap, b, bp), (ap_, ab, bp_, bb) in flows.items():
        if (a, ap) > (b, bp):
            out[proto, b, bp, a, ap] = (bp_, bb, ap_, ab)
        else:
            out[proto, a, ap, b, bp] = (ap_, ab, bp_, bb)
    return out


def test_running_service_exports_interim_and_ended_flows(
    mirrored_lab: LabState, nfcapd: Nfcapd, tmp_path: Path
) -> None:
    """The service on the lab (active timeout 1 s): nfdump's sums equal its own records, and
    /metrics counts the records exported to the collector."""
    records = tmp_path / "records"
    svc = Service(mirrored_lab, records, "--ipfix", f"127.0.0.1:{nfcapd.port}",
                  "--ipfix-active-timeout", "1")  # fmt: skip
    try:
        run_traffic(mirrored_lab)
        time.sleep(2.5)  # an interim round after the traffic
        _, body = svc.get("/metrics")
        assert metric(body, "mirrorscope_ipfix_records_total") > 0
        assert metric(body, "mirrorscope_ipfix_send_errors_total") == 0
        assert svc.terminate() == 0
    finally:
        svc.kill()
    lines = record_lines(records)
    ours = our_flows(lines)
    rows = nfcapd.rows()
    assert len(rows) > len(ours.records)  # interim records of the long flows
    assert nfdump_flows(rows) == ours.counts
