"""AnalysisPipeline on real frames built with scapy: dedup → decode → flow table → records."""

from __future__ import annotations

from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from analyzers import Endpoint, EndpointKind, FlowRecord, IdentityMap
from analyzers._pipeline import AnalysisPipeline, PipelineOptions
from capture import FrameBatch

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
# Explicit MACs: scapy would otherwise resolve them (ARP on a real network).
A_MAC, B_MAC, R_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:fe"
CLIENT, SERVER = "10.16.0.5", "10.16.0.9"
CLIENT6, SERVER6 = "fd00:10:16::5", "fd00:10:16::9"


class Keep:
    """A FlowSink that keeps every record."""

    def __init__(self) -> None:
        self.records: list[FlowRecord] = []

    def on_flows_ended(self, records: list[FlowRecord]) -> None:
        self.records.extend(records)


def identity() -> IdentityMap:
    ids = IdentityMap()
    client = Endpoint(EndpointKind.POD, "shop", "client", "n1")
    server = Endpoint(EndpointKind.POD, "shop", "web", "n1")
    ids.replace("t", [(CLIENT, client), (CLIENT6, client), (SERVER, server), (SERVER6, server)])
    return ids


def eth(src: str, dst: str) -> Ether:
    return Ether(src=src, dst=dst)


def c2s(l4: Packet, **ip: object) -> Packet:
    return eth(A_MAC, B_MAC) / IP(src=CLIENT, dst=SERVER, **ip) / l4


def s2c(l4: Packet, **ip: object) -> Packet:
    return eth(B_MAC, A_MAC) / IP(src=SERVER, dst=CLIENT, **ip) / l4


def batch(frames: list[tuple[int, Packet | bytes]]) -> FrameBatch:
    """Frames at (ms after T0, frame) into one batch."""
    return FrameBatch.from_frames([bytes(f) for _, f in frames], [T0 + t * MS for t, _ in frames])


def tcp_session() -> list[tuple[int, Packet]]:
    """Handshake, 100 bytes each way, FIN/FIN/ACK: Zeek's SF."""
    c, s = 1000, 5000
    return [
        (0, c2s(TCP(sport=40000, dport=80, flags="S", seq=c))),
        (1, s2c(TCP(sport=80, dport=40000, flags="SA", seq=s, ack=c + 1))),
        (2, c2s(TCP(sport=40000, dport=80, flags="A", seq=c + 1, ack=s + 1))),
        (3, c2s(TCP(sport=40000, dport=80, flags="PA", seq=c + 1, ack=s + 1) / Raw(b"x" * 100))),
        (4, s2c(TCP(sport=80, dport=40000, flags="PA", seq=s + 1, ack=c + 101) / Raw(b"y" * 100))),
        (5, c2s(TCP(sport=40000, dport=80, flags="FA", seq=c + 101, ack=s + 101))),
        (6, s2c(TCP(sport=80, dport=40000, flags="FA", seq=s + 101, ack=c + 102))),
        (7, c2s(TCP(sport=40000, dport=80, flags="A", seq=c + 102, ack=s + 102))),
    ]


def run(frames: list[tuple[int, Packet | bytes]], **opts: object) -> tuple[AnalysisPipeline, Keep]:
    keep = Keep()
    pipe = AnalysisPipeline(
        identity(),
        [keep],
        node="n1",
        options=PipelineOptions(max_flows=1024, **opts),  # type: ignore[arg-type]
    )
    pipe.on_batch(batch(frames))
    pipe.flush()
    return pipe, keep


def test_tcp_session_becomes_one_sf_record_with_exact_counts_and_pods() -> None:
    """A full TCP session gives one SF record: per-direction packets and IP bytes, both pods."""
    frames = tcp_session()
    _, keep = run(frames)
    assert len(keep.records) == 1
    r = keep.records[0]
    assert (r.orig_h, r.orig_p, r.resp_h, r.resp_p, r.proto) == (CLIENT, 40000, SERVER, 80, "tcp")
    assert r.conn_state == "SF"
    orig = [f for _, f in frames if f[IP].src == CLIENT]
    resp = [f for _, f in frames if f[IP].src == SERVER]
    assert (r.orig_pkts, r.resp_pkts) == (len(orig), len(resp))
    assert r.orig_ip_bytes == sum(len(f[IP]) for f in orig)
    assert r.resp_ip_bytes == sum(len(f[IP]) for f in resp)
    assert (r.orig_bytes, r.resp_bytes) == (100, 100)
    assert (r.orig_pod, r.resp_pod, r.orig_namespace) == ("client", "web", "shop")
    assert r.end_reason == "flush"  # still in the table (closed timeout) until the flush


def test_refused_connection_is_rej() -> None:
    """SYN answered by RST-ACK is Zeek's REJ."""
    _, keep = run(
        [
            (0, c2s(TCP(sport=40001, dport=81, flags="S", seq=1))),
            (1, s2c(TCP(sport=81, dport=40001, flags="RA", seq=0, ack=2))),
        ]
    )
    assert [r.conn_state for r in keep.records] == ["REJ"]


def test_dns_nxdomain_udp_ipv6_and_icmp_each_give_their_record() -> None:
    """DNS (rcode NXDOMAIN), an IPv6 UDP exchange and a ping: one record each, right protocol."""
    q = DNS(id=7, rd=1, qd=DNSQR(qname="nope.example.", qtype="A"))
    r = DNS(id=7, qr=1, rcode=3, qd=DNSQR(qname="nope.example.", qtype="A"))
    frames: list[tuple[int, Packet | bytes]] = [
        (0, c2s(UDP(sport=5353, dport=53) / q)),
        (1, s2c(UDP(sport=53, dport=5353) / r)),
        (2, eth(A_MAC, B_MAC) / IPv6(src=CLIENT6, dst=SERVER6) / UDP(sport=9, dport=7) / b"a"),
        (3, eth(B_MAC, A_MAC) / IPv6(src=SERVER6, dst=CLIENT6) / UDP(sport=7, dport=9) / b"bb"),
        (4, c2s(ICMP(type=8, id=1, seq=1))),
        (5, s2c(ICMP(type=0, id=1, seq=1))),
    ]
    pipe, keep = run(frames)
    by = {(rec.proto, rec.ip_version, rec.resp_p): rec for rec in keep.records}
    assert len(keep.records) == 3
    dns = by[("udp", 4, 53)]
    assert (dns.dns_query, dns.dns_rcode_name) == ("nope.example", "NXDOMAIN")
    v6 = by[("udp", 6, 7)]
    assert (v6.orig_pkts, v6.resp_pkts, v6.orig_ip_bytes, v6.resp_ip_bytes) == (1, 1, 49, 50)
    assert (v6.orig_pod, v6.resp_pod) == ("client", "web")
    assert ("icmp", 4, 0) in by
    c = pipe.counters()
    assert (c.packets, c.flows_ended, c.records_by_proto) == (6, 3, {"udp": 2, "icmp": 1})


def test_malformed_frames_are_counted_by_reason_and_do_not_stop_the_batch() -> None:
    """A truncated IPv4 header and a bad TCP data offset are counted by reason; others flow."""
    good = c2s(UDP(sport=1, dport=2) / b"x")
    truncated = bytes(c2s(UDP(sport=1, dport=2)))[: 14 + 10]
    bad_tcp = bytearray(bytes(c2s(TCP(sport=3, dport=4, flags="S"))))
    bad_tcp[14 + 20 + 12] = 0x10  # data offset 1 word: shorter than the header itself
    pipe, keep = run([(0, good), (1, truncated), (2, bytes(bad_tcp))])
    assert pipe.malformed() == {"truncated_l3": 1, "bad_tcp_header_len": 1}
    assert len(keep.records) == 1


def test_mirrored_routed_copy_is_suppressed_once() -> None:
    """The routed second copy (new MACs, TTL-1, within the window) counts once, as a duplicate."""
    first = c2s(UDP(sport=1000, dport=2000) / b"payload!", ttl=64, id=42)
    routed = (
        eth(R_MAC, B_MAC)
        / IP(src=CLIENT, dst=SERVER, ttl=63, id=42)
        / UDP(sport=1000, dport=2000)
        / b"payload!"
    )
    pipe, keep = run([(0, first), (0, routed)])
    assert pipe.duplicates == 1
    assert [r.orig_pkts for r in keep.records] == [1]
    _, no_dedup = run([(0, first), (0, routed)], dedup_window_ns=0)
    assert [r.orig_pkts for r in no_dedup.records] == [2]


def test_expiry_follows_packet_time_across_batches() -> None:
    """A UDP flow idle for longer than its timeout in packet time ends as idle, before flush."""
    keep = Keep()
    pipe = AnalysisPipeline(identity(), [keep], options=PipelineOptions(max_flows=64))
    pipe.on_batch(batch([(0, c2s(UDP(sport=1, dport=2)))]))
    pipe.on_batch(batch([(61_000, c2s(UDP(sport=3, dport=4)))]))  # 61 s later: UDP idle is 60 s
    assert [(r.orig_p, r.end_reason) for r in keep.records] == [(1, "idle")]
    pipe.flush()
    assert [(r.orig_p, r.end_reason) for r in keep.records] == [(1, "idle"), (3, "flush")]


def test_tick_expires_flows_while_no_batch_arrives() -> None:
    """tick() with a later wall clock ends idle flows on a quiet link; an earlier one does not."""
    keep = Keep()
    pipe = AnalysisPipeline(identity(), [keep], options=PipelineOptions(max_flows=64))
    pipe.on_batch(batch([(0, c2s(UDP(sport=1, dport=2)))]))
    pipe.tick(T0 - 10 * 1_000_000_000)  # a clock behind packet time changes nothing
    assert keep.records == []
    pipe.tick(T0 + 61 * 1_000_000_000)
    assert [r.end_reason for r in keep.records] == ["idle"]


def test_empty_batch_is_a_no_op() -> None:
    """An empty batch (a ring block timeout with nothing in it) changes no counter."""
    pipe = AnalysisPipeline(identity(), options=PipelineOptions(max_flows=64))
    pipe.on_batch(FrameBatch.from_frames([], []))
    assert pipe.counters().packets == 0
