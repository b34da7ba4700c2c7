"""The link stage of the compiled decoder: the capture's (or a tunnel's inner) link-layer header.

``link`` reads the link-layer header at ``pos`` for the frame's link type and hands the
ethertype it names to the chain (``_decchain``): it returns the ethertype of an IP header and its
offset, or 0 with ``row.status`` set (non-IP, or the reason a header is cut or lies). Offsets
are absolute in the batch buffer; ``cap`` is where the frame's captured bytes end, checked before
every read, ``wire`` where its packet ends.
"""

from __future__ import annotations

from analyzers._decchain import chain, ppp
from analyzers._decrow import (
    BAD_LINK_HEADER,
    ENC_NULL_LOOP,
    ENC_RADIOTAP,
    ETH_IPV4,
    ETH_IPV6,
    NON_IP,
    TRUNCATED_L2,
    TRUNCATED_L3,
    U8,
    UNSUPPORTED_LINKTYPE,
    Row,
    u8,
    u16,
    u32,
)
from capture import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IEEE802_11,
    LINKTYPE_IEEE802_11_RADIOTAP,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_NULL,
    LINKTYPE_PPP,
    LINKTYPE_PPP_HDLC,
    LINKTYPE_RAW,
    njit,
    njit_inline,
)

# Address families of the BSD loopback header: IPv4 everywhere, IPv6 by operating system (Linux,
# NetBSD/OpenBSD, FreeBSD, Darwin).
_AF_INET = 2
_AF_INET6 = (10, 24, 28, 30)
_CISCO_HDLC = (0x0F, 0x8F)  # the address byte of Cisco HDLC (unicast, broadcast)


@njit
def _cut(row: Row) -> tuple[int, int]:
    row.status = TRUNCATED_L2
    return 0, 0


@njit
def _not_ip(row: Row) -> tuple[int, int]:
    row.status = NON_IP
    return 0, 0


@njit
def _loopback(data: U8, pos: int, cap: int, network_order: bool, row: Row) -> tuple[int, int]:
    """DLT_NULL / DLT_LOOP: a 4-byte address family, then the IP packet."""
    row.encap |= ENC_NULL_LOOP
    if cap < pos + 4:
        return _cut(row)
    family = u32(data, pos)
    swapped = u8(data, pos) | (u8(data, pos + 1) << 8) | (u8(data, pos + 2) << 16)
    swapped |= u8(data, pos + 3) << 24
    if not network_order and swapped <= 0xFFFF:  # DLT_NULL: the capturing host's order, either
        family = swapped
    if family == _AF_INET:
        return ETH_IPV4, pos + 4
    if family in _AF_INET6:
        return ETH_IPV6, pos + 4
    return _not_ip(row)


@njit
def _radiotap(data: U8, pos: int, cap: int, wire: int, row: Row) -> tuple[int, int]:
    """A radiotap header (version 0, its little-endian length), then the 802.11 frame."""
    row.encap |= ENC_RADIOTAP
    if cap < pos + 8:
        return _cut(row)
    length = u8(data, pos + 2) | (u8(data, pos + 3) << 8)
    if data[pos] != 0 or length < 8:
        row.status = BAD_LINK_HEADER
        return 0, 0
    return _ieee80211(data, pos + length, cap, wire, row)


@njit
def _ieee80211(data: U8, pos: int, cap: int, wire: int, row: Row) -> tuple[int, int]:
    """An 802.11 data frame (as Zeek reads it): header, QoS, LLC/SNAP, then the ethertype.

    Management, control, null and protected (encrypted) frames are not IP. Of an A-MSDU only the
    first subframe is decoded: a frame is one row.
    """
    if cap < pos + 24:
        return _cut(row)
    fc0, fc1 = u8(data, pos), u8(data, pos + 1)
    if (fc0 >> 2) & 0x03 != 2 or (fc0 >> 4) & 0x04 or fc1 & 0x40:
        return _not_ip(row)
    at = pos + (30 if fc1 & 0x03 == 0x03 else 24)
    amsdu = False
    if (fc0 >> 4) & 0x08:  # QoS data: two bytes of QoS control, bit 7 marks an A-MSDU
        if cap < at + 2:
            return _cut(row)
        amsdu = (data[at] & 0x80) != 0
        at += 2
    if amsdu:
        at += 14  # the first subframe's header (destination, source, length)
    if cap < at + 8:
        return _cut(row)
    snap = data[at] == 0xAA and data[at + 1] == 0xAA and data[at + 2] == 0x03
    if not snap or data[at + 3] != 0 or data[at + 4] != 0 or data[at + 5] != 0:
        return _not_ip(row)
    return chain(data, u16(data, at + 6), at + 8, cap, wire, row)


@njit_inline  # a stage of the decoder's frame loop: inlined there
def link(  # noqa: PLR0911, PLR0917 - one return per link type; a compiled stage
    data: U8, pos: int, cap: int, wire: int, linktype: int, row: Row
) -> tuple[int, int]:
    """The frame's link-layer header at ``pos``: (IP ethertype, IP header offset) or (0, 0)."""
    if linktype == LINKTYPE_ETHERNET:
        if cap < pos + 14:
            return _cut(row)
        etype = u16(data, pos + 12)
        if etype in (ETH_IPV4, ETH_IPV6):  # most frames: no call into the chain
            return etype, pos + 14
        return chain(data, etype, pos + 14, cap, wire, row)
    if linktype == LINKTYPE_LINUX_SLL:
        if cap < pos + 16:
            return _cut(row)
        return chain(data, u16(data, pos + 14), pos + 16, cap, wire, row)
    if linktype == LINKTYPE_LINUX_SLL2:
        if cap < pos + 20:
            return _cut(row)
        return chain(data, u16(data, pos), pos + 20, cap, wire, row)
    if linktype == LINKTYPE_IPV4:
        return ETH_IPV4, pos
    if linktype == LINKTYPE_IPV6:
        return ETH_IPV6, pos
    if linktype == LINKTYPE_RAW:  # the version nibble says which
        if cap < pos + 1:
            row.status = TRUNCATED_L3
            return 0, 0
        return (ETH_IPV6 if u8(data, pos) >> 4 == 6 else ETH_IPV4), pos
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        return _loopback(data, pos, cap, linktype == LINKTYPE_LOOP, row)
    if linktype in (LINKTYPE_PPP, LINKTYPE_PPP_HDLC):
        if cap >= pos + 4 and data[pos] in _CISCO_HDLC and data[pos + 1] == 0:
            return chain(data, u16(data, pos + 2), pos + 4, cap, wire, row)
        return ppp(data, pos, cap, row)
    if linktype == LINKTYPE_IEEE802_11:
        return _ieee80211(data, pos, cap, wire, row)
    if linktype == LINKTYPE_IEEE802_11_RADIOTAP:
        return _radiotap(data, pos, cap, wire, row)
    row.status = UNSUPPORTED_LINKTYPE
    return 0, 0
