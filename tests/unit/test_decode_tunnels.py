"""Tunnels a mirror brings (issue 16), on frames scapy builds: each decodes to the inner flow's
5-tuple with its tunnel type, key, direction, encapsulation bits and the outermost tunnel's
endpoints; each way a tunnel header can be cut or lie gives its reason."""

from __future__ import annotations

import pytest
from scapy.contrib.erspan import ERSPAN_I, ERSPAN_II, ERSPAN_III, ERSPAN_PlatformSpecific
from scapy.layers.inet import GRE, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.ppp import PPP
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet

from analyzers import Encap, Status, TunnelType, decode
from capture import FrameBatch

MAC = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
MAPPED = 0xFFFF_0000_0000
OUTER = IP(src="192.0.2.1", dst="192.0.2.2")
INNER = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1234, dport=80, flags="S")


def one(frame: Packet | bytes, wire: int = 0) -> dict[str, int]:
    """The decoded columns of one Ethernet frame (``wire`` bytes long on the wire), as ints."""
    data = bytes(frame)
    decoded = decode(FrameBatch.from_frames([data], [0], wirelens=[max(wire, len(data))]))
    return {name: int(getattr(decoded, name)[0]) for name in decoded.__dataclass_fields__}


@pytest.mark.parametrize(
    ("frame", "kind", "key", "direction", "encap"),
    [
        (OUTER / GRE(proto=0x0800) / INNER, TunnelType.GRE, 0, 0, Encap.GRE),
        (
            OUTER / GRE(key_present=1, key=77, proto=0x0800) / INNER,
            TunnelType.GRE,
            77,
            0,
            Encap.GRE,
        ),
        (
            OUTER / GRE(chksum_present=1, seqnum_present=1, proto=0x6558) / Ether(**MAC) / INNER,
            TunnelType.GRE,
            0,
            0,
            Encap.GRE,
        ),
        (
            OUTER / GRE(proto=0x0800) / IP(src="198.51.100.1") / GRE(proto=0x0800) / INNER,
            TunnelType.GRE,
            0,
            0,
            Encap.GRE,
        ),
        (
            OUTER / GRE() / ERSPAN_I() / Ether(**MAC) / INNER,
            TunnelType.ERSPAN_I,
            0,
            0,
            Encap.GRE | Encap.ERSPAN,
        ),
        (
            OUTER / GRE(seqnum_present=1) / ERSPAN_II(session_id=5) / Ether(**MAC) / INNER,
            TunnelType.ERSPAN_II,
            5,
            0,
            Encap.GRE | Encap.ERSPAN,
        ),
        (
            OUTER
            / GRE()
            / ERSPAN_III(session_id=9, d=1, o=1)
            / ERSPAN_PlatformSpecific()
            / Ether(**MAC)
            / INNER,
            TunnelType.ERSPAN_III,
            9,
            2,
            Encap.GRE | Encap.ERSPAN,
        ),
        (
            OUTER / UDP(sport=1, dport=4754) / GRE(proto=0x0800) / INNER,
            TunnelType.GRE_UDP,
            0,
            0,
            Encap.GRE | Encap.GRE_UDP,
        ),
        (
            OUTER
            / GRE(version=1, key_present=1, key=0x00100007, proto=0x880B)
            / PPP(proto=0x21)
            / INNER,
            TunnelType.PPTP,
            0,
            0,
            Encap.GRE | Encap.PPTP | Encap.PPP,
        ),
        (OUTER / INNER, TunnelType.IPIP, 0, 0, Encap.IPIP),
        (
            OUTER
            / UDP(sport=5072, dport=5072)
            / (b"\x41\x52\x11\x04" + b"\0" * 4 + b"\1" * 16 + b"\2" * 20)
            / INNER,
            TunnelType.AYIYA,
            0,
            0,
            Encap.AYIYA,
        ),
        (
            OUTER / UDP(dport=4789) / VXLAN(vni=42) / Ether(**MAC) / INNER,
            TunnelType.VXLAN,
            42,
            0,
            Encap.VXLAN,
        ),
    ],
)
def test_tunnels_decode_to_the_inner_flow(
    frame: Packet, kind: TunnelType, key: int, direction: int, encap: Encap
) -> None:
    """GRE (key, checksum and sequence, transparent Ethernet, in GRE), ERSPAN I/II/III (session,
    direction, platform sub-header), GRE over UDP, PPTP, IP-in-IP, AYIYA, VXLAN: the inner flow,
    the innermost tunnel's type and key, every encapsulation, the outermost endpoints."""
    row = one(Ether(**MAC) / frame)
    assert row["status"] == Status.L4
    assert (row["src_lo"], row["dst_lo"]) == (MAPPED | 0x0A000001, MAPPED | 0x0A000002)
    assert (row["proto"], row["sport"], row["dport"]) == (6, 1234, 80)
    assert (row["tun_type"], row["tun_vni"], row["tun_dir"]) == (kind, key, direction)
    assert row["encap"] == encap
    assert (row["outer_src_lo"], row["outer_dst_lo"]) == (MAPPED | 0xC0000201, MAPPED | 0xC0000202)


def test_teredo_is_recognised_on_any_port_as_zeek_does() -> None:
    """A UDP payload that is exactly an IPv6 packet is Teredo, whatever the ports; a bubble (no
    payload) and other UDP stay the UDP packet."""
    inner6 = IPv6(src="2001::1", dst="2001::2") / TCP(sport=1, dport=2)
    row = one(Ether(**MAC) / OUTER / UDP(sport=3797, dport=32900) / inner6)
    assert (row["status"], row["ipver"], row["tun_type"]) == (Status.L4, 6, TunnelType.TEREDO)
    bubble = one(Ether(**MAC) / OUTER / UDP(sport=3797, dport=3544) / IPv6(nh=59))
    assert (bubble["tun_type"], bubble["proto"], bubble["dport"]) == (0, 17, 3544)


def test_tunnels_nested_past_the_limit_are_malformed() -> None:
    """Three tunnels inside one another (Zeek follows two) give TUNNEL_TOO_DEEP."""
    frame = Ether(**MAC) / OUTER / GRE() / OUTER / GRE() / OUTER / GRE() / INNER
    assert one(frame)["status"] == Status.TUNNEL_TOO_DEEP


_ERSPAN3 = bytes(Ether(**MAC) / OUTER / GRE() / ERSPAN_III() / Ether(**MAC) / INNER)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (bytes(Ether(**MAC) / OUTER / GRE())[:36], Status.BAD_GRE),
        (bytes(Ether(**MAC) / OUTER / GRE(version=2) / INNER), Status.BAD_GRE),
        (bytes(Ether(**MAC) / OUTER / GRE(routing_present=1) / INNER), Status.BAD_GRE),
        (bytes(Ether(**MAC) / OUTER / GRE(version=1, proto=0x880B) / INNER), Status.BAD_GRE),
        (bytes(Ether(**MAC) / OUTER / GRE(key_present=1, proto=0x0800))[:40], Status.BAD_GRE),
        (_ERSPAN3[:44], Status.BAD_ERSPAN),
        (_ERSPAN3[:38] + b"\x10" + _ERSPAN3[39:], Status.BAD_ERSPAN),  # version 1 in type III
        (
            bytes(Ether(**MAC) / OUTER / GRE(seqnum_present=1, proto=0x88BE) / ERSPAN_III()),
            Status.BAD_ERSPAN,
        ),
        (bytes(Ether(**MAC) / OUTER / UDP(dport=5072) / b"\x41\x52\x11\x04"), Status.BAD_TUNNEL),
        (bytes(Ether(**MAC) / OUTER / UDP(dport=4789) / (b"\x00" * 8)), Status.BAD_TUNNEL),
    ],
)
def test_cut_or_lying_tunnel_headers_give_their_reason(frame: bytes, reason: Status) -> None:
    """GRE cut by the snaplen, of an unknown version, with routing, PPTP without its key, the key
    cut; ERSPAN cut, of the wrong version for its type; AYIYA cut; VXLAN without its I flag: each
    its reason."""
    assert one(frame, wire=1500)["status"] == reason
