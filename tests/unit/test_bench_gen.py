"""The benchmark's traffic generator: tshark, an independent dissector, agrees with its truth."""

from __future__ import annotations

import csv
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench._gen import TrafficSpec, Truth, cached_pcap, generate

_SPEC = TrafficSpec(packets=3000, flows=240, seed=7)
_FIELDS = (
    "frame.len",
    "vlan.id",
    "ipv6.src",
    "ip.src",
    "ip.dst",
    "tcp.stream",
    "udp.stream",
    "icmp.type",
    "dns.flags.response",
    "dns.flags.rcode",
)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth]:
    path = tmp_path_factory.mktemp("gen") / "traffic.pcap"
    return path, generate(_SPEC, path)


def _tshark_rows(path: Path, *extra: str) -> Iterator[dict[str, str]]:
    cmd = ["tshark", "-r", str(path), "-T", "fields", "-E", "separator=,", *extra]
    for name in _FIELDS:
        cmd += ["-e", name]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout
    for values in csv.reader(out.splitlines()):
        yield dict(zip(_FIELDS, values, strict=True))


def test_tshark_counts_the_flows_packets_and_bytes_the_generator_reports(
    generated: tuple[Path, Truth],
) -> None:
    """Packets, wire bytes, TCP/UDP/ICMP flows, IPv6 and VLAN flows and NXDOMAIN answers match."""
    path, truth = generated
    rows = list(_tshark_rows(path))
    flows: dict[str, set[str]] = {"tcp": set(), "udp": set(), "icmp": set()}
    v6: set[str] = set()
    vlan: set[str] = set()
    nxdomain = 0
    for r in rows:
        if r["tcp.stream"]:
            key = "tcp" + r["tcp.stream"]
            flows["tcp"].add(key)
        elif r["udp.stream"]:
            key = "udp" + r["udp.stream"]
            flows["udp"].add(key)
        else:
            assert r["icmp.type"] in {"0", "8"}, r
            key = "icmp" + ",".join(sorted((r["ip.src"], r["ip.dst"])))
            flows["icmp"].add(key)
        if r["ipv6.src"]:
            v6.add(key)
        if r["vlan.id"]:
            vlan.add(key)
        if r["dns.flags.response"] in {"1", "True"} and r["dns.flags.rcode"] == "3":
            nxdomain += 1
    assert len(rows) == truth.packets
    assert sum(int(r["frame.len"]) for r in rows) == truth.wire_bytes
    assert len(flows["tcp"]) == truth.tcp_flows
    assert len(flows["udp"]) == truth.udp_flows
    assert len(flows["icmp"]) == truth.icmp_flows
    assert truth.flows == truth.tcp_flows + truth.udp_flows + truth.icmp_flows == _SPEC.flows
    assert len(v6) == truth.ipv6_flows > 0
    assert len(vlan) == truth.vlan_flows > 0
    assert nxdomain == truth.dns_nxdomain > 0
    assert truth.packets >= _SPEC.packets
    assert truth.span_s < 120.0  # NFStream's idle timeout must not split any flow


def test_tshark_finds_no_malformed_frame_bad_checksum_or_tcp_anomaly(
    generated: tuple[Path, Truth],
) -> None:
    """Checksums validate, nothing is malformed, and TCP seq/ack numbers show no retransmission."""
    path, _ = generated
    checks = [
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "tcp.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
        "-Y",
        "_ws.malformed || tcp.analysis.flags || ip.checksum.status == 0"
        " || tcp.checksum.status == 0 || udp.checksum.status == 0 || icmp.checksum.status == 0"
        ' || (_ws.expert.severity >= "warning" && !tcp.flags.reset)',
    ]
    flagged = list(_tshark_rows(path, *checks))
    assert flagged == []


def test_second_request_for_the_same_spec_reuses_the_cached_file(tmp_path: Path) -> None:
    """cached_pcap generates once per spec and returns the same file and truth afterwards."""
    spec = TrafficSpec(packets=500, flows=40, seed=3)
    first_path, first_truth = cached_pcap(spec, tmp_path)
    mtime = first_path.stat().st_mtime_ns
    second_path, second_truth = cached_pcap(spec, tmp_path)
    assert (second_path, second_truth) == (first_path, first_truth)
    assert second_path.stat().st_mtime_ns == mtime
    other_path, _ = cached_pcap(TrafficSpec(packets=500, flows=40, seed=4), tmp_path)
    assert other_path != first_path
