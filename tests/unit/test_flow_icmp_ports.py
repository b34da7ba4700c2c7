"""ICMP flows' ports as Zeek reports them: the originator's type and its counterpart or code."""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP
from scapy.layers.inet6 import (
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    IPv6,
)
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from analyzers import AnalysisPipeline, FlowRecord, IdentityMap
from capture import FrameBatch

MACS = {"src": "0a:00:00:00:00:01", "dst": "0a:00:00:00:00:02"}


class _Keep:
    def __init__(self) -> None:
        self.records: list[FlowRecord] = []

    def on_flows_ended(self, records: list[FlowRecord]) -> None:
        self.records.extend(records)


def _ports(packets: list[Packet]) -> list[tuple[str, int, str, int]]:
    keep = _Keep()
    pipeline = AnalysisPipeline(IdentityMap(), [keep])
    frames = [bytes(Ether(**MACS) / p) for p in packets]
    pipeline.on_batch(FrameBatch.from_frames(frames, [i * 1000 for i in range(len(frames))]))
    pipeline.flush()
    return sorted((r.orig_h, r.orig_p, r.resp_h, r.resp_p) for r in keep.records)


def test_a_request_and_its_reply_are_one_flow_reported_type_to_counterpart() -> None:
    """ICMPv6 echo: 128 -> 129 (Zeek's resp_p is the paired type, not the code); ICMPv4
    timestamp 13 -> 14; a one-way message (destination unreachable) reports its code."""
    a, b = "2001:db8::1", "2001:db8::2"
    got = _ports(
        [
            IPv6(src=a, dst=b) / ICMPv6EchoRequest(id=1, seq=1),
            IPv6(src=b, dst=a) / ICMPv6EchoReply(id=1, seq=1),
            IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=13),
            IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(type=14),
            IP(src="10.0.0.3", dst="10.0.0.1") / ICMP(type=3, code=1),
        ]
    )
    assert got == [
        ("10.0.0.1", 13, "10.0.0.2", 14),
        ("10.0.0.3", 3, "10.0.0.1", 1),
        (a, 128, b, 129),
    ]


def test_a_flow_that_began_with_the_reply_type_says_so() -> None:
    """A router advertisement seen before any solicitation: orig_p 134, resp_p 133 (as Zeek)."""
    r, h = "fe80::1", "fe80::2"
    got = _ports([IPv6(src=r, dst=h) / ICMPv6ND_RA(), IPv6(src=h, dst=r) / ICMPv6ND_RS()])
    assert got == [(r, 134, h, 133)]
