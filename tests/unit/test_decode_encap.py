"""Link types and the headers switches put between Ethernet and IP (issue 16), on pcaps scapy
writes: each decodes to the inner packet's 5-tuple with its encapsulation bits, and each way its
header can be cut or lie gives a reason, never an exception."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from scapy.contrib.mpls import MPLS
from scapy.layers.dot11 import Dot11, Dot11QoS, RadioTap
from scapy.layers.inet import GRE, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import LLC, SNAP, Dot1AD, Dot1AH, Dot1Q, Ether, Loopback
from scapy.layers.ppp import PPP, PPPoE
from scapy.packet import Packet, Raw

from analyzers import AnalysisPipeline, DecodedBatch, Encap, IdentityMap, Status, decode
from capture import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IEEE802_11,
    LINKTYPE_IEEE802_11_RADIOTAP,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_PPP,
    LINKTYPE_PPP_HDLC,
    FrameBatch,
    open_capture_file,
    pcap_file_header,
)
from exporters._cardinality import MAX_ENCAPSULATIONS

MAC = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
MAPPED = 0xFFFF_0000_0000
TCP4 = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1234, dport=80, flags="S")
UDP6 = IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=5353, dport=53)


def through_pcap(tmp_path: Path, frame: Packet | bytes, linktype: int) -> DecodedBatch:
    """``frame`` written to a pcap of ``linktype``, read back by our reader and decoded."""
    path = tmp_path / "crafted.pcap"
    data = bytes(frame)
    # Written by hand: scapy's wrpcap takes link type 0 (DLT_NULL) for "not given".
    path.write_bytes(
        pcap_file_header(linktype=linktype)
        + struct.pack("<IIII", 1, 0, len(data), len(data))
        + data
    )
    with open_capture_file(path) as source:
        (batch,) = list(source.batches())
    assert batch.linktype == linktype
    return decode(batch)


def one(frame: Packet | bytes, linktype: int = LINKTYPE_ETHERNET) -> dict[str, int]:
    """The decoded columns of one frame, as ints."""
    batch = FrameBatch.from_frames([bytes(frame)], [0], linktype=linktype)
    decoded = decode(batch)
    return {name: int(getattr(decoded, name)[0]) for name in decoded.__dataclass_fields__}


def assert_tcp4(row: dict[str, int], encap: Encap) -> None:
    assert row["status"] == Status.L4
    assert (row["src_lo"], row["dst_lo"]) == (MAPPED | 0x0A000001, MAPPED | 0x0A000002)
    assert (row["proto"], row["sport"], row["dport"]) == (6, 1234, 80)
    assert row["encap"] == encap
    assert row["tun_type"] == 0


@pytest.mark.parametrize(
    ("name", "frame", "encap", "vlan"),
    [
        ("mpls", Ether(**MAC, type=0x8847) / MPLS(label=16, s=1) / TCP4, Encap.MPLS, 0),
        (
            "mpls stack in vlan",
            Ether(**MAC) / Dot1Q(vlan=7, type=0x8847) / MPLS(label=1, s=0) / MPLS(s=1) / TCP4,
            Encap.VLAN | Encap.MPLS,
            7,
        ),
        (
            "pppoe",
            Ether(**MAC) / PPPoE(sessionid=3) / PPP(proto=0x21) / TCP4,
            Encap.PPPOE | Encap.PPP,
            0,
        ),
        (
            "pppoe over qinq",
            Ether(**MAC) / Dot1AD(vlan=5) / Dot1Q(vlan=6) / PPPoE() / PPP(proto=0x21) / TCP4,
            Encap.VLAN | Encap.QINQ | Encap.PPPOE | Encap.PPP,
            5,
        ),
        (
            "pbb",
            Ether(**MAC) / Dot1AH(isid=99) / Ether(**MAC) / TCP4,
            Encap.PBB,
            0,
        ),
        (
            "fabricpath",
            bytes(Ether(**MAC, type=0x8903)) + b"\x00\x3f" + bytes(Ether(**MAC) / TCP4),
            Encap.FABRICPATH,
            0,
        ),
        (
            "vn-tag",
            bytes(Ether(**MAC, type=0x8926)) + b"\x80\x01\x00\x02\x08\x00" + bytes(TCP4),
            Encap.VNTAG,
            0,
        ),
    ],
)
def test_l2_5_headers_decode_to_the_inner_packet(
    tmp_path: Path, name: str, frame: Packet | bytes, encap: Encap, vlan: int
) -> None:
    """MPLS (in VLAN too), PPPoE (over QinQ too), PBB, FabricPath, VN-Tag: the inner 5-tuple."""
    if isinstance(frame, Packet) and PPPoE in frame:
        frame[PPPoE].len = len(frame[PPPoE].payload)
    decoded = through_pcap(tmp_path, frame, LINKTYPE_ETHERNET)
    row = {n: int(getattr(decoded, n)[0]) for n in decoded.__dataclass_fields__}
    assert_tcp4(row, encap)
    assert row["vlan"] == vlan


def test_mpls_guesses_ipv6_by_the_version_nibble(tmp_path: Path) -> None:
    """After the bottom of the stack, a 6 nibble is IPv6 (no type field: Zeek's guess)."""
    decoded = through_pcap(tmp_path, Ether(**MAC, type=0x8847) / MPLS(s=1) / UDP6, 1)
    assert (decoded.status[0], decoded.ipver[0], decoded.dport[0]) == (Status.L4, 6, 53)


@pytest.mark.parametrize(
    ("linktype", "frame", "encap"),
    [
        (LINKTYPE_NULL, Loopback(type=2) / TCP4, Encap.NULL_LOOP),
        (LINKTYPE_NULL, b"\x00\x00\x00\x02" + bytes(TCP4), Encap.NULL_LOOP),  # big-endian host
        (LINKTYPE_LOOP, b"\x00\x00\x00\x02" + bytes(TCP4), Encap.NULL_LOOP),
        (LINKTYPE_PPP, PPP(proto=0x21) / TCP4, Encap.PPP),
        (LINKTYPE_PPP, b"\xff\x03\x00\x21" + bytes(TCP4), Encap.PPP),
        (LINKTYPE_PPP_HDLC, b"\xff\x03\x00\x21" + bytes(TCP4), Encap.PPP),
        (LINKTYPE_PPP_HDLC, b"\x0f\x00\x08\x00" + bytes(TCP4), 0),  # Cisco HDLC
        (
            LINKTYPE_IEEE802_11,
            Dot11(type=2, subtype=0) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(code=0x800) / TCP4,
            0,
        ),
        (
            LINKTYPE_IEEE802_11_RADIOTAP,
            RadioTap()
            / Dot11(type=2, subtype=8, FCfield=3)
            / Dot11QoS()
            / LLC(dsap=0xAA, ssap=0xAA, ctrl=3)
            / SNAP(code=0x800)
            / TCP4,
            Encap.RADIOTAP,
        ),
    ],
)
def test_link_types_decode_to_the_packet(
    tmp_path: Path, linktype: int, frame: Packet | bytes, encap: Encap
) -> None:
    """DLT_NULL (either byte order), DLT_LOOP, PPP (with or without HDLC framing), Cisco HDLC,
    802.11 data and QoS data with LLC/SNAP, under radiotap: pcaps of each are read and decoded."""
    decoded = through_pcap(tmp_path, frame, linktype)
    assert_tcp4({n: int(getattr(decoded, n)[0]) for n in decoded.__dataclass_fields__}, encap)


def test_wifi_frames_without_ip_are_not_ip() -> None:
    """Management, null-data and protected 802.11 frames are counted as non-IP."""
    beacon = Dot11(type=0, subtype=8) / Raw(b"\0" * 40)
    null = Dot11(type=2, subtype=4) / Raw(b"\0" * 40)
    protected = Dot11(type=2, subtype=0, FCfield="protected") / Raw(b"\0" * 40)
    for frame in (beacon, null, protected):
        assert one(frame, LINKTYPE_IEEE802_11)["status"] == Status.NON_IP


_PPPOE = bytes(Ether(**MAC) / PPPoE(len=22) / PPP(proto=0x21) / TCP4)


@pytest.mark.parametrize(
    ("frame", "linktype", "reason"),
    [
        (bytes(Ether(**MAC, type=0x8847)) + b"\x00\x01\x00", 1, Status.TRUNCATED_L2),
        (bytes(Ether(**MAC, type=0x8847) / MPLS(s=1)), 1, Status.TRUNCATED_L3),
        (
            bytes(Ether(**MAC, type=0x8847)) + b"\x00\x01\x00\x40" * 17 + bytes(TCP4),
            1,
            Status.BAD_MPLS,
        ),
        (_PPPOE[:17], 1, Status.TRUNCATED_L2),
        (_PPPOE[:14] + b"\x21" + _PPPOE[15:], 1, Status.BAD_PPPOE),  # version 2
        (_PPPOE[:18] + b"\x05\xdc" + _PPPOE[20:], 1, Status.BAD_PPPOE),  # length past the frame
        (bytes(Ether(**MAC, type=0x8903)) + b"\x00\x3f" + b"\x00" * 10, 1, Status.TRUNCATED_L2),
        (bytes(Ether(**MAC, type=0x88E7)) + b"\x00" * 12, 1, Status.TRUNCATED_L2),
        (bytes(Ether(**MAC, type=0x8926)) + b"\x00" * 4, 1, Status.TRUNCATED_L2),
        (b"\x02\x00", LINKTYPE_NULL, Status.TRUNCATED_L2),
        (b"\x07\x00\x00\x00" + bytes(TCP4), LINKTYPE_NULL, Status.NON_IP),
        (b"\xff\x03\x00", LINKTYPE_PPP, Status.TRUNCATED_L2),
        (bytes(RadioTap())[:6], LINKTYPE_IEEE802_11_RADIOTAP, Status.TRUNCATED_L2),
        (
            b"\x01" + bytes(RadioTap())[1:] + bytes(TCP4),
            LINKTYPE_IEEE802_11_RADIOTAP,
            Status.BAD_LINK_HEADER,
        ),
        (
            b"\x00\x00\x04\x00\x00\x00\x00\x00" + bytes(TCP4),
            LINKTYPE_IEEE802_11_RADIOTAP,
            Status.BAD_LINK_HEADER,
        ),
        (bytes(RadioTap() / Dot11(type=2))[:20], LINKTYPE_IEEE802_11_RADIOTAP, Status.TRUNCATED_L2),
    ],
)
def test_cut_or_lying_headers_give_their_reason(
    frame: bytes, linktype: int, reason: Status
) -> None:
    """A label stack cut or too deep, a PPPoE header cut, of another version or longer than the
    frame, cut FabricPath/PBB/VN-Tag headers, a cut or unknown loopback family, a cut PPP header,
    radiotap cut or lying about its version or length, a cut 802.11 header: each its reason."""
    assert one(frame, linktype)["status"] == reason


def test_pipeline_counts_frames_by_each_encapsulation() -> None:
    """The capture-health counts: a frame counts once under each encapsulation it crossed, a
    plain frame under none; every Encap bit fits the series reserved for the family."""
    gre = Ether(**MAC) / Dot1Q(vlan=3) / IP(dst="192.0.2.9") / GRE() / TCP4
    frames = [bytes(gre), bytes(Ether(**MAC) / Dot1Q(vlan=4) / TCP4), bytes(Ether(**MAC) / TCP4)]
    pipeline = AnalysisPipeline(IdentityMap())
    pipeline.on_batch(FrameBatch.from_frames(frames, [1, 2, 3]))
    assert pipeline.encapsulated() == {"vlan": 2, "gre": 1}
    assert len(Encap) <= MAX_ENCAPSULATIONS
