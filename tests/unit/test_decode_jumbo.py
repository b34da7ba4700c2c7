"""IPv6 packets whose payload length field is 0: BIG TCP segments and RFC 2675 jumbograms."""

from __future__ import annotations

from scapy.layers.inet import TCP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop, Jumbo
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from analyzers import Status, decode
from capture import FrameBatch


def _decoded(pkt: Packet) -> tuple[int, int, int]:
    frame = bytes(Ether(src="0a:00:00:00:00:01", dst="0a:00:00:00:00:02") / pkt)
    dec = decode(FrameBatch.from_frames([frame], [0]))
    return int(dec.status[0]), int(dec.ip_len[0]), int(dec.l4_len[0])


def test_a_big_tcp_segment_is_as_long_as_its_frame() -> None:
    """Payload length 0 before TCP (Linux BIG TCP on the sending host): the frame's length."""
    pkt = (
        IPv6(src="2001:db8::1", dst="2001:db8::2", plen=0) / TCP(sport=1, dport=2) / Raw(b"x" * 900)
    )
    assert _decoded(pkt) == (Status.L4, 40 + 20 + 900, 900)


def test_a_jumbogram_takes_its_length_from_the_jumbo_option() -> None:
    """Payload length 0 and a hop-by-hop Jumbo Payload option: the option's length (RFC 2675)."""
    body = TCP(sport=1, dport=2) / Raw(b"y" * 300)
    hbh = IPv6ExtHdrHopByHop(options=[Jumbo(jumboplen=8 + len(body))])
    pkt = IPv6(src="2001:db8::1", dst="2001:db8::2", plen=0) / hbh / body
    assert _decoded(pkt) == (Status.L4, 40 + 8 + 20 + 300, 300)


def test_an_empty_payload_of_another_protocol_stays_empty() -> None:
    """Payload length 0 before anything but TCP or a jumbo option is an empty payload, whatever
    the Ethernet padding after it."""
    pkt = IPv6(src="2001:db8::1", dst="2001:db8::2", plen=0, nh=99)
    assert _decoded(pkt)[1] == 40
