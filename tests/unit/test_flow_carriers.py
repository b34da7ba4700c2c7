"""Tunnel carriers Zeek logs as connections (Teredo, AYIYA, GRE over UDP) are records beside the
flow inside them; VXLAN and Geneve carriers are not (the inner flow only, by design)."""

from __future__ import annotations

from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet

from analyzers import AnalysisPipeline, FlowRecord, IdentityMap
from capture import FrameBatch

MACS = {"src": "0a:00:00:00:00:01", "dst": "0a:00:00:00:00:02"}
OUTER = IP(src="192.0.2.1", dst="198.51.100.2")
INNER6 = IPv6(src="2001::1", dst="2001::2") / TCP(sport=1111, dport=80, flags="S")


class _Keep:
    def __init__(self) -> None:
        self.records: list[FlowRecord] = []

    def on_flows_ended(self, records: list[FlowRecord]) -> None:
        self.records.extend(records)


def _records(packets: list[Packet]) -> list[tuple[str, str, int, int, int, str | None]]:
    keep = _Keep()
    pipeline = AnalysisPipeline(IdentityMap(), [keep])
    frames = [bytes(Ether(**MACS) / p) for p in packets]
    pipeline.on_batch(FrameBatch.from_frames(frames, [i * 1000 for i in range(len(frames))]))
    pipeline.flush()
    return sorted(
        (r.proto, r.orig_h, r.orig_p, r.resp_p, r.orig_ip_bytes, r.tunnel) for r in keep.records
    )


def test_a_teredo_datagram_is_its_udp_carrier_and_the_ipv6_flow_inside() -> None:
    """Two records, as Zeek logs them: the UDP 3544 carrier with the datagram's IP bytes, and
    the TCP flow inside with the tunnel named on it."""
    pkt = OUTER / UDP(sport=40000, dport=3544) / INNER6
    got = _records([pkt])
    assert got == [
        ("tcp", "2001::1", 1111, 80, len(bytes(INNER6)), "teredo"),
        ("udp", "192.0.2.1", 40000, 3544, len(bytes(pkt)), None),
    ]


def test_vxlan_and_geneve_give_the_inner_flow_only() -> None:
    """The overlay's UDP flows between nodes are left out: one record per inner flow."""

    def inner(sport: int) -> Packet:
        ip = IP(src="10.0.0.1", dst="10.0.0.2")
        return Ether(**MACS) / ip / TCP(sport=sport, dport=6, flags="S")

    got = _records(
        [
            OUTER / UDP(sport=50000, dport=4789) / VXLAN(vni=7) / inner(5),
            OUTER / UDP(sport=50001, dport=6081) / GENEVE(vni=8, proto=0x6558) / inner(7),
        ]
    )
    assert [(g[0], g[2], g[5]) for g in got] == [("tcp", 5, "vxlan"), ("tcp", 7, "geneve")]
