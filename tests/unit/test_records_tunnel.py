"""A record from inside an encapsulation says so: tunnel type, id, direction and outer endpoints
(issue 16), from the decoder's columns through the flow table's side table to JSON and Parquet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet
from scapy.utils import wrpcap

from analyzers import DecodedBatch, Encap, FlowRecord, TunnelType, decode, json_lines
from analyzers._flowtunnels import FlowTunnels
from capture._batch import FrameBatch
from exporters._recordparquet import read_jsonl
from mirrorctl import analyse_pcap

MAC = {"src": "02:00:00:00:00:0a", "dst": "02:00:00:00:00:0b"}
TUNNEL_FIELDS = ("tunnel", "tunnel_id", "tunnel_dir", "outer_src", "outer_dst")


def _handshake(src: str, dst: str, sport: int) -> list[Packet]:
    """A TCP handshake and one data segment, as inner frames."""
    c, s = IP(src=src, dst=dst), IP(src=dst, dst=src)
    return [
        Ether(**MAC) / c / TCP(sport=sport, dport=80, flags="S", seq=100),
        Ether(**MAC) / s / TCP(sport=80, dport=sport, flags="SA", seq=500, ack=101),
        Ether(**MAC) / c / TCP(sport=sport, dport=80, flags="A", seq=101, ack=501),
        Ether(**MAC) / c / TCP(sport=sport, dport=80, flags="PA", seq=101, ack=501) / b"GET /",
    ]


def _vxlan(inner: Packet, vni: int, tags: int = 0) -> Packet:
    outer: Packet = Ether(**MAC)
    for i in range(tags):
        outer = outer / (Dot1AD if i == 0 and tags > 1 else Dot1Q)(vlan=100 + i)
    return (
        outer
        / IP(src="192.0.2.1", dst="192.0.2.2")
        / UDP(sport=50000, dport=4789)
        / (VXLAN(vni=vni) / inner)
    )


def _write(path: Path, frames: list[Packet]) -> Path:
    for i, frame in enumerate(frames):
        frame.time = 1_700_000_000 + i * 0.001
    wrpcap(str(path), frames)
    return path


def _batch(frames: list[Packet]) -> FrameBatch:
    raw = [bytes(f) for f in frames]
    lens = np.array([len(r) for r in raw], np.int64)
    return FrameBatch(
        data=np.frombuffer(b"".join(raw), np.uint8),
        offsets=np.concatenate(([0], np.cumsum(lens)[:-1])).astype(np.int64),
        caplens=lens,
        wirelens=lens.copy(),
        ts_ns=np.arange(len(raw), dtype=np.int64),
    )


def test_vxlan_flow_record_carries_tunnel_and_outer_endpoints(tmp_path: Path) -> None:
    """The inner flow of a VXLAN packet names vxlan, its VNI and the VTEPs; a plain flow beside it
    has every tunnel field null, in the record and in its JSON line."""
    frames = [_vxlan(f, vni=4242) for f in _handshake("10.16.0.5", "10.16.0.9", 40000)]
    frames += _handshake("10.16.0.7", "10.16.0.8", 40001)
    records = {r.orig_p: r for r in analyse_pcap(_write(tmp_path / "vxlan.pcap", frames))}
    tunnelled, plain = records[40000], records[40001]
    assert (tunnelled.orig_h, tunnelled.resp_h, tunnelled.conn_state) == (
        "10.16.0.5",
        "10.16.0.9",
        "S1",
    )
    expected = ("vxlan", 4242, None, "192.0.2.1", "192.0.2.2")
    assert tuple(getattr(tunnelled, f) for f in TUNNEL_FIELDS) == expected
    assert tunnelled.tunnel_vni == 4242
    assert all(getattr(plain, f) is None for f in TUNNEL_FIELDS)
    lines = [json.loads(line) for line in json_lines([tunnelled, plain]).splitlines()]
    assert tuple(lines[0][f] for f in TUNNEL_FIELDS) == expected
    assert {f: lines[1][f] for f in TUNNEL_FIELDS} == dict.fromkeys(TUNNEL_FIELDS)
    assert lines[0] == json.loads(tunnelled.to_json_line()) == tunnelled.as_conn_log()


def test_geneve_over_ipv6_names_ipv6_outer_endpoints(tmp_path: Path) -> None:
    """Geneve between IPv6 tunnel endpoints: the record's outer addresses are IPv6 text."""
    outer = Ether(**MAC) / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(dport=6081)
    frames = [
        outer / GENEVE(vni=77, proto=0x6558) / f
        for f in _handshake("10.16.0.5", "10.16.0.9", 40000)
    ]
    (record,) = analyse_pcap(_write(tmp_path / "geneve6.pcap", frames))
    assert tuple(getattr(record, f) for f in TUNNEL_FIELDS) == (
        "geneve",
        77,
        None,
        "2001:db8::1",
        "2001:db8::2",
    )


def test_decoder_tunnel_columns_agree_between_batch_and_single_frame_paths() -> None:
    """encap, tun_dir and the outer endpoints are the same whether a frame is decoded with 59
    others (the vectorized tunnel pass) or nearly alone (the scalar decoder)."""
    inner = _handshake("10.16.0.5", "10.16.0.9", 40000)[0]
    frames = [_vxlan(inner, vni=9, tags=i % 3) for i in range(60)]
    many, few = decode(_batch(frames)), decode(_batch(frames[:3]))
    mapped = 0xFFFF_0000_0000
    for dec, n in ((many, 60), (few, 3)):
        assert dec.tun_type[:n].tolist() == [TunnelType.VXLAN] * n
        assert dec.tun_dir[:n].tolist() == [0] * n
        assert dec.outer_src_hi[:n].tolist() == [0] * n
        assert dec.outer_src_lo[:n].tolist() == [mapped | 0xC0000201] * n
        assert dec.outer_dst_lo[:n].tolist() == [mapped | 0xC0000202] * n
    tags = [Encap.VXLAN, Encap.VXLAN | Encap.VLAN, Encap.VXLAN | Encap.VLAN | Encap.QINQ]
    assert many.encap.tolist() == tags * 20
    assert few.encap.tolist() == tags


def test_a_freed_slot_forgets_its_tunnel() -> None:
    """The side table holds only tunnelled flows, and a slot's next flow starts without a tunnel."""
    inner = _handshake("10.16.0.5", "10.16.0.9", 40000)[0]
    dec: DecodedBatch = decode(_batch([_vxlan(inner, vni=5), inner]))
    tunnels = FlowTunnels()
    tunnels.remember(np.array([7, 8]), dec, np.array([0, 1]))
    assert len(tunnels) == 1
    first = tunnels.of([7, 8])[0]
    assert first is not None
    assert (first.tunnel, first.tunnel_id) == ("vxlan", 5)
    tunnels.forget(np.array([7]))
    assert tunnels.of([7, 8]) == [None, None]
    assert len(tunnels) == 0


def test_tunnel_fields_survive_the_parquet_rewrite_schema(tmp_path: Path) -> None:
    """The records reader types the tunnel fields: text, an integer id, nulls when untunnelled."""
    frames = [_vxlan(f, vni=4242) for f in _handshake("10.16.0.5", "10.16.0.9", 40000)]
    frames += _handshake("10.16.0.7", "10.16.0.8", 40001)
    records: list[FlowRecord] = sorted(
        analyse_pcap(_write(tmp_path / "v.pcap", frames)), key=lambda r: r.orig_p
    )
    path = tmp_path / "flows.jsonl"
    path.write_text(json_lines(records))
    table = read_jsonl(path, TUNNEL_FIELDS)
    assert table.to_pylist() == [
        dict(zip(TUNNEL_FIELDS, ("vxlan", 4242, None, "192.0.2.1", "192.0.2.2"), strict=True)),
        dict.fromkeys(TUNNEL_FIELDS),
    ]
    assert str(table.schema.field("tunnel_id").type) == "int64"
