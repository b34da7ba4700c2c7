"""The exporter on the real flow table: frames crafted with scapy, decoded, flowed, then scraped."""

from __future__ import annotations

import ipaddress
import random
import struct

from prometheus_client import CollectorRegistry
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from analyzers import FlowTable, IdentityMap, decode
from capture import FrameBatch
from exporters import (
    CardinalityConfig,
    EndedFlows,
    FlowMetricsCollector,
    FlowTableSource,
    MetricsConfig,
)
from exporters._cardinality import GLOBAL_SERIES, PAIR_SERIES, POD_SERIES
from tests.unit._metrics_doubles import NODE, pod

A, B, DNS_POD = pod("shop", "frontend"), pod("shop", "backend"), pod("kube-system", "coredns")
IP_A, IP_B, IP_DNS = "10.16.0.5", "10.16.0.6", "10.16.0.10"
T0 = 1_700_000_000_000_000_000


def tcp_conversation() -> tuple[list[bytes], int, int]:
    """A complete TCP connection A -> B; returns frames and the L2 bytes each side sent."""
    a = Ether() / IP(src=IP_A, dst=IP_B)
    b = Ether() / IP(src=IP_B, dst=IP_A)
    frames = [
        a / TCP(sport=40000, dport=80, flags="S", seq=100),
        b / TCP(sport=80, dport=40000, flags="SA", seq=500, ack=101),
        a / TCP(sport=40000, dport=80, flags="A", seq=101, ack=501),
        a / TCP(sport=40000, dport=80, flags="PA", seq=101, ack=501) / (b"x" * 1000),
        b / TCP(sport=80, dport=40000, flags="PA", seq=501, ack=1101) / (b"y" * 200),
        a / TCP(sport=40000, dport=80, flags="FA", seq=1101, ack=701),
        b / TCP(sport=80, dport=40000, flags="FA", seq=701, ack=1102),
        a / TCP(sport=40000, dport=80, flags="A", seq=1102, ack=702),
    ]
    raw = [bytes(f) for f in frames]
    from_a = sum(len(r) for r, f in zip(raw, frames, strict=True) if f[IP].src == IP_A)
    return raw, from_a, sum(len(r) for r in raw) - from_a


def dns_exchange() -> list[bytes]:
    q = DNS(id=7, rd=1, qd=DNSQR(qname="backend.shop.svc.cluster.local"))
    r = DNS(id=7, qr=1, rcode=3, qd=DNSQR(qname="backend.shop.svc.cluster.local"))
    return [
        bytes(Ether() / IP(src=IP_A, dst=IP_DNS) / UDP(sport=5353, dport=53) / q),
        bytes(Ether() / IP(src=IP_DNS, dst=IP_A) / UDP(sport=53, dport=5353) / r),
    ]


def feed(table: FlowTable, frames: list[bytes], start_ns: int) -> None:
    ts = [start_ns + i * 1_000_000 for i in range(len(frames))]  # 1 ms apart
    batch = FrameBatch.from_frames(frames, ts)
    table.process(batch, decode(batch))


def wired_table() -> tuple[FlowTable, CollectorRegistry, EndedFlows]:
    """A real FlowTable knowing pods A, B and the DNS pod, scraped through its own registry."""
    ids = IdentityMap()
    ids.replace("test", [(IP_A, A), (IP_B, B), (IP_DNS, DNS_POD)])
    ended = EndedFlows()
    table = FlowTable(ids, on_ended=[ended], node=NODE)
    collector = FlowMetricsCollector(
        FlowTableSource(table), ids, MetricsConfig(node=NODE), ended=ended
    )
    registry = CollectorRegistry()
    registry.register(collector)
    return table, registry, ended


def test_real_flow_table_feeds_pod_counters_exactly() -> None:
    """L2 bytes per pod match the crafted frames while active, and stay equal once flows end."""
    table, registry, _ = wired_table()
    frames, from_a, from_b = tcp_conversation()
    feed(table, frames, T0)
    feed(table, dns_exchange(), T0 + 100_000_000)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"node": NODE, **labels})

    fe = {"namespace": "shop", "pod": "frontend"}
    dns_bytes = sum(len(f) for f in dns_exchange()[:1])
    assert value("mirrorscope_pod_bytes_total", direction="tx", **fe) == from_a + dns_bytes
    assert value("mirrorscope_pod_bytes_total", direction="rx", namespace="shop", pod="backend") \
        == from_a  # fmt: skip
    assert value("mirrorscope_pod_packets_total", direction="tx", **fe) == 5 + 1
    assert value("mirrorscope_flows_active", protocol="tcp") == 1

    table.flush()  # every flow ends: totals move from the snapshot to the ended store
    assert value("mirrorscope_pod_bytes_total", direction="tx", **fe) == from_a + dns_bytes
    assert value("mirrorscope_pod_bytes_total", direction="tx", namespace="shop", pod="backend") \
        == from_b  # fmt: skip
    assert value("mirrorscope_flows_active", protocol="tcp") == 0
    assert value("mirrorscope_flows_started_total", protocol="tcp") == 1
    assert value("mirrorscope_tcp_handshake_rtt_seconds_count", **fe) == 1
    assert value("mirrorscope_tcp_handshake_rtt_seconds_bucket", le="0.0025", **fe) == 1
    assert value("mirrorscope_dns_queries_total", **fe) == 1
    assert value("mirrorscope_dns_responses_total", rcode="NXDOMAIN", **fe) == 1


def syn_frame(src: str, dst: str, sport: int, dport: int) -> bytes:
    """Ethernet + IPv4 + TCP SYN, built with struct (5000 scapy packets would take seconds)."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 1024, 0, 0)
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0,
        ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed,
    )  # fmt: skip
    return b"\x02\0\0\0\0\x01\x02\0\0\0\0\x02\x08\x00" + ip + tcp


def test_scan_through_the_real_pipeline_keeps_series_under_the_bound() -> None:
    """5000 SYNs from random external addresses to random ports of 3 pods add no series."""
    ids = IdentityMap()
    ids.replace("test", [(IP_A, A), (IP_B, B), (IP_DNS, DNS_POD)])
    ended = EndedFlows()
    table = FlowTable(ids, on_ended=[ended], node=NODE)
    bound = GLOBAL_SERIES + 3 * POD_SERIES + 3 * 10 * PAIR_SERIES
    config = MetricsConfig(node=NODE, cardinality=CardinalityConfig(top_k=10, max_series=bound))
    collector = FlowMetricsCollector(FlowTableSource(table), ids, config, ended=ended)
    registry = CollectorRegistry()
    registry.register(collector)
    feed(table, [syn_frame("198.51.100.7", ip, 40000, 443) for ip in (IP_A, IP_B, IP_DNS)], T0)
    before = sum(len(m.samples) for m in registry.collect())

    rng = random.Random(3)
    frames = [
        syn_frame(
            str(ipaddress.IPv4Address(rng.getrandbits(32) | 0x0100_0000)),
            rng.choice((IP_A, IP_B, IP_DNS)),
            rng.randrange(1024, 65536),
            rng.randrange(1, 65536),
        )
        for _ in range(5000)
    ]
    feed(table, frames, T0 + 1_000_000_000)
    assert len(table) > 4000  # the scan really created flows
    after = sum(len(m.samples) for m in registry.collect())
    assert after == before
    assert after <= bound
    flows = registry.get_sample_value("mirrorscope_flows_active", {"node": NODE, "protocol": "tcp"})
    assert flows == len(table)


def troubled_conversation() -> tuple[list[bytes], list[bytes]]:
    """A -> B: handshake, data sent twice (one retransmit), B advertising a zero window; then
    (second list) B resets the connection."""
    a = Ether() / IP(src=IP_A, dst=IP_B)
    b = Ether() / IP(src=IP_B, dst=IP_A)
    running = [
        a / TCP(sport=40001, dport=80, flags="S", seq=100),
        b / TCP(sport=80, dport=40001, flags="SA", seq=500, ack=101),
        a / TCP(sport=40001, dport=80, flags="A", seq=101, ack=501),
        a / TCP(sport=40001, dport=80, flags="PA", seq=101, ack=501) / (b"x" * 1000),
        a / TCP(sport=40001, dport=80, flags="PA", seq=101, ack=501) / (b"x" * 1000),
        b / TCP(sport=80, dport=40001, flags="A", seq=501, ack=1101, window=0),
    ]
    reset = [b / TCP(sport=80, dport=40001, flags="R", seq=501)]
    return [bytes(f) for f in running], [bytes(f) for f in reset]


def test_tcp_and_dns_health_of_in_flight_flows_is_counted_once() -> None:
    """Retransmits, zero windows, handshake RTT and DNS of flows still in the table are exported;
    the RST shows while the flow is active; once the flows end the values are unchanged."""
    table, registry, ended = wired_table()
    fe = {"node": NODE, "namespace": "shop", "pod": "frontend"}
    be = {**fe, "pod": "backend"}

    def health() -> dict[str, float | None]:
        get = registry.get_sample_value
        return {
            "retransmits": get("mirrorscope_tcp_retransmits_total", fe),
            "zero_windows_backend": get("mirrorscope_tcp_zero_windows_total", be),
            "resets_backend": get("mirrorscope_tcp_resets_total", be),
            "resets_frontend": get("mirrorscope_tcp_resets_total", fe),
            "rtt_count": get("mirrorscope_tcp_handshake_rtt_seconds_count", fe),
            "rtt_le_2.5ms": get(
                "mirrorscope_tcp_handshake_rtt_seconds_bucket", {**fe, "le": "0.0025"}
            ),
            "dns_queries": get("mirrorscope_dns_queries_total", fe),
            "nxdomain": get("mirrorscope_dns_responses_total", {**fe, "rcode": "NXDOMAIN"}),
            "dns_latency_count": get("mirrorscope_dns_response_latency_seconds_count", fe),
        }

    running, reset = troubled_conversation()
    feed(table, running, T0)
    feed(table, dns_exchange(), T0 + 100_000_000)
    assert len(table) == 2  # both flows are in flight
    assert len(ended) == 0
    in_flight = health()
    assert in_flight == {
        "retransmits": 1, "zero_windows_backend": 1, "resets_backend": 0, "resets_frontend": 0,
        "rtt_count": 1, "rtt_le_2.5ms": 1, "dns_queries": 1, "nxdomain": 1,
        "dns_latency_count": 1,
    }  # fmt: skip
    feed(table, reset, T0 + 200_000_000)
    assert len(table) == 2  # a reset connection lingers until the closed timeout
    after_rst = health()
    assert after_rst == {**in_flight, "resets_backend": 1}
    assert health() == after_rst  # a second scrape of the same state changes nothing
    table.flush()
    assert len(ended) == 2
    assert health() == after_rst  # now from the ended records: the same, not twice as much
    assert health() == after_rst
