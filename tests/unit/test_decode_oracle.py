"""Cross-check against an independent parser: for randomly built frames, every decoded field equals
what scapy itself dissects from the same bytes."""

from __future__ import annotations

import ipaddress

import numpy as np
from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrHopByHop,
)
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from analyzers import Status, TunnelType, decode
from capture._batch import FrameBatch

# Explicit MACs: scapy would otherwise resolve them, which can mean ARP on a real network.
MAC = {"src": "02:00:00:00:00:0a", "dst": "02:00:00:00:00:0b"}


def build(rng: np.random.Generator) -> Packet:
    """One random frame: tags, IP version and options, transport, payload, maybe a tunnel."""
    inner = _inner(rng)
    kind = rng.integers(6)
    if kind == 0:
        return (
            Ether(**MAC)
            / IP(dst="192.0.2.1")
            / UDP(sport=50000, dport=4789)
            / VXLAN(vni=int(rng.integers(1 << 24)))
            / inner
        )
    if kind == 1:
        geneve = GENEVE(vni=int(rng.integers(1 << 24)), proto=0x6558)
        return Ether(**MAC) / IP(dst="192.0.2.2") / UDP(sport=50001, dport=6081) / geneve / inner
    return inner


def _inner(rng: np.random.Generator) -> Packet:
    frame: Packet = Ether(**MAC)
    for _ in range(int(rng.integers(3))):
        frame = frame / (Dot1AD if rng.random() < 0.3 else Dot1Q)(vlan=int(rng.integers(1, 4095)))
    ip: Packet
    if rng.random() < 0.5:
        options = [IPOption_RR(routers=["10.0.0.1"])] if rng.random() < 0.2 else []
        ip = IP(
            src=str(ipaddress.IPv4Address(int(rng.integers(1 << 32)))),
            dst=str(ipaddress.IPv4Address(int(rng.integers(1 << 32)))),
            ttl=int(rng.integers(1, 256)),
            id=int(rng.integers(1 << 16)),
            options=options,
        )
    else:
        ip = IPv6(
            src=str(ipaddress.IPv6Address(int.from_bytes(rng.bytes(16), "big"))),
            dst=str(ipaddress.IPv6Address(int.from_bytes(rng.bytes(16), "big"))),
            hlim=int(rng.integers(1, 256)),
        )
        if rng.random() < 0.2:
            ip = ip / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt()
    payload = Raw(rng.bytes(int(rng.integers(0, 300))))
    choice = rng.integers(3)
    transport: Packet
    if choice == 0:
        transport = TCP(
            sport=int(rng.integers(1 << 16)),
            dport=int(rng.integers(1 << 16)),
            seq=int(rng.integers(1 << 32)),
            ack=int(rng.integers(1 << 32)),
            window=int(rng.integers(1 << 16)),
            flags=int(rng.integers(1 << 9)),
            options=[("MSS", 1400), ("SAckOK", b"")] if rng.random() < 0.3 else [],
        )
    elif choice == 1:
        transport = UDP(sport=int(rng.integers(1 << 16)), dport=int(rng.integers(1, 4000)))
    elif IPv6 in ip:
        transport = ICMPv6EchoRequest() if rng.random() < 0.5 else ICMPv6DestUnreach(code=3)
    else:
        transport = ICMP(type=int(rng.integers(0, 20)), code=int(rng.integers(0, 16)))
    return frame / ip / transport / payload


def scapy_view(frame: bytes) -> dict[str, int | str]:
    """The fields scapy dissects from ``frame`` (for tunnels: from the inner frame)."""
    pkt: Packet = Ether(frame)
    expect: dict[str, int | str] = {"tun_type": TunnelType.NONE, "tun_vni": 0}
    for layer, kind in ((VXLAN, TunnelType.VXLAN), (GENEVE, TunnelType.GENEVE)):
        if layer in pkt:
            expect.update(tun_type=kind, tun_vni=pkt[layer].vni)
            pkt = pkt[layer].payload
    tags = [pkt[Dot1Q].vlan] if Dot1Q in pkt else []
    tags = [pkt[Dot1AD].vlan] if Dot1AD in pkt and pkt.getlayer(1).__class__ is Dot1AD else tags
    expect["vlan"] = tags[0] if tags else 0
    if IP in pkt:
        ip = pkt[IP]
        expect.update(ipver=4, src=ip.src, dst=ip.dst, ttl=ip.ttl, ip_id=ip.id, ip_len=ip.len)
    else:
        ip = pkt[IPv6]
        expect.update(ipver=6, src=ip.src, dst=ip.dst, ttl=ip.hlim, ip_id=0, ip_len=ip.plen + 40)
    if TCP in pkt:
        tcp = pkt[TCP]
        expect.update(
            proto=6,
            sport=tcp.sport,
            dport=tcp.dport,
            tcp_seq=tcp.seq,
            tcp_ack=tcp.ack,
            tcp_win=tcp.window,
            tcp_flags=int(tcp.flags),
            l4_len=len(bytes(tcp.payload)),
        )
    elif UDP in pkt:
        udp = pkt[UDP]
        expect.update(proto=17, sport=udp.sport, dport=udp.dport, l4_len=len(bytes(udp.payload)))
    else:
        icmp = pkt.getlayer(ICMP)
        if icmp is None:
            icmp = ip.payload
        while icmp.__class__.__name__.startswith("IPv6ExtHdr"):
            icmp = icmp.payload
        expect.update(
            proto=1 if ICMP in pkt else 58,
            sport=icmp.type,
            dport=icmp.code,
            l4_len=len(bytes(icmp)) - 8,
        )
    return expect


def decoded_view(columns: dict[str, np.ndarray], i: int) -> dict[str, int | str]:
    """Row ``i`` of the decoder's columns in scapy's vocabulary (addresses as strings)."""
    row = {name: int(col[i]) for name, col in columns.items()}
    src = ipaddress.IPv6Address((row.pop("src_hi") << 64) | row.pop("src_lo"))
    dst = ipaddress.IPv6Address((row.pop("dst_hi") << 64) | row.pop("dst_lo"))
    if row["ipver"] == 4:
        assert src.ipv4_mapped is not None
        assert dst.ipv4_mapped is not None
        row["src"], row["dst"] = str(src.ipv4_mapped), str(dst.ipv4_mapped)
    else:
        row["src"], row["dst"] = src.compressed, dst.compressed
    return row


def test_fields_equal_scapy_dissection() -> None:
    """400 random frames (VLAN stacks, options, ext headers, tunnels): every field matches scapy."""
    rng = np.random.default_rng(31337)
    frames = [bytes(build(rng)) for _ in range(400)]
    decoded = decode(FrameBatch.from_frames(frames, [0] * len(frames)))
    columns = {name: getattr(decoded, name) for name in decoded.__dataclass_fields__}
    for i, frame in enumerate(frames):
        assert decoded.status[i] == Status.L4, frame.hex()
        expect = scapy_view(frame)
        if expect["ipver"] == 6:
            expect["src"] = ipaddress.IPv6Address(str(expect["src"])).compressed
            expect["dst"] = ipaddress.IPv6Address(str(expect["dst"])).compressed
        got = decoded_view(columns, i)
        mismatched = {k: (got[k], v) for k, v in expect.items() if got[k] != v}
        assert not mismatched, f"frame {i} {Ether(frame).summary()}: (decoded, scapy) {mismatched}"
