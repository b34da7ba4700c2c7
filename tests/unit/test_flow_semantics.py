"""Flow records on crafted pcaps against Zeek's conn.log semantics (issue 10).

Each pcap is built with scapy (or, for the 4 GiB transfer, from one scapy template with patched
sequence numbers), written to ``tmp_path`` and read back through the public path: the pcap file
source with a batch size, then ``AnalysisPipeline``. Expected values are Zeek's for the same
packets (the zeek-dev baselines show the same patterns: modbus for a reset connection reused,
pop3 for SYN retries after a refusal, ftp__bigtransfer for a transfer past 4 GiB).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

from analyzers import AnalysisPipeline, FlowRecord, IdentityMap
from capture import open_capture_file

# Explicit MACs: scapy would otherwise resolve them, which can mean ARP on a real network.
MAC = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
T0 = 1_700_000_000.0
C, S = "10.0.0.1", "10.0.0.2"
CP, SP = 40000, 502


class _Records:
    def __init__(self) -> None:
        self.records: list[FlowRecord] = []

    def on_flows_ended(self, records: list[FlowRecord]) -> None:
        self.records.extend(records)


def records(path: Path, batch_size: int = 65536) -> list[FlowRecord]:
    """Every record of the pcap at ``path``, read in batches of ``batch_size`` frames."""
    sink = _Records()
    pipeline = AnalysisPipeline(IdentityMap(), [sink])
    with open_capture_file(path, batch_size=batch_size) as source:
        for batch in source.batches():
            pipeline.on_batch(batch)
    pipeline.flush()
    return sorted(sink.records, key=lambda r: (r.ts, r.orig_p, r.proto))


def tcp(
    t: float, flags: str, seq: int = 0, ack: int = 0, data: bytes = b"", *, back: bool = False
) -> Packet:
    """A TCP segment of the C:CP <-> S:SP connection at T0 + ``t`` (``back``: server to client)."""
    src, dst, sport, dport = (S, C, SP, CP) if back else (C, S, CP, SP)
    pkt: Packet = (
        Ether(**MAC)
        / IP(src=src, dst=dst)
        / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack)
    )
    if data:
        pkt = pkt / Raw(data)
    pkt.time = T0 + t
    return pkt


def udp(t: float, data: bytes = b"q" * 20, *, back: bool = False) -> Packet:
    src, dst, sport, dport = (S, C, 53, 33000) if back else (C, S, 33000, 53)
    pkt: Packet = Ether(**MAC) / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(data)
    pkt.time = T0 + t
    return pkt


def reset_then_reused(t: float = 0.0) -> list[Packet]:
    """SYN, SYN-ACK, the originator's RST; 15 s later data on that 5-tuple, reset by the server."""
    return [
        tcp(t, "S", seq=100),
        tcp(t + 0.001, "SA", seq=900, ack=101, back=True),
        tcp(t + 0.002, "R", seq=101),
        tcp(t + 15.0, "PA", seq=5000, ack=7000, data=b"m" * 12),
        tcp(t + 15.001, "R", seq=7000, back=True),
    ]


def write(tmp_path: Path, name: str, packets: Sequence[Packet]) -> Path:
    path = tmp_path / f"{name}.pcap"
    wrpcap(str(path), packets)
    return path


def test_reset_connection_reused_15_s_later_in_one_batch_is_a_new_connection(
    tmp_path: Path,
) -> None:
    """The closed flow ends at its close delay, not at the batch end: RSTO ShR, then Dr (Zeek)."""
    got = records(write(tmp_path, "reset_reused", reset_then_reused()))
    assert [(r.conn_state, r.history, r.orig_pkts, r.resp_pkts) for r in got] == [
        ("RSTO", "ShR", 2, 1),
        ("RSTRH", "Dr", 1, 1),
    ]
    assert got[1].ts == pytest.approx(T0 + 15.0)
    assert got[1].orig_bytes == 12


def test_idle_timeout_inside_a_batch_ends_the_flow(tmp_path: Path) -> None:
    """A UDP packet after the 60 s idle timeout, in the same batch, starts a new flow."""
    got = records(write(tmp_path, "udp_idle", [udp(0.0), udp(0.1, back=True), udp(100.0)]))
    assert [(r.ts - T0, r.conn_state, r.orig_pkts, r.resp_pkts) for r in got] == [
        (0.0, "SF", 1, 1),
        (100.0, "S0", 1, 0),
    ]


def _mixed(tmp_path: Path) -> Path:
    """A capture where batch boundaries would matter: reuse after close, idle gaps, plain flows."""
    packets = reset_then_reused()
    packets += [udp(1.0), udp(1.01, back=True), udp(90.0), udp(90.2, back=True)]
    for i in range(40):  # short connections every second, other client ports
        base = 2.0 + i
        for p in reset_then_reused(base)[:3]:
            p[TCP].sport = 41000 + i if p[IP].src == C else p[TCP].sport
            p[TCP].dport = 41000 + i if p[IP].src == S else p[TCP].dport
            packets.append(p)
    packets.sort(key=lambda p: float(p.time))
    return write(tmp_path, "mixed", packets)


def test_records_do_not_depend_on_the_batch_size(tmp_path: Path) -> None:
    """The same pcap read in batches of 1, 7, 4096 and 65536 frames gives the same records."""
    path = _mixed(tmp_path)
    runs = {size: [r._replace(uid="") for r in records(path, size)] for size in (1, 7, 4096, 65536)}
    for size in (7, 4096, 65536):
        assert runs[size] == runs[1], f"batch size {size}"
    assert len(runs[1]) == 40 + 2 + 2  # the reused 5-tuple and the idle UDP pair end twice


def _big_transfer(tmp_path: Path, segments: int, payload: int) -> Path:
    """A server-to-client transfer of ``segments`` full segments whose sequence numbers wrap.

    The frames are cut after the TCP header, as a 54-byte snaplen would: the pcap stays a few MB
    while the IP total length (and the wire length) says each segment carries ``payload`` bytes.
    """
    isn_c, isn_s = 1000, 2**32 - 10_000  # the server's sequence numbers wrap after 10 kB
    head = [
        tcp(0.0, "S", seq=isn_c),
        tcp(0.001, "SA", seq=isn_s, ack=isn_c + 1, back=True),
        tcp(0.002, "A", seq=isn_c + 1, ack=isn_s + 1),
    ]
    end = (isn_s + 1 + segments * payload) % 2**32
    tail = [
        tcp(0.9, "FA", seq=end, ack=isn_c + 1, back=True),
        tcp(0.901, "FA", seq=isn_c + 1, ack=(end + 1) % 2**32),
        tcp(0.902, "A", seq=(end + 1) % 2**32, ack=isn_c + 2, back=True),
    ]
    template = bytearray(bytes(tcp(0.0, "A", seq=0, ack=isn_c + 1, back=True)))
    struct.pack_into("!H", template, 16, 20 + 20 + payload)  # IPv4 total length
    wire = 14 + 20 + 20 + payload
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))

    def record(t: float, frame: bytes, wirelen: int) -> None:
        sec, usec = divmod(round(t * 1e6), 1_000_000)
        out.extend(struct.pack("<IIII", sec, usec, len(frame), wirelen))
        out.extend(frame)

    for p in head:
        record(float(p.time), bytes(p), len(p))
    for i in range(segments):
        struct.pack_into("!I", template, 38, (isn_s + 1 + i * payload) % 2**32)
        record(T0 + 0.01 + i * 1e-5, bytes(template), wire)
    for p in tail:
        record(float(p.time), bytes(p), len(p))
    path = tmp_path / "big_transfer.pcap"
    path.write_bytes(bytes(out))
    return path


def test_transfer_past_4_gib_counts_every_byte_and_no_retransmission(tmp_path: Path) -> None:
    """65 600 segments of 65 495 bytes (4.3 GB, seq wraps): resp_bytes exact, no ``t`` letter."""
    segments, payload = 65_600, 65_495
    (got,) = records(_big_transfer(tmp_path, segments, payload))
    assert got.resp_bytes == segments * payload > 2**32
    assert (got.orig_pkts, got.resp_pkts) == (3, segments + 3)  # SYN-ACK, data, FIN, ACK
    assert "t" not in got.history
    assert (got.conn_state, got.history) == ("SF", "ShAdfFa")


def test_three_syn_rst_attempts_are_three_rejected_connections(tmp_path: Path) -> None:
    """Three refused SYNs on one 5-tuple are three REJ ``Sr`` records of one packet each way."""
    packets: list[Packet] = []
    for k in range(3):
        packets += [tcp(k * 1.0, "S", seq=100), tcp(k * 1.0 + 0.001, "RA", ack=101, back=True)]
    got = records(write(tmp_path, "syn_retries", packets))
    assert [(r.conn_state, r.history, r.orig_pkts, r.resp_pkts) for r in got] == [
        ("REJ", "Sr", 1, 1)
    ] * 3


def test_tso_segments_count_their_packets_and_bytes(tmp_path: Path) -> None:
    """Segments with IPv4 total length 0 (TSO) are counted with their frame's length."""
    data = b"d" * 3000
    packets = [
        tcp(0.0, "S", seq=100),
        tcp(0.001, "SA", seq=900, ack=101, back=True),
        tcp(0.002, "A", seq=101, ack=901),
        tcp(0.003, "PA", seq=101, ack=901, data=data),
        tcp(0.004, "PA", seq=3101, ack=901, data=data),
        tcp(0.005, "A", seq=901, ack=6101, back=True),
    ]
    frames = [bytearray(bytes(p)) for p in packets]
    for frame in frames[3:5]:
        frame[16:18] = b"\0\0"
    tso = []
    for frame, original in zip(frames, packets, strict=True):
        pkt = Ether(bytes(frame))
        pkt.time = original.time
        tso.append(pkt)
    path = write(tmp_path, "tso", tso)
    (got,) = records(path)
    assert (got.orig_pkts, got.orig_bytes, got.orig_ip_bytes) == (4, 6000, 40 * 4 + 6000)
    assert (got.resp_pkts, got.orig_l2_bytes) == (2, 54 * 4 + 6000)
