"""The ethertype chain of the compiled decoder: what data-centre switches put between L2 and IP.

From an ethertype and the offset after it, ``chain`` follows VLAN tags (802.1Q, 802.1ad, QinQ),
MPLS label stacks, PPPoE sessions, Cisco FabricPath, PBB (802.1ah) and VN-Tag, in any order, to
an IP header: it returns its ethertype and offset, or 0 with ``row.status`` set (non-IP, or the
reason a header is cut or lies). ``ppp`` reads a PPP protocol field the same way (PPPoE, the PPP
link types, PPTP). Every header consumes bytes, so the walk ends at the captured end at the latest.
"""

from __future__ import annotations

from analyzers._decrow import (
    BAD_MPLS,
    BAD_PPPOE,
    ENC_FABRICPATH,
    ENC_MPLS,
    ENC_PBB,
    ENC_PPP,
    ENC_PPPOE,
    ENC_QINQ,
    ENC_VLAN,
    ENC_VNTAG,
    ETH_IPV4,
    ETH_IPV6,
    NON_IP,
    TRUNCATED_L2,
    TRUNCATED_L3,
    U8,
    Row,
    u8,
    u16,
)
from capture import njit

_VLAN_8021Q, _VLAN_8021AD, _VLAN_9100 = 0x8100, 0x88A8, 0x9100
_MPLS_UNICAST, _MPLS_MULTICAST = 0x8847, 0x8848
_PPPOE_SESSION = 0x8864
_FABRICPATH = 0x8903  # 2 bytes of FTag/TTL, then the inner Ethernet header
_PBB = 0x88E7  # the 4-byte I-tag, then the customer's Ethernet header
_VNTAG = 0x8926  # 4 bytes of tag, then the ethertype
_PPP_IPV4, _PPP_IPV6 = 0x0021, 0x0057
#: Labels followed before the stack is called a lie (real stacks have a handful).
MAX_LABELS = 16


@njit
def _cut(row: Row) -> tuple[int, int]:
    row.status = TRUNCATED_L2
    return 0, 0


@njit
def _not_ip(row: Row) -> tuple[int, int]:
    row.status = NON_IP
    return 0, 0


@njit
def ppp(data: U8, pos: int, cap: int, row: Row) -> tuple[int, int]:
    """The PPP frame at ``pos``: HDLC address and control optional, the protocol maybe one byte."""
    row.encap |= ENC_PPP
    if cap >= pos + 2 and data[pos] == 0xFF and data[pos + 1] == 0x03:
        pos += 2
    if cap < pos + 1:
        return _cut(row)
    if data[pos] & 1:  # a compressed (one-byte) protocol field
        proto, pos = u8(data, pos), pos + 1
    elif cap < pos + 2:
        return _cut(row)
    else:
        proto, pos = u16(data, pos), pos + 2
    if proto == _PPP_IPV4:
        return ETH_IPV4, pos
    if proto == _PPP_IPV6:
        return ETH_IPV6, pos
    return _not_ip(row)


@njit
def _mpls(data: U8, pos: int, cap: int, row: Row) -> tuple[int, int]:
    """The label stack at ``pos``; the IP version nibble after it says which (as Zeek does)."""
    row.encap |= ENC_MPLS
    for _ in range(MAX_LABELS):
        if cap < pos + 4:
            return _cut(row)
        bottom = data[pos + 2] & 1
        pos += 4
        if bottom:
            if cap < pos + 1:
                row.status = TRUNCATED_L3
                return 0, 0
            version = u8(data, pos) >> 4
            if version == 4:
                return ETH_IPV4, pos
            if version == 6:
                return ETH_IPV6, pos
            return _not_ip(row)
    row.status = BAD_MPLS
    return 0, 0


@njit
def _pppoe(data: U8, pos: int, cap: int, wire: int, row: Row) -> tuple[int, int]:
    """A PPPoE session header at ``pos``: version 1, type 1, code 0, its length within the frame."""
    row.encap |= ENC_PPPOE
    if cap < pos + 6:
        return _cut(row)
    length = u16(data, pos + 4)
    if data[pos] != 0x11 or data[pos + 1] != 0 or length < 2 or pos + 6 + length > wire:
        row.status = BAD_PPPOE
        return 0, 0
    return ppp(data, pos + 6, cap, row)


@njit  # not inlined: link calls it from five places, each a copy (+2.4 s of compile)
def chain(  # noqa: PLR0911, PLR0917 - one return per way the chain ends; a compiled stage
    data: U8, etype: int, pos: int, cap: int, wire: int, row: Row
) -> tuple[int, int]:
    """Follow ``etype`` (of the header ending at ``pos``) to an IP header: (ethertype, offset)."""
    tags = 0
    while True:
        if etype in (ETH_IPV4, ETH_IPV6):
            return etype, pos
        if etype in (_VLAN_8021Q, _VLAN_8021AD, _VLAN_9100):
            if cap < pos + 4:
                return _cut(row)
            if tags == 0:
                row.vlan = u16(data, pos) & 0x0FFF
                row.encap |= ENC_VLAN
            else:
                row.encap |= ENC_QINQ
            tags += 1
            etype, pos = u16(data, pos + 2), pos + 4
        elif etype in (_MPLS_UNICAST, _MPLS_MULTICAST):
            return _mpls(data, pos, cap, row)
        elif etype == _PPPOE_SESSION:
            return _pppoe(data, pos, cap, wire, row)
        elif etype == _FABRICPATH:
            row.encap |= ENC_FABRICPATH
            if cap < pos + 16:
                return _cut(row)
            etype, pos = u16(data, pos + 14), pos + 16
        elif etype == _PBB:
            row.encap |= ENC_PBB
            if cap < pos + 18:
                return _cut(row)
            etype, pos = u16(data, pos + 16), pos + 18
        elif etype == _VNTAG:
            row.encap |= ENC_VNTAG
            if cap < pos + 6:
                return _cut(row)
            etype, pos = u16(data, pos + 4), pos + 6
        else:
            return _not_ip(row)
