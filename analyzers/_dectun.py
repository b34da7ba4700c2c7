"""The tunnel stage of the compiled decoder: where a decoded packet carries another frame.

``tunnel`` looks at a row the IP and transport stages just filled and, if the packet is a tunnel
the decoder follows, checks the tunnel header and says where the inner frame starts, which link
type it has and where it ends; ``enter`` then makes the row the inner frame's, keeping the
tunnel columns. A tunnel header that is cut or lies gives its reason and keeps the outer columns.
"""

from __future__ import annotations

from analyzers._decrow import (
    BAD_TUNNEL,
    DPORT,
    DST_HI,
    DST_LO,
    ENC_GENEVE,
    ENC_VXLAN,
    ENCAP,
    ETH_IPV4,
    ETH_IPV6,
    ETH_TEB,
    FRAG,
    L4,
    L4_LEN,
    L4_OFF,
    NCOLS,
    OUTER_DST_HI,
    OUTER_DST_LO,
    OUTER_SRC_HI,
    OUTER_SRC_LO,
    PROTO,
    SRC_HI,
    SRC_LO,
    STATUS,
    TUN_DIR,
    TUN_GENEVE,
    TUN_TYPE,
    TUN_VNI,
    TUN_VXLAN,
    U8,
    Row,
    u16,
    u32,
)
from capture import LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, njit

PROTO_UDP = 17
VXLAN_PORT, GENEVE_PORT = 4789, 6081


@njit
def _geneve_inner(ptype: int) -> int:
    if ptype == ETH_TEB:
        return LINKTYPE_ETHERNET
    if ptype == ETH_IPV4:
        return LINKTYPE_IPV4
    if ptype == ETH_IPV6:
        return LINKTYPE_IPV6
    return 0


@njit
def _udp(data: U8, pos: int, end: int, cap: int, row: Row) -> tuple[int, int, int, int, int]:
    """VXLAN or Geneve at ``pos`` (the UDP payload, to ``end``)."""
    if pos + 8 > end or pos + 8 > cap:
        row[STATUS] = BAD_TUNNEL
        return 0, 0, 0, 0, 0
    vni = u32(data, pos + 4) >> 8
    b0 = int(data[pos])
    if row[DPORT] == VXLAN_PORT:
        # Without the I flag the VNI is not valid.
        if not b0 & 0x08:
            row[STATUS] = BAD_TUNNEL
            return 0, 0, 0, 0, 0
        return LINKTYPE_ETHERNET, pos + 8, TUN_VXLAN, vni, ENC_VXLAN
    inner_at = pos + 8 + (b0 & 0x3F) * 4
    inner = _geneve_inner(u16(data, pos + 2))
    # Only Geneve version 0 exists.
    if b0 >> 6 != 0 or inner == 0 or inner_at > min(end, cap):
        row[STATUS] = BAD_TUNNEL
        return 0, 0, 0, 0, 0
    return inner, inner_at, TUN_GENEVE, vni, ENC_GENEVE


@njit
def tunnel(data: U8, cap: int, row: Row) -> tuple[int, int, int, int, int, int]:
    """The inner frame of the packet in ``row``, if it is a tunnel the decoder follows.

    Returns (inner link type, inner start, inner end, tunnel type, key, encap bit); link type 0
    when the packet is no tunnel, or is one whose header is bad (``row[STATUS]`` then says so).
    """
    if row[FRAG] != 0:
        return 0, 0, 0, 0, 0, 0
    pos = row[L4_OFF]
    end = pos + row[L4_LEN]
    if row[STATUS] == L4 and row[PROTO] == PROTO_UDP and row[DPORT] in (VXLAN_PORT, GENEVE_PORT):
        inner, at, kind, key, bit = _udp(data, pos, end, cap, row)
        return inner, at, end, kind, key, bit
    return 0, 0, 0, 0, 0, 0


@njit
def enter(row: Row, kind: int, key: int, direction: int, bit: int) -> None:
    """Make ``row`` the inner frame's: the tunnel columns set, every other column cleared."""
    if row[TUN_TYPE] == 0:  # the outermost tunnel's endpoints
        row[OUTER_SRC_HI] = row[SRC_HI]
        row[OUTER_SRC_LO] = row[SRC_LO]
        row[OUTER_DST_HI] = row[DST_HI]
        row[OUTER_DST_LO] = row[DST_LO]
    for col in range(NCOLS):
        if col not in (ENCAP, OUTER_SRC_HI, OUTER_SRC_LO, OUTER_DST_HI, OUTER_DST_LO):
            row[col] = 0
    row[TUN_TYPE] = kind
    row[TUN_VNI] = key
    row[TUN_DIR] = direction
    row[ENCAP] |= bit
