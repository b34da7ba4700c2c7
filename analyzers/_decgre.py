"""GRE for the compiled decoder's tunnel stage: RFC 2784/2890, ERSPAN I/II/III, PPTP, Aruba.

``gre`` reads the GRE header at ``pos`` (payload of an IP packet, or of UDP port 4754) and says
what follows it, as Zeek's GRE analyzer does: IPv4, IPv6, transparent Ethernet, ERSPAN type I
(Ethernet right after GRE), II (an 8-byte header, GRE sequence bit set) and III (12 bytes, and
an 8-byte platform sub-header when its O bit is set), PPTP's enhanced GRE (version 1: the key is
payload length and call id, PPP inside; the call id is not kept, each direction has its own),
Aruba's 802.11. A header that is cut or lies gives ``BAD_GRE`` / ``BAD_ERSPAN``; a GRE payload
of another protocol is left as the GRE packet.
"""

from __future__ import annotations

from analyzers._decrow import (
    BAD_ERSPAN,
    BAD_GRE,
    ENC_ERSPAN,
    ENC_GRE,
    ENC_PPTP,
    ETH_IPV4,
    ETH_IPV6,
    ETH_TEB,
    TUN_ERSPAN_I,
    TUN_ERSPAN_II,
    TUN_ERSPAN_III,
    TUN_GRE,
    TUN_PPTP,
    U8,
    Row,
    u8,
    u16,
    u32,
)
from capture import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IEEE802_11,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_PPP,
    njit,
)

_CSUM, _ROUTING, _KEY, _SEQ, _ACK, _RESERVED = 0x8000, 0x4000, 0x2000, 0x1000, 0x0080, 0x0078
_ERSPAN_I_II, _ERSPAN_III, _PPTP = 0x88BE, 0x22EB, 0x880B

Inner = tuple[int, int, int, int, int, int]  # link type, start, tunnel type, key, direction, bits


@njit
def _bad(row: Row, reason: int) -> Inner:
    row.status = reason
    return 0, 0, 0, 0, 0, 0


@njit
def _aruba(ptype: int) -> bool:
    """Aruba's protocol types for 802.11 frames (as Zeek registers them)."""
    if ptype & 0x0F:
        return ptype == 0x9000
    return (ptype & 0xFF00) == 0x8200 or 0x8300 <= ptype <= 0x8370


@njit
def _erspan(  # noqa: PLR0917 - a compiled stage takes its frame positionally
    data: U8, at: int, end: int, ptype: int, sequenced: bool, row: Row
) -> Inner:
    """The ERSPAN header at ``at`` (none for type I): session id, direction, the mirrored frame."""
    if ptype == _ERSPAN_I_II and not sequenced:
        return LINKTYPE_ETHERNET, at, TUN_ERSPAN_I, 0, 0, ENC_GRE | ENC_ERSPAN
    size, version, kind = 8, 1, TUN_ERSPAN_II
    if ptype == _ERSPAN_III:
        size, version, kind = 12, 2, TUN_ERSPAN_III
    if at + size > end or u8(data, at) >> 4 != version:
        return _bad(row, BAD_ERSPAN)
    session = ((u8(data, at + 2) & 0x03) << 8) | u8(data, at + 3)
    direction = 0  # type II does not say
    if kind == TUN_ERSPAN_III:
        flags = u8(data, at + 11)
        direction = 2 if flags & 0x08 else 1
        if flags & 0x01:  # the optional platform-specific sub-header
            size += 8
            if at + size > end:
                return _bad(row, BAD_ERSPAN)
    return LINKTYPE_ETHERNET, at + size, kind, session, direction, ENC_GRE | ENC_ERSPAN


@njit
def gre(data: U8, pos: int, end: int, row: Row) -> Inner:  # noqa: PLR0911 - one per payload
    """The GRE header at ``pos`` (readable up to ``end``): what follows it, or link type 0."""
    if pos + 4 > end:
        return _bad(row, BAD_GRE)
    flags = u16(data, pos)
    ptype = u16(data, pos + 2)
    version = flags & 0x07
    if version > 1 or flags & (_ROUTING | _RESERVED):
        return _bad(row, BAD_GRE)
    at = pos + 4
    if flags & _CSUM:
        at += 4
    key_at = at
    if flags & _KEY:
        at += 4
    if flags & _SEQ:
        at += 4
    if flags & _ACK:
        at += 4
    if at > end:
        return _bad(row, BAD_GRE)
    key = 0
    if flags & _KEY:
        key = u32(data, key_at)
    if version == 1:  # PPTP: a key (payload length, call id) is mandatory, PPP inside
        if ptype != _PPTP or not flags & _KEY:
            return _bad(row, BAD_GRE)
        # The call id is each peer's own (one per direction): keeping it would split the flow.
        return LINKTYPE_PPP, at, TUN_PPTP, 0, 0, ENC_GRE | ENC_PPTP
    if ptype == ETH_IPV4:
        return LINKTYPE_IPV4, at, TUN_GRE, key, 0, ENC_GRE
    if ptype == ETH_IPV6:
        return LINKTYPE_IPV6, at, TUN_GRE, key, 0, ENC_GRE
    if ptype == ETH_TEB:
        return LINKTYPE_ETHERNET, at, TUN_GRE, key, 0, ENC_GRE
    if ptype in (_ERSPAN_I_II, _ERSPAN_III):
        return _erspan(data, at, end, ptype, (flags & _SEQ) != 0, row)
    if _aruba(ptype):
        return LINKTYPE_IEEE802_11, at, TUN_GRE, key, 0, ENC_GRE
    return 0, 0, 0, 0, 0, 0
