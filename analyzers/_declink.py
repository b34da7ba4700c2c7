"""The link and L2 stages of the compiled decoder: link-layer headers, then the ethertype chain.

``link`` reads the capture's link-layer header (or a tunnel's inner frame, which names its own
link type) and follows the ethertype chain to the network layer: it returns the ethertype of an
IP header and its offset, or 0 with ``row[STATUS]`` set (non-IP, or the reason a header is cut
or lies). Offsets are absolute in the batch buffer; ``cap`` is where the frame's captured bytes
end, checked before every read.
"""

from __future__ import annotations

from analyzers._decrow import (
    ENC_QINQ,
    ENC_VLAN,
    ENCAP,
    ETH_IPV4,
    ETH_IPV6,
    NON_IP,
    STATUS,
    TRUNCATED_L2,
    TRUNCATED_L3,
    U8,
    UNSUPPORTED_LINKTYPE,
    VLAN,
    Row,
    u16,
)
from capture import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    njit,
)

_VLAN_8021Q, _VLAN_8021AD, _VLAN_9100 = 0x8100, 0x88A8, 0x9100


@njit
def _chain(data: U8, etype: int, pos: int, cap: int, row: Row) -> tuple[int, int]:
    """Follow the ethertype ``etype`` of the header ending at ``pos`` to an IP header."""
    tags = 0
    while etype in (_VLAN_8021Q, _VLAN_8021AD, _VLAN_9100):
        if cap < pos + 4:
            row[STATUS] = TRUNCATED_L2
            return 0, 0
        if tags == 0:
            row[VLAN] = u16(data, pos) & 0x0FFF
            row[ENCAP] |= ENC_VLAN
        elif tags == 1:
            row[ENCAP] |= ENC_QINQ
        tags += 1
        etype = u16(data, pos + 2)
        pos += 4
    if etype in (ETH_IPV4, ETH_IPV6):
        return etype, pos
    row[STATUS] = NON_IP
    return 0, 0


@njit
def link(  # noqa: PLR0911 - one return per link type
    data: U8, pos: int, cap: int, linktype: int, row: Row
) -> tuple[int, int]:
    """The frame's link-layer header at ``pos``: (IP ethertype, IP header offset) or (0, 0)."""
    if linktype == LINKTYPE_ETHERNET:
        if cap < pos + 14:
            row[STATUS] = TRUNCATED_L2
            return 0, 0
        return _chain(data, u16(data, pos + 12), pos + 14, cap, row)
    if linktype == LINKTYPE_LINUX_SLL:
        if cap < pos + 16:
            row[STATUS] = TRUNCATED_L2
            return 0, 0
        return _chain(data, u16(data, pos + 14), pos + 16, cap, row)
    if linktype == LINKTYPE_LINUX_SLL2:
        if cap < pos + 20:
            row[STATUS] = TRUNCATED_L2
            return 0, 0
        return _chain(data, u16(data, pos), pos + 20, cap, row)
    if linktype == LINKTYPE_IPV4:
        return ETH_IPV4, pos
    if linktype == LINKTYPE_IPV6:
        return ETH_IPV6, pos
    if linktype == LINKTYPE_RAW:  # the version nibble says which
        if cap < pos + 1:
            row[STATUS] = TRUNCATED_L3
            return 0, 0
        return (ETH_IPV6 if int(data[pos]) >> 4 == 6 else ETH_IPV4), pos
    row[STATUS] = UNSUPPORTED_LINKTYPE
    return 0, 0
