"""The tunnel stage of the compiled decoder: where a decoded packet carries another frame.

``tunnel`` looks at a row the IP and transport stages just filled and, if the packet is a tunnel
the decoder follows, checks the tunnel header and says where the inner frame starts, which link
type it has and where it ends; ``enter`` then makes the row the inner frame's, keeping the
tunnel columns. Followed: VXLAN (UDP 4789), Geneve (6081), GRE and what it carries (``_decgre``),
GRE over UDP (4754), IP-in-IP (IPv4 or IPv6 in IPv4 or IPv6), AYIYA (5072) and Teredo (any UDP
port whose payload is exactly an IPv6 packet, as Zeek detects it). A tunnel header that is cut
or lies gives its reason and keeps the outer columns; a packet on a Teredo or AYIYA port that is
not one (Zeek's test) stays the UDP packet it is.
"""

from __future__ import annotations

from analyzers._decgre import gre
from analyzers._decrow import (
    BAD_TUNNEL,
    ENC_AYIYA,
    ENC_GENEVE,
    ENC_GRE_UDP,
    ENC_IPIP,
    ENC_TEREDO,
    ENC_VXLAN,
    ETH_IPV4,
    ETH_IPV6,
    ETH_TEB,
    L3,
    L4,
    TUN_AYIYA,
    TUN_GENEVE,
    TUN_GRE,
    TUN_GRE_UDP,
    TUN_IPIP,
    TUN_TEREDO,
    TUN_VXLAN,
    U8,
    Row,
    clear_inner,
    u8,
    u16,
    u32,
)
from capture import LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, njit, njit_inline

PROTO_IPIP, PROTO_UDP, PROTO_IPV6, PROTO_GRE = 4, 17, 41, 47
VXLAN_PORT, GENEVE_PORT, GRE_UDP_PORT, AYIYA_PORT = 4789, 6081, 4754, 5072
_NO_NEXT_HEADER = 59  # an IPv6 packet without payload: a Teredo bubble

Inner = tuple[int, int, int, int, int, int]  # link type, start, tunnel type, key, direction, bits
_IPV6_HEADER = 40  # bytes of IPv6's fixed header: the least a Teredo datagram carries


@njit
def _bad(row: Row) -> Inner:
    row.status = BAD_TUNNEL
    return 0, 0, 0, 0, 0, 0


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
def _vxlan_geneve(data: U8, pos: int, end: int, row: Row) -> Inner:
    """VXLAN or Geneve at ``pos`` (the UDP payload, readable to ``end``)."""
    if pos + 8 > end:
        return _bad(row)
    vni = u32(data, pos + 4) >> 8
    b0 = u8(data, pos)
    if row.dport == VXLAN_PORT:
        if not b0 & 0x08:  # without the I flag the VNI is not valid
            return _bad(row)
        return LINKTYPE_ETHERNET, pos + 8, TUN_VXLAN, vni, 0, ENC_VXLAN
    inner_at = pos + 8 + (b0 & 0x3F) * 4
    inner = _geneve_inner(u16(data, pos + 2))
    if b0 >> 6 != 0 or inner == 0 or inner_at > end:  # only Geneve version 0 exists
        return _bad(row)
    return inner, inner_at, TUN_GENEVE, vni, 0, ENC_GENEVE


@njit
def teredo(data: U8, pos: int, end: int) -> Inner:
    """Teredo at ``pos``: optional authentication and origin headers, then an IPv6 packet whose
    length is the rest of the datagram (Zeek's test); a bubble (no payload) is not followed."""
    at = pos
    for _ in range(2):
        if at + 2 > end or data[at] != 0:
            break
        if data[at + 1] == 0:  # origin indication
            at += 8
        elif data[at + 1] == 1 and at + 4 <= end:  # authentication
            at += 13 + u8(data, at + 2) + u8(data, at + 3)
        else:
            break
    if (
        at + _IPV6_HEADER > end
        or u8(data, at) >> 4 != 6
        or at + _IPV6_HEADER + u16(data, at + 4) != end
    ):
        return 0, 0, 0, 0, 0, 0
    if data[at + 6] == _NO_NEXT_HEADER:
        return 0, 0, 0, 0, 0, 0
    return LINKTYPE_IPV6, at, TUN_TEREDO, 0, 0, ENC_TEREDO


@njit_inline  # the screen of every UDP datagram: inlined where it is asked
def maybe_teredo(data: U8, pos: int, end: int) -> bool:
    """False where ``teredo`` would find no Teredo at ``pos`` anyway: too short for an IPv6
    header, or starting with neither a Teredo header (0) nor IPv6 (version 6). Most UDP
    datagrams thus cost no call."""
    return end - pos >= _IPV6_HEADER and (data[pos] == 0 or data[pos] >> 4 == 6)


@njit
def _ayiya(data: U8, pos: int, end: int, row: Row) -> Inner:
    """AYIYA at ``pos``: identity and signature by their length nibbles, forward opcode only."""
    if pos + 8 > end:
        return _bad(row)
    size = 8 + (1 << (u8(data, pos) >> 4)) + (u8(data, pos + 1) >> 4) * 4
    if pos + size > end:
        return _bad(row)
    if data[pos + 2] & 0x0F != 1:  # not a forwarded packet (heartbeat, query)
        return 0, 0, 0, 0, 0, 0
    nxt = data[pos + 3]
    if nxt == PROTO_IPIP:
        return LINKTYPE_IPV4, pos + size, TUN_AYIYA, 0, 0, ENC_AYIYA
    if nxt == PROTO_IPV6:
        return LINKTYPE_IPV6, pos + size, TUN_AYIYA, 0, 0, ENC_AYIYA
    return _bad(row)


@njit_inline  # the common frame's path (``_decplain``) asks it of every UDP datagram
def udp_tunnel(data: U8, pos: int, end: int, sport: int, dport: int) -> bool:
    """Whether ``tunnel`` below would take the UDP payload at ``pos`` (readable to ``end``) for
    a tunnel's: a port it decodes (VXLAN, Geneve, GRE-in-UDP, AYIYA; a bad header there is its
    to report too), or Teredo by its screen and then its test."""
    return (
        dport in (VXLAN_PORT, GENEVE_PORT, GRE_UDP_PORT)
        or AYIYA_PORT in (sport, dport)
        or (maybe_teredo(data, pos, end) and teredo(data, pos, end)[0] != 0)
    )


@njit_inline  # a stage of the decoder's frame loop: inlined there
def tunnel(data: U8, cap: int, row: Row) -> tuple[int, int, int, int, int, int, int]:
    """The inner frame of the packet in ``row``, if it is a tunnel the decoder follows.

    Returns (inner link type, inner start, inner end, tunnel type, key, direction, encap bits);
    link type 0 when the packet is no tunnel, or one whose header is bad (``row.status`` says).
    """
    if row.frag != 0:
        return 0, 0, 0, 0, 0, 0, 0
    pos = row.l4_off
    end = pos + row.l4_len
    readable = min(end, cap)
    inner, at, kind, key, direction, bits = 0, 0, 0, 0, 0, 0
    if row.status == L4 and row.proto == PROTO_UDP:
        sport, dport = row.sport, row.dport
        if dport in (VXLAN_PORT, GENEVE_PORT):
            inner, at, kind, key, direction, bits = _vxlan_geneve(data, pos, readable, row)
        elif dport == GRE_UDP_PORT:
            inner, at, kind, key, direction, bits = gre(data, pos, readable, row)
            if kind == TUN_GRE:
                kind = TUN_GRE_UDP
            bits |= ENC_GRE_UDP
        elif AYIYA_PORT in (sport, dport):
            inner, at, kind, key, direction, bits = _ayiya(data, pos, readable, row)
        elif maybe_teredo(data, pos, readable):  # on any port, as Zeek detects it (relays
            # use their own ports)
            inner, at, kind, key, direction, bits = teredo(data, pos, readable)
    elif row.status == L3:
        proto = row.proto
        if proto == PROTO_GRE:
            inner, at, kind, key, direction, bits = gre(data, pos, readable, row)
        elif proto == PROTO_IPIP:
            inner, at, kind, bits = LINKTYPE_IPV4, pos, TUN_IPIP, ENC_IPIP
        elif proto == PROTO_IPV6:
            inner, at, kind, bits = LINKTYPE_IPV6, pos, TUN_IPIP, ENC_IPIP
    if inner == 0:
        return 0, 0, 0, 0, 0, 0, 0
    return inner, at, end, kind, key, direction, bits


@njit
def enter(row: Row, kind: int, key: int, direction: int, bits: int) -> None:
    """Make ``row`` the inner frame's: the tunnel columns set, every other column cleared."""
    if row.tun_type == 0:  # the outermost tunnel's endpoints
        if kind in (TUN_TEREDO, TUN_AYIYA, TUN_GRE_UDP):
            # a UDP carrier Zeek logs as a connection of its own: its ports and lengths
            row.carrier_ports = (row.sport << 16) | row.dport
            row.carrier_ip_len = row.ip_len
            row.carrier_l4_len = row.l4_len
        row.outer_src_hi = row.src_hi
        row.outer_src_lo = row.src_lo
        row.outer_dst_hi = row.dst_hi
        row.outer_dst_lo = row.dst_lo
    clear_inner(row)
    row.tun_type = kind
    row.tun_vni = key
    row.tun_dir = direction
    row.encap |= bits
