"""Duplicate suppression: routed and NATed mirror copies count once, distinct packets all stay."""

from __future__ import annotations

import numpy as np
import pytest
from scapy.contrib.geneve import GENEVE
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet, Raw

from analyzers import Deduplicator, decode
from capture._batch import FrameBatch

# Explicit MACs: scapy would otherwise resolve them, which can mean ARP on a real network.
POD_SIDE = {"src": "0a:00:00:00:00:01", "dst": "0a:00:00:00:00:fe"}
ROUTED_SIDE = {"src": "0a:00:00:00:00:ee", "dst": "0a:00:00:00:00:02"}
US = 1_000


def run(dedup: Deduplicator, packets: list[Packet], ts_ns: list[int]) -> list[bool]:
    """Decode ``packets`` as one batch and return the keep mask as a list."""
    batch = FrameBatch.from_frames([bytes(p) for p in packets], ts_ns)
    return dedup.mask(batch, decode(batch)).tolist()


def tcp_packet(seq: int = 1000, ip_id: int = 321) -> Packet:
    return (
        Ether(**POD_SIDE)
        / IP(src="10.16.0.5", dst="10.96.0.10", ttl=64, id=ip_id)
        / TCP(sport=40000, dport=80, seq=seq, ack=77, flags="PA", window=502)
        / Raw(b"GET / HTTP/1.1\r\n")
    )


def routed(pkt: Packet) -> Packet:
    """The same packet after an OVN logical router: new MACs, TTL-1, checksums recomputed."""
    copy = pkt.copy()
    copy[Ether].src, copy[Ether].dst = ROUTED_SIDE["src"], ROUTED_SIDE["dst"]
    ip = copy[IP] if IP in copy else copy[IPv6]
    if IP in copy:
        ip.ttl -= 1
        del ip.chksum
    else:
        ip.hlim -= 1
    for layer in (TCP, UDP, ICMP):
        if layer in copy:
            del copy[layer].chksum
    return Ether(bytes(copy))


def test_routed_copy_counts_once() -> None:
    """A packet and its routed copy 3 µs later: the copy is suppressed and counted."""
    dedup = Deduplicator()
    pkt = tcp_packet()
    assert run(dedup, [pkt, routed(pkt)], [0, 3 * US]) == [True, False]
    assert dedup.suppressed == 1


def test_dnat_copy_counts_once() -> None:
    """A service DNAT (ClusterIP:80 → pod:8080) plus routing: one packet."""
    dedup = Deduplicator()
    pkt = tcp_packet()
    nat = routed(pkt)
    nat[IP].dst, nat[TCP].dport = "10.16.0.9", 8080
    del nat[IP].chksum, nat[TCP].chksum
    assert run(dedup, [pkt, Ether(bytes(nat))], [0, 4 * US]) == [True, False]
    assert dedup.suppressed == 1


def test_snat_copy_counts_once() -> None:
    """An SNAT to the node address and port: one packet."""
    dedup = Deduplicator()
    pkt = tcp_packet()
    nat = routed(pkt)
    nat[IP].src, nat[TCP].sport = "172.18.0.2", 61000
    del nat[IP].chksum, nat[TCP].chksum
    assert run(dedup, [pkt, Ether(bytes(nat))], [0, 2 * US]) == [True, False]


def test_answers_to_one_scanner_port_differing_only_in_source_port_are_kept() -> None:
    """nmap -sS sends every probe from one port with one sequence number, so the victim's RST-ACKs
    differ only in their source port: a port-only change at the same address is no NAT copy."""
    dedup = Deduplicator()
    answers = [
        Ether(**ROUTED_SIDE)
        / IP(src="10.16.0.9", dst="10.16.0.5", ttl=64, id=0)
        / TCP(sport=port, dport=40000, seq=0, ack=1001, flags="RA", window=0)
        for port in (21, 22, 23, 25)
    ]
    assert run(dedup, answers, [0, 2 * US, 4 * US, 6 * US]) == [True] * 4
    assert dedup.suppressed == 0


def test_udp_icmp_and_ipv6_copies_count_once() -> None:
    """DNS over UDP (DNATed), ICMP echo with a NATed identifier, routed IPv6: each counts once."""
    dns = (
        Ether(**POD_SIDE)
        / IP(src="10.16.0.5", dst="10.96.0.10", id=9)
        / UDP(sport=53001, dport=53)
        / DNS(id=4242, qd=DNSQR(qname="kubernetes.default.svc.cluster.local"))
    )
    dns_nat = routed(dns)
    dns_nat[IP].dst = "10.16.0.3"
    del dns_nat[IP].chksum, dns_nat[UDP].chksum
    ping = (
        Ether(**POD_SIDE)
        / IP(src="10.16.0.5", dst="8.8.8.8", id=5)
        / ICMP(id=7, seq=1)
        / Raw(b"p" * 48)
    )
    ping_nat = routed(ping)
    ping_nat[IP].src, ping_nat[ICMP].id = "172.18.0.2", 31000
    del ping_nat[IP].chksum, ping_nat[ICMP].chksum
    v6 = (
        Ether(**POD_SIDE)
        / IPv6(src="fd00:10:16::5", dst="fd00:10:16::9", hlim=64)
        / TCP(sport=1, dport=2, seq=5, ack=6, flags="A")
    )
    dedup = Deduplicator()
    packets = [dns, Ether(bytes(dns_nat)), ping, Ether(bytes(ping_nat)), v6, routed(v6)]
    ts = [0, 2 * US, 10 * US, 12 * US, 20 * US, 21 * US]
    assert run(dedup, packets, ts) == [True, False, True, False, True, False]
    assert dedup.suppressed == 3


def test_consecutive_packets_of_one_flow_are_all_kept() -> None:
    """A burst of distinct segments, pure ACKs and datagrams of one flow, microseconds apart."""
    segments = [tcp_packet(seq=1000 + 16 * i, ip_id=321 + i) for i in range(20)]
    acks = [
        Ether(**POD_SIDE)
        / IPv6(src="fd00::1", dst="fd00::2")
        / TCP(sport=80, dport=40000, seq=1, ack=1000 + 1448 * i, flags="A")
        for i in range(20)
    ]
    datagrams = [
        Ether(**POD_SIDE)
        / IP(src="10.16.0.5", dst="10.16.0.6", id=0)
        / UDP(sport=5000, dport=5001)
        / Raw(i.to_bytes(4, "big") * 4)
        for i in range(20)
    ]
    packets = segments + acks + datagrams
    dedup = Deduplicator()
    assert all(run(dedup, packets, [i * US for i in range(len(packets))]))
    assert dedup.suppressed == 0


def test_copies_further_apart_than_the_window_are_kept() -> None:
    """The window is configurable: the same packet 3 ms later is kept with a 1 ms window."""
    pkt = tcp_packet()
    assert run(Deduplicator(window_ns=1_000_000), [pkt, routed(pkt)], [0, 3_000_000]) == [
        True,
        True,
    ]
    assert run(Deduplicator(window_ns=5_000_000), [pkt, routed(pkt)], [0, 3_000_000]) == [
        True,
        False,
    ]


def test_copy_in_the_next_batch_is_suppressed() -> None:
    """The original at the end of one batch and its copy at the start of the next: counted once."""
    dedup = Deduplicator()
    fillers = [Ether(**POD_SIDE) / IP(id=i) / UDP() / Raw(b"f") for i in (1, 2)]
    pkt = tcp_packet()
    assert run(dedup, [fillers[0], pkt], [0, 100 * US]) == [True, True]
    assert run(dedup, [routed(pkt), fillers[1]], [103 * US, 900 * US]) == [False, True]
    assert dedup.suppressed == 1


def test_tunnelled_copy_of_a_bare_packet_is_suppressed() -> None:
    """The inner packet of a Geneve frame to another node equals the bare copy from the pod port."""
    pkt = tcp_packet()
    tunnelled = (
        Ether(**ROUTED_SIDE)
        / IP(src="192.168.1.10", dst="192.168.1.11")
        / UDP(sport=50000, dport=6081)
        / GENEVE(vni=7, proto=0x6558)
        / routed(pkt)
    )
    dedup = Deduplicator()
    assert run(dedup, [pkt, tunnelled], [0, 6 * US]) == [True, False]


def test_non_ip_rows_are_never_suppressed() -> None:
    """Repeated ARP requests stay: only IP packets are fingerprinted."""
    arp = Ether(src=POD_SIDE["src"], dst="ff:ff:ff:ff:ff:ff") / ARP(
        psrc="10.16.0.5", pdst="10.16.0.1"
    )
    assert run(Deduplicator(), [arp, arp, arp], [0, 1, 2]) == [True, True, True]


def test_retransmission_with_a_new_ip_id_is_kept() -> None:
    """An IPv4 retransmission (same seq, payload) carries a new IP id: it is not a mirror copy."""
    first = tcp_packet(ip_id=100)
    again = tcp_packet(ip_id=101)
    assert run(Deduplicator(), [first, again], [0, 200 * US]) == [True, True]


def test_both_endpoints_rewritten_is_a_known_miss() -> None:
    """Documented false negative: with SNAT and DNAT in one pass no endpoint matches, both stay."""
    pkt = tcp_packet()
    nat = routed(pkt)
    nat[IP].src, nat[IP].dst, nat[TCP].sport, nat[TCP].dport = (
        "172.18.0.2",
        "10.16.0.9",
        61000,
        8080,
    )
    del nat[IP].chksum, nat[TCP].chksum
    assert run(Deduplicator(), [pkt, Ether(bytes(nat))], [0, 2 * US]) == [True, True]


def test_no_false_positives_on_many_distinct_packets() -> None:
    """2000 distinct packets of 500 flows, 100 ns apart (all inside one window): none dropped."""
    rng = np.random.default_rng(5)
    frames = []
    for i in range(2000):
        flow = int(rng.integers(500))
        src = f"10.16.{flow // 250}.{flow % 250 + 1}"
        kind = i % 4
        if kind == 0:
            body = TCP(
                sport=30000 + flow,
                dport=80,
                seq=int(rng.integers(1 << 32)),
                ack=int(rng.integers(1 << 32)),
                flags="A",
            )
        elif kind == 1:
            body = UDP(sport=30000 + flow, dport=53) / Raw(rng.bytes(int(rng.integers(12, 60))))
        elif kind == 2:
            body = ICMP(id=flow, seq=i) / Raw(rng.bytes(16))
        else:
            body = TCP(sport=30000 + flow, dport=443, seq=i * 1448, ack=1, flags="PA") / Raw(
                rng.bytes(100)
            )
        frames.append(
            bytes(Ether(**POD_SIDE) / IP(src=src, dst="10.96.0.10", id=i & 0xFFFF) / body)
        )
    batch = FrameBatch.from_frames(frames, [i * 100 for i in range(len(frames))])
    dedup = Deduplicator()
    assert dedup.mask(batch, decode(batch)).all()
    assert dedup.suppressed == 0


def test_negative_window_is_refused() -> None:
    """A negative window is a configuration error, reported at construction."""
    with pytest.raises(ValueError, match="window_ns"):
        Deduplicator(window_ns=-1)


def test_window_state_expires_across_batches() -> None:
    """An original older than the window, kept only in an earlier batch, no longer suppresses."""
    dedup = Deduplicator(window_ns=1_000_000)
    pkt = tcp_packet()
    filler = Ether(**POD_SIDE) / IP(id=77) / UDP() / Raw(b"later")
    assert run(dedup, [pkt], [0]) == [True]
    assert run(dedup, [filler], [5_000_000]) == [True]
    assert run(dedup, [routed(pkt)], [5_000_100]) == [True]
    assert dedup.suppressed == 0


def test_a_very_wide_window_keeps_bounded_state() -> None:
    """A window of minutes keeps every distinct packet and still suppresses a copy."""
    dedup = Deduplicator(window_ns=600 * 10**9)
    pkt = tcp_packet()
    fillers = [Ether(**POD_SIDE) / IP(id=i) / UDP() / Raw(b"x") for i in range(2000)]
    assert all(run(dedup, fillers, list(range(2000))))
    assert run(dedup, [routed(pkt), routed(pkt)], [10**9, 10**9 + 1]) == [True, False]
    assert dedup.suppressed == 1


def test_a_copy_at_another_address_must_come_within_the_nat_window() -> None:
    """Probes alike but for their source, 0.7 ms apart to one destination, are distinct packets
    (a sweep, a crafted trace); the same pair 50 us apart is a NATed copy; an exact copy 0.7 ms
    later is still one (routing keeps both addresses)."""

    def probe(src: str) -> Packet:
        return Ether(**POD_SIDE) / IP(src=src, dst="10.0.0.9", id=1) / UDP(sport=7, dport=9)

    a, b = probe("10.0.0.1"), probe("10.0.0.2")
    dd = Deduplicator()
    assert run(dd, [a, b], [0, 700 * US]) == [True, True]
    assert run(dd, [a, b], [10_000 * US, 10_050 * US]) == [True, False]
    assert run(dd, [a, a], [20_000 * US, 20_700 * US]) == [True, False]


def test_the_fp_column_is_the_whole_64_bit_fingerprint() -> None:
    """The decoder's ``fp`` column holds each IP row's fingerprint bit for bit, as the kernel
    computes it from the row (a mixed uint64/int64 expression in numba would round it through
    a float and lose the low bits), and 0 on rows that are not IP."""
    from numba import njit  # noqa: PLC0415 - the test compiles a one-row caller

    from analyzers._decrow import ROW, Row  # noqa: PLC0415
    from analyzers._dedupkernel import fingerprint  # noqa: PLC0415

    @njit
    def one(data: np.ndarray, end: int, rows: np.ndarray) -> np.uint64:
        row: Row = rows[0]
        return fingerprint(data, end, row)

    packets = [
        tcp_packet(),
        Ether(**POD_SIDE) / IP(src="10.16.0.5", dst="10.96.0.10") / UDP(sport=5353, dport=53),
        Ether(**POD_SIDE) / IPv6(src="fd00::5", dst="fd00::a") / TCP(sport=1, dport=2) / Raw(b"x"),
        Ether(**POD_SIDE) / IP(src="10.16.0.5", dst="10.16.0.6") / ICMP(type=8),
        Ether(**POD_SIDE) / ARP(pdst="10.16.0.6"),
    ]
    batch = FrameBatch.from_frames([bytes(p) for p in packets], [US * i for i in range(5)])
    dec = decode(batch)
    names = "status ipver proto sport dport ip_len ip_id tcp_seq tcp_ack tcp_flags tcp_win frag"
    for i in range(len(packets)):
        if dec.status[i] > 1:
            assert dec.fp[i] == 0
            continue
        rows = np.zeros(1, ROW)
        for name in [*names.split(), "l4_off", "l4_len"]:  # what the fingerprint reads
            rows[0][name] = int(getattr(dec, name)[i])
        end = int(batch.offsets[i] + batch.caplens[i])
        assert int(dec.fp[i]) == int(one(batch.data, end, rows))
    assert (dec.fp[:4] > np.uint64(1 << 53)).any()  # values a float could not hold exactly
