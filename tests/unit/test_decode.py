"""The decoder's fields and reason codes, protocol by protocol, on frames crafted with scapy."""

from __future__ import annotations

import dataclasses
import ipaddress

import numpy as np
import pytest
from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import (
    ICMPv6EchoReply,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.ipsec import AH
from scapy.layers.l2 import ARP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether
from scapy.layers.sctp import SCTP
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from analyzers import DecodedBatch, Status, TunnelType, decode
from capture._batch import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    FrameBatch,
)

# Explicit MACs: scapy would otherwise resolve them, which can mean ARP on a real network.
MAC = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}


def addr(value: int, hi: int = 0) -> str:
    """The decoder's two address halves back as an address string (IPv4 when mapped)."""
    ip = ipaddress.IPv6Address((hi << 64) | value)
    return str(ip.ipv4_mapped) if ip.ipv4_mapped is not None else str(ip)


def rows(frames: list[bytes], linktype: int = LINKTYPE_ETHERNET) -> list[dict[str, int]]:
    """Decode ``frames`` as one batch; each row as a dict of plain ints."""
    batch = FrameBatch.from_frames(frames, list(range(len(frames))), linktype=linktype)
    decoded = decode(batch)
    assert len(decoded) == len(frames)
    names = [f.name for f in dataclasses.fields(DecodedBatch)]
    return [{n: int(getattr(decoded, n)[i]) for n in names} for i in range(len(frames))]


def one(frame: bytes | Packet, linktype: int = LINKTYPE_ETHERNET) -> dict[str, int]:
    """Decode a single frame, placed between two ordinary frames so offsets are non-zero."""
    filler = bytes(Ether(**MAC) / IP() / UDP())
    return rows([filler, bytes(frame), filler], linktype)[1]


def test_ipv4_tcp_every_field() -> None:
    """IPv4/TCP fills addresses (IPv4-mapped), ports, seq/ack/window, 9 flags, TTL, id, lengths."""
    pkt = (
        Ether(**MAC)
        / IP(src="10.16.0.5", dst="10.16.0.9", ttl=61, id=4242)
        / TCP(sport=43512, dport=8080, seq=1000, ack=2000, window=501, flags="SAFRPUECN")
        / Raw(b"x" * 33)
    )
    row = one(pkt)
    assert row["status"] == Status.L4
    assert row["ipver"] == 4
    assert row["src_hi"] == 0
    assert row["dst_hi"] == 0
    assert addr(row["src_lo"]) == "10.16.0.5"
    assert addr(row["dst_lo"]) == "10.16.0.9"
    assert (row["proto"], row["sport"], row["dport"]) == (6, 43512, 8080)
    assert (row["tcp_seq"], row["tcp_ack"], row["tcp_win"]) == (1000, 2000, 501)
    assert row["tcp_flags"] == 0x1FF
    assert (row["ttl"], row["ip_id"], row["frag"], row["vlan"]) == (61, 4242, 0, 0)
    assert row["ip_len"] == 20 + 20 + 33
    assert row["l4_len"] == 33
    assert row["tun_type"] == TunnelType.NONE


def test_l4_off_points_at_the_payload_in_the_batch_buffer() -> None:
    """``l4_off`` addresses the transport payload inside the batch's shared buffer."""
    frames = [
        bytes(Ether(**MAC) / IP() / UDP(sport=1, dport=2) / Raw(b"first")),
        bytes(
            Ether(**MAC)
            / IP()
            / TCP(options=[("MSS", 1460), ("NOP", None), ("WScale", 7)])
            / Raw(b"second")
        ),
        bytes(Ether(**MAC) / IPv6() / UDP() / Raw(b"third!")),
    ]
    batch = FrameBatch.from_frames(frames, [0, 0, 0])
    decoded = decode(batch)
    got = [
        batch.data[decoded.l4_off[i] : decoded.l4_off[i] + decoded.l4_len[i]].tobytes()
        for i in range(3)
    ]
    assert got == [b"first", b"second", b"third!"]


def test_ipv6_udp_fields() -> None:
    """IPv6/UDP: both address halves, hop limit as TTL, payload length + 40 as ip_len."""
    pkt = (
        Ether(**MAC)
        / IPv6(src="fd00:10:16::5", dst="2001:db8::53", hlim=17)
        / UDP(sport=5353, dport=53)
        / Raw(b"q" * 20)
    )
    row = one(pkt)
    assert (row["status"], row["ipver"], row["proto"]) == (Status.L4, 6, 17)
    assert addr(row["src_lo"], row["src_hi"]) == "fd00:10:16::5"
    assert addr(row["dst_lo"], row["dst_hi"]) == "2001:db8::53"
    assert (row["sport"], row["dport"], row["ttl"]) == (5353, 53, 17)
    assert row["ip_len"] == 40 + 8 + 20
    assert row["l4_len"] == 20
    assert row["tcp_flags"] == 0


def test_icmp_type_and_code_in_the_port_columns() -> None:
    """ICMP and ICMPv6 put type in sport and code in dport, as Zeek does."""
    v4 = one(Ether(**MAC) / IP() / ICMP(type=3, code=13) / Raw(b"z" * 28))
    v6 = one(Ether(**MAC) / IPv6() / ICMPv6EchoReply())
    assert (v4["status"], v4["proto"], v4["sport"], v4["dport"]) == (Status.L4, 1, 3, 13)
    assert v4["l4_len"] == 28
    assert (v6["status"], v6["proto"], v6["sport"], v6["dport"]) == (Status.L4, 58, 129, 0)


def test_sctp_ports() -> None:
    """SCTP reports its ports; the payload starts after the 12-byte common header."""
    row = one(Ether(**MAC) / IP() / SCTP(sport=3868, dport=2905) / Raw(b"c" * 16))
    assert (row["status"], row["proto"], row["sport"], row["dport"]) == (Status.L4, 132, 3868, 2905)
    assert row["l4_len"] == 16


def test_other_ip_protocol_is_l3() -> None:
    """An IP protocol without ports (ESP) is L3 with its protocol number and no ports."""
    row = one(Ether(**MAC) / IP(proto=50) / Raw(b"g" * 12))
    assert (row["status"], row["proto"], row["sport"], row["dport"]) == (Status.L3, 50, 0, 0)
    assert row["l4_len"] == 12


def test_arp_and_unknown_ethertypes_are_non_ip() -> None:
    """ARP and LLDP are NON_IP, with no IP columns filled."""
    arp = one(Ether(**MAC) / ARP(psrc="10.0.0.1", pdst="10.0.0.2"))
    lldp = one(Ether(dst="01:80:c2:00:00:0e", src=MAC["src"], type=0x88CC) / Raw(b"\x00" * 30))
    for row in (arp, lldp):
        assert row["status"] == Status.NON_IP
        assert (row["ipver"], row["src_lo"], row["proto"], row["l4_off"]) == (0, 0, 0, 0)


@pytest.mark.parametrize("tpid", [0x8100, 0x88A8, 0x9100])
def test_single_vlan_tag_any_tpid(tpid: int) -> None:
    """One tag with any of the three TPIDs: VLAN id recorded, inner IP decoded."""
    pkt = Ether(type=tpid, **MAC) / Dot1Q(vlan=1234, prio=5) / IP(dst="10.1.1.1") / TCP(dport=22)
    row = one(pkt)
    assert (row["status"], row["vlan"], row["dport"]) == (Status.L4, 1234, 22)
    assert addr(row["dst_lo"]) == "10.1.1.1"


def test_qinq_records_the_outer_vlan() -> None:
    """802.1ad QinQ (0x88a8 outer, 0x8100 inner) records the outermost VLAN id."""
    pkt = Ether(**MAC) / Dot1AD(vlan=300) / Dot1Q(vlan=42) / IPv6() / UDP(dport=4000)
    row = one(pkt)
    assert (row["status"], row["vlan"], row["ipver"], row["dport"]) == (Status.L4, 300, 6, 4000)


def test_three_vlan_tags_decode_through_the_scalar_path() -> None:
    """A stack of three tags still reaches the IP header (outermost id kept)."""
    pkt = Ether(**MAC) / Dot1AD(vlan=7) / Dot1Q(vlan=8) / Dot1Q(vlan=9) / IP() / UDP(dport=99)
    row = one(pkt)
    assert (row["status"], row["vlan"], row["dport"]) == (Status.L4, 7, 99)


def test_ipv4_options_move_the_transport_header() -> None:
    """IPv4 with options (IHL > 5): ports read after the options."""
    pkt = Ether(**MAC) / IP(options=[IPOption_RR(routers=["1.2.3.4"])]) / TCP(sport=7, dport=9)
    row = one(pkt)
    assert (row["status"], row["sport"], row["dport"]) == (Status.L4, 7, 9)
    assert row["ip_len"] == len(bytes(pkt)) - 14


def test_ipv4_fragments() -> None:
    """First fragment keeps ports (frag=1); later fragments are L3 with frag=2 and no ports."""
    pkt = Ether(**MAC) / IP(id=777, flags="MF") / UDP(sport=1111, dport=2222) / Raw(b"a" * 100)
    first = one(pkt)
    later = one(Ether(**MAC) / IP(id=777, frag=13, proto=17) / Raw(b"b" * 40))
    assert (first["status"], first["frag"], first["sport"], first["ip_id"]) == (
        Status.L4,
        1,
        1111,
        777,
    )
    assert (later["status"], later["frag"], later["sport"], later["proto"]) == (Status.L3, 2, 0, 17)
    assert later["l4_len"] == 40


def test_ipv6_extension_header_chain() -> None:
    """Hop-by-hop, routing, destination options and AH are walked to the transport header."""
    pkt = (
        Ether(**MAC)
        / IPv6(src="fd00::1", dst="fd00::2")
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrRouting(addresses=["fd00::3"])
        / IPv6ExtHdrDestOpt()
        / AH(nh=6, payloadlen=4, spi=1, icv=b"\x00" * 12)
        / TCP(sport=1000, dport=443, flags="S")
        / Raw(b"p" * 5)
    )
    row = one(pkt)
    assert (row["status"], row["proto"], row["sport"], row["dport"]) == (Status.L4, 6, 1000, 443)
    assert row["tcp_flags"] == 0x02
    assert row["l4_len"] == 5


def test_ipv6_fragments() -> None:
    """IPv6 fragment header: id recorded; offset 0 keeps ports, later fragments are L3."""
    first = one(
        Ether(**MAC) / IPv6() / IPv6ExtHdrFragment(id=0xABCDE, m=1, offset=0) / UDP(dport=53)
    )
    later = one(Ether(**MAC) / IPv6() / IPv6ExtHdrFragment(id=9, offset=100, nh=17) / Raw(b"r" * 8))
    assert (first["status"], first["frag"], first["ip_id"], first["dport"]) == (
        Status.L4,
        1,
        0xABCDE,
        53,
    )
    assert (later["status"], later["frag"], later["ip_id"], later["proto"]) == (Status.L3, 2, 9, 17)


def test_ipv6_no_next_header_stops_the_chain() -> None:
    """Next header 59 (no next header) is an L3 packet with protocol 59."""
    row = one(Ether(**MAC) / IPv6(nh=59) / Raw(b"\x00" * 8))
    assert (row["status"], row["proto"]) == (Status.L3, 59)


def test_vxlan_inner_flow_and_tunnel_columns() -> None:
    """VXLAN: every L3/L4 column is the inner packet's; tun_type/tun_vni record the tunnel."""
    inner = Ether(**MAC) / Dot1Q(vlan=5) / IP(src="10.16.0.7", dst="10.16.1.8") / TCP(dport=80)
    pkt = (
        Ether(**MAC)
        / IP(src="192.168.0.1", dst="192.168.0.2")
        / UDP(sport=51000, dport=4789)
        / VXLAN(vni=0x123456)
        / inner
        / Raw(b"h" * 10)
    )
    row = one(pkt)
    assert (row["status"], row["tun_type"], row["tun_vni"]) == (
        Status.L4,
        TunnelType.VXLAN,
        0x123456,
    )
    assert (addr(row["src_lo"]), addr(row["dst_lo"]), row["dport"]) == (
        "10.16.0.7",
        "10.16.1.8",
        80,
    )
    assert row["vlan"] == 5
    assert row["l4_len"] == 10


def test_geneve_inner_flow_with_options() -> None:
    """Geneve (with an option TLV): inner IPv6/UDP decoded past the options, VNI recorded."""
    inner = Ether(**MAC) / IPv6(src="fd00::a", dst="fd00::b") / UDP(sport=9, dport=10)
    geneve = GENEVE(vni=77, proto=0x6558, optionlen=2) / Raw(b"\x01\x02\x03\x01" + b"\x00" * 4)
    pkt = Ether(**MAC) / IP() / UDP(sport=1, dport=6081) / geneve / inner
    row = one(pkt)
    assert (row["status"], row["tun_type"], row["tun_vni"]) == (Status.L4, TunnelType.GENEVE, 77)
    assert (addr(row["src_lo"], row["src_hi"]), row["sport"], row["dport"]) == ("fd00::a", 9, 10)


def test_geneve_carrying_raw_ip() -> None:
    """Geneve with protocol type IPv4 (no inner Ethernet) decodes the inner IP packet directly."""
    geneve = GENEVE(vni=9, proto=0x0800)
    inner = IP(src="10.16.0.1", dst="10.16.0.2") / UDP(sport=7, dport=8)
    row = one(Ether(**MAC) / IP() / UDP(sport=1, dport=6081) / geneve / inner)
    assert (row["status"], row["tun_type"], row["tun_vni"]) == (Status.L4, TunnelType.GENEVE, 9)
    assert (addr(row["dst_lo"]), row["dport"], row["vlan"]) == ("10.16.0.2", 8, 0)


def test_tunnel_with_unknown_inner_protocol_is_bad_tunnel() -> None:
    """Geneve announcing an inner protocol the decoder does not know (MPLS) is BAD_TUNNEL."""
    pkt = Ether(**MAC) / IP() / UDP(dport=6081) / GENEVE(proto=0x8847) / Raw(b"\x00" * 20)
    assert one(pkt)["status"] == Status.BAD_TUNNEL


def test_truncated_tunnel_header_is_bad_tunnel() -> None:
    """A UDP datagram to 4789 too short for a VXLAN header is BAD_TUNNEL."""
    row = one(Ether(**MAC) / IP() / UDP(dport=4789) / Raw(b"\x08\x00"))
    assert row["status"] == Status.BAD_TUNNEL


def test_snaplen_truncation_keeps_headers() -> None:
    """A frame cut by the snaplen after the TCP header keeps all fields; l4_len follows IP."""
    pkt = bytes(Ether(**MAC) / IP() / TCP(dport=443) / Raw(b"d" * 1000))
    batch = FrameBatch.from_frames([pkt[:96]], [0], wirelens=[len(pkt)])
    decoded = decode(batch)
    assert decoded.status[0] == Status.L4
    assert decoded.dport[0] == 443
    assert decoded.l4_len[0] == 1000


@pytest.mark.parametrize(
    ("cut", "reason"),
    [
        (10, Status.TRUNCATED_L2),
        (14, Status.TRUNCATED_L3),
        (30, Status.TRUNCATED_L3),
        (40, Status.TRUNCATED_L4),
    ],
)
def test_truncation_reasons(cut: int, reason: Status) -> None:
    """Frames cut inside the Ethernet, IP or TCP header get the matching reason."""
    pkt = bytes(Ether(**MAC) / IP() / TCP())
    batch = FrameBatch.from_frames([pkt[:cut]], [0], wirelens=[len(pkt)])
    assert decode(batch).status[0] == reason


def test_truncated_vlan_tag() -> None:
    """A frame that ends inside its VLAN tag is TRUNCATED_L2."""
    pkt = bytes(Ether(**MAC) / Dot1Q(vlan=3) / IP())[:16]
    assert one(pkt)["status"] == Status.TRUNCATED_L2


def test_malformed_ip_and_tcp_reasons() -> None:
    """Bad version nibble, IHL < 5, total length too small or too big, TCP data offset < 5."""
    base = bytearray(bytes(Ether(**MAC) / IP() / TCP()))
    bad_version = bytearray(base)
    bad_version[14] = 0x55
    bad_ihl = bytearray(base)
    bad_ihl[14] = 0x44
    short_total = bytearray(base)
    short_total[16:18] = (10).to_bytes(2, "big")
    long_total = bytearray(base)
    long_total[16:18] = (1500).to_bytes(2, "big")
    bad_doff = bytearray(base)
    bad_doff[14 + 20 + 12] = 0x30
    big_doff = bytearray(base)
    big_doff[14 + 20 + 12] = 0xF0
    got = [r["status"] for r in rows([bytes(f) for f in (
        bad_version, bad_ihl, short_total, long_total, bad_doff, big_doff
    )])]  # fmt: skip
    assert got == [
        Status.BAD_IP_VERSION,
        Status.BAD_IP_HEADER_LEN,
        Status.BAD_IP_TOTAL_LEN,
        Status.BAD_IP_TOTAL_LEN,
        Status.BAD_TCP_HEADER_LEN,
        Status.BAD_TCP_HEADER_LEN,
    ]


def test_ipv6_extension_header_overrunning_the_payload() -> None:
    """An extension header claiming more bytes than the payload length is BAD_IPV6_EXT_HEADER."""
    raw = bytearray(bytes(Ether(**MAC) / IPv6() / IPv6ExtHdrHopByHop() / UDP()))
    raw[14 + 40 + 1] = 20  # hop-by-hop length: 21 * 8 bytes, far past the 16-byte payload
    assert one(bytes(raw))["status"] == Status.BAD_IPV6_EXT_HEADER


def test_udp_shorter_than_its_header_is_truncated_l4() -> None:
    """An IPv4 packet whose payload is too short for a UDP header is TRUNCATED_L4."""
    raw = bytes(Ether(**MAC) / IP(proto=17) / Raw(b"\x00\x01\x00"))
    assert one(raw)["status"] == Status.TRUNCATED_L4


def test_linux_sll_and_sll2() -> None:
    """Linux cooked captures v1 and v2 decode their IP payload."""
    sll = CookedLinux(pkttype=0, lladdrtype=1, proto=0x0800) / IP(dst="10.9.9.9") / UDP(dport=53)
    sll2 = CookedLinuxV2(proto=0x86DD, lladdrtype=1) / IPv6(dst="fd00::9") / TCP(dport=443)
    a = one(sll, LINKTYPE_LINUX_SLL)
    b = one(sll2, LINKTYPE_LINUX_SLL2)
    assert (a["status"], addr(a["dst_lo"]), a["dport"]) == (Status.L4, "10.9.9.9", 53)
    assert (b["status"], addr(b["dst_lo"], b["dst_hi"]), b["dport"]) == (Status.L4, "fd00::9", 443)


def test_raw_ip_linktypes() -> None:
    """Raw IP (101) picks the version from the first nibble; 228 and 229 are fixed IPv4/IPv6."""
    v4 = bytes(IP(dst="10.0.0.4") / TCP(dport=1))
    v6 = bytes(IPv6(dst="fd00::6") / UDP(dport=2))
    raw = rows([v4, v6], LINKTYPE_RAW)
    assert [(r["ipver"], r["dport"]) for r in raw] == [(4, 1), (6, 2)]
    assert one(v4, LINKTYPE_IPV4)["dport"] == 1
    assert one(v6, LINKTYPE_IPV6)["dport"] == 2
    assert one(b"\x10" * 30, LINKTYPE_RAW)["status"] == Status.BAD_IP_VERSION


def test_unsupported_linktype_counts_every_row() -> None:
    """A linktype the decoder does not know marks every row UNSUPPORTED_LINKTYPE."""
    batch = FrameBatch.from_frames([b"\x00" * 40, b"\x01" * 20], [0, 0], linktype=147)  # a user DLT
    assert decode(batch).status.tolist() == [Status.UNSUPPORTED_LINKTYPE] * 2


def test_empty_batch_and_empty_frames() -> None:
    """An empty batch decodes to zero rows; zero-length frames are TRUNCATED_L2."""
    assert len(decode(FrameBatch.from_frames([], []))) == 0
    got = decode(FrameBatch.from_frames([b"", b"", b"\x00"], [0, 0, 0]))
    assert got.status.tolist() == [Status.TRUNCATED_L2] * 3


def test_column_dtypes_match_the_contract() -> None:
    """Every column has the dtype DecodedBatch documents (consumers index on them)."""
    decoded = decode(FrameBatch.from_frames([bytes(Ether(**MAC) / IP() / TCP())], [0]))
    assert decoded.src_lo.dtype == np.uint64
    assert decoded.l4_off.dtype == np.int64
    assert decoded.sport.dtype == np.uint16
    assert decoded.tcp_seq.dtype == np.uint32
    assert decoded.status.dtype == np.uint8


def _tso(pkt: Packet, ip_at: int = 14) -> bytes:
    """``pkt`` as a TSO/GSO or BIG TCP segment shows on the sending host: IPv4 total length 0."""
    frame = bytearray(bytes(pkt))
    frame[ip_at + 2 : ip_at + 4] = b"\0\0"
    return bytes(frame)


def test_tso_total_length_zero_takes_the_length_from_the_frame() -> None:
    """IPv4 total length 0 (TSO/GSO): the packet is as long as the frame, as tshark reads it."""
    pkt = Ether(**MAC) / IP() / TCP(dport=443, flags="PA") / Raw(b"t" * 1000)
    plain = Ether(**MAC) / Dot1Q(vlan=7) / IP() / UDP(dport=53) / Raw(b"u" * 300)
    frames = [_tso(pkt), _tso(plain, ip_at=18)]
    for decoded in (rows(frames), rows(frames * 8)[:2]):  # the scalar path, then the vectorized
        tcp, udp = decoded
        assert (tcp["status"], tcp["ip_len"], tcp["l4_len"], tcp["dport"]) == (
            Status.L4,
            1040,
            1000,
            443,
        )
        assert (udp["status"], udp["ip_len"], udp["l4_len"], udp["vlan"]) == (
            Status.L4,
            328,
            300,
            7,
        )


def test_tso_frame_cut_by_the_snaplen_is_measured_by_its_wire_length() -> None:
    """A cut TSO frame counts its wire length (what tshark reports), also past 64 KiB (BIG TCP)."""
    pkt = _tso(Ether(**MAC) / IP() / TCP(dport=443) / Raw(b"t" * 1000))
    big_tcp = 14 + 20 + 20 + 150_000
    batch = FrameBatch.from_frames(
        [pkt[:96]] * 9 + [pkt[:96]], [0] * 10, wirelens=[len(pkt)] * 9 + [big_tcp]
    )
    decoded = decode(batch)
    assert decoded.status.tolist() == [Status.L4] * 10
    assert decoded.ip_len.tolist() == [1040] * 9 + [150_040]
    assert decoded.l4_len.tolist() == [1000] * 9 + [150_000]
