"""Flow table fed by the real decoder with scapy-built frames: the two contracts fit together."""

from __future__ import annotations

import pytest
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether

from analyzers import FlowRecord, decode
from capture._batch import FrameBatch
from tests.unit.flowkit import T0, pod_identity, table

C, S, DNS_IP = "10.0.0.1", "10.0.0.2", "10.96.0.10"


def _frames() -> list[tuple[float, bytes]]:
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    cs = e / IP(src=C, dst=S)
    sc = e / IP(src=S, dst=C)
    tcp = [
        (0.000, cs / TCP(sport=40000, dport=80, flags="S", seq=100)),
        (0.001, sc / TCP(sport=80, dport=40000, flags="SA", seq=500, ack=101)),
        (0.002, cs / TCP(sport=40000, dport=80, flags="A", seq=101, ack=501)),
        (0.003, cs / TCP(sport=40000, dport=80, flags="PA", seq=101, ack=501) / (b"x" * 50)),
        (0.004, sc / TCP(sport=80, dport=40000, flags="PA", seq=501, ack=151) / (b"y" * 70)),
        (0.005, cs / TCP(sport=40000, dport=80, flags="FA", seq=151, ack=571)),
        (0.006, sc / TCP(sport=80, dport=40000, flags="FA", seq=571, ack=152)),
        (0.007, cs / TCP(sport=40000, dport=80, flags="A", seq=152, ack=572)),
    ]
    q = DNS(id=7, rd=1, qd=DNSQR(qname="nope.example.", qtype="AAAA"))
    r = DNS(id=7, qr=1, rcode=3, qd=DNSQR(qname="nope.example.", qtype="AAAA"))
    dns = [
        (0.010, e / IP(src=C, dst=DNS_IP) / UDP(sport=5353, dport=53) / q),
        (0.013, e / IP(src=DNS_IP, dst=C) / UDP(sport=53, dport=5353) / r),
    ]
    other = [
        (0.020, cs / ICMP(type=8, id=1, seq=1) / (b"p" * 56)),
        (0.021, sc / ICMP(type=0, id=1, seq=1) / (b"p" * 56)),
        (0.030, e / IPv6(src="fd00::1", dst="fd00::2") / UDP(sport=1000, dport=2000) / b"v6"),
        (0.040, e / Dot1Q(vlan=30) / IP(src=C, dst=S) / UDP(sport=1000, dport=2000) / b"vl"),
        (0.041, e / IP(src=C, dst=S) / UDP(sport=1000, dport=2000) / b"no-vlan"),
    ]
    return [(t, bytes(p)) for t, p in tcp + dns + other]


def _records() -> list[FlowRecord]:
    frames = _frames()
    batch = FrameBatch.from_frames([f for _, f in frames], [T0 + int(t * 1e9) for t, _ in frames])
    ft, sink = table(identity=pod_identity())
    ft.process(batch, decode(batch))
    ft.flush()
    return sorted(sink.records, key=lambda r: r.ts)


def test_decoded_tcp_connection_matches_zeek() -> None:
    """A scapy 3WHS + data + FIN exchange decodes into one SF flow with Zeek's history and sizes."""
    tcp = [r for r in _records() if r.proto == "tcp"]
    assert len(tcp) == 1
    r = tcp[0]
    assert (r.conn_state, r.history, r.orig_bytes, r.resp_bytes) == ("SF", "ShADdFf", 50, 70)
    assert (r.orig_pkts, r.resp_pkts, r.orig_ip_bytes) == (5, 3, 4 * 40 + 90)
    assert (r.orig_pod, r.resp_pod) == ("client", "server")
    assert r.tcp_rtt_client == pytest.approx(0.001)


def test_decoded_dns_nxdomain_icmp_ipv6_vlan() -> None:
    """DNS NXDOMAIN (AAAA), an echo pair, an IPv6 flow and a VLAN twin all come out right."""
    recs = _records()
    dns = next(r for r in recs if r.resp_p == 53)
    assert (dns.dns_query, dns.dns_qtype_name, dns.dns_rcode_name) == (
        "nope.example",
        "AAAA",
        "NXDOMAIN",
    )
    assert dns.dns_latency == pytest.approx(0.003)
    icmp = next(r for r in recs if r.proto == "icmp")
    assert (icmp.orig_p, icmp.resp_p, icmp.orig_pkts, icmp.resp_pkts) == (8, 0, 1, 1)
    assert any(r.ip_version == 6 and r.orig_h == "fd00::1" for r in recs)
    udp2000 = [r for r in recs if r.resp_p == 2000 and r.ip_version == 4]
    assert sorted(r.vlan for r in udp2000) == [0, 30]
