"""The IP and transport stages of the compiled decoder: IPv4, IPv6 and its extension chain, ports.

Each stage reads one header at ``pos`` of a frame whose captured bytes end at ``cap`` and whose
packet (per the enclosing lengths) ends at ``wire``, both absolute offsets in the batch buffer,
and writes the row. Every read is preceded by a check against ``cap``; a header that is cut or
lies ends the frame with its reason in ``row.status``.
"""

from __future__ import annotations

from analyzers._decrow import (
    BAD_IP_HEADER_LEN,
    BAD_IP_TOTAL_LEN,
    BAD_IP_VERSION,
    BAD_IPV6_EXT_HEADER,
    BAD_TCP_HEADER_LEN,
    IPV4_MAPPED,
    L3,
    L4,
    TRUNCATED_L3,
    TRUNCATED_L4,
    U8,
    Row,
    u8,
    u16,
    u32,
    u64,
)
from capture import njit, njit_inline

PROTO_ICMP, PROTO_TCP, PROTO_UDP, PROTO_ICMPV6, PROTO_SCTP = 1, 6, 17, 58, 132
# IPv6 extension headers: hop-by-hop, routing, destination options (generic layout), fragment, AH
_HOPOPT, _ROUTING, _DSTOPTS, _FRAGMENT, _AH = 0, 43, 60, 44, 51
_JUMBO = 0xC2  # the hop-by-hop Jumbo Payload option (RFC 2675)
# A chain longer than this is an attack or garbage, not a packet a host would send.
_MAX_IPV6_EXT = 16


@njit
def _version_status(data: U8, pos: int, cap: int, version: int, header: int) -> int:
    """Why the IP header at ``pos`` cannot be read, or 0 if its fixed part is all there."""
    if cap < pos + 1:
        return TRUNCATED_L3
    if u8(data, pos) >> 4 != version:
        return BAD_IP_VERSION
    if cap < pos + header:
        return TRUNCATED_L3
    return 0


@njit_inline  # a stage of the decoder's frame loop: inlined there
def ipv4(data: U8, pos: int, cap: int, wire: int, row: Row) -> tuple[int, int, int]:
    """The IPv4 header at ``pos``: (protocol, transport offset, transport bytes), or (-1, 0, 0)."""
    bad = _version_status(data, pos, cap, 4, 20)
    hlen = (u8(data, pos) & 0x0F) * 4 if bad == 0 else 0
    if bad == 0 and hlen < 20:
        bad = BAD_IP_HEADER_LEN
    elif bad == 0 and cap < pos + hlen:
        bad = TRUNCATED_L3
    if bad != 0:
        row.status = bad
        return -1, 0, 0
    total = u16(data, pos + 2)
    if total == 0:
        # A TSO/GSO or BIG TCP segment captured on the sending host, before the NIC splits it:
        # the kernel leaves the field 0 (the length may not fit 16 bits). tshark takes the length
        # from the frame's wire length, Zeek -C from the captured length; they agree unless the
        # snaplen cut the frame, and then the wire length is what the host sent.
        total = wire - pos
    if total < hlen or pos + total > wire:
        row.status = BAD_IP_TOTAL_LEN
        return -1, 0, 0
    row.ipver = 4
    row.src_lo = IPV4_MAPPED | u32(data, pos + 12)
    row.dst_lo = IPV4_MAPPED | u32(data, pos + 16)
    row.ip_len = total
    row.ip_id = u16(data, pos + 4)
    row.ttl = data[pos + 8]
    frag_field = u16(data, pos + 6)
    if frag_field & 0x1FFF:
        row.frag = 2
    elif frag_field & 0x2000:
        row.frag = 1
    return u8(data, pos + 9), pos + hlen, total - hlen


@njit_inline  # a stage of the decoder's frame loop: inlined there
def ipv6(  # noqa: PLR0911 - each way the chain ends the frame returns there
    data: U8, pos: int, cap: int, wire: int, row: Row
) -> tuple[int, int, int]:
    """The IPv6 header and extension chain at ``pos``: as ``ipv4``."""
    bad = _version_status(data, pos, cap, 6, 40)
    if bad != 0:
        row.status = bad
        return -1, 0, 0
    plen = u16(data, pos + 4)
    end = pos + 40 + plen
    if plen == 0:
        first = u8(data, pos + 6)
        if first == _HOPOPT and pos + 48 <= cap and u8(data, pos + 42) == _JUMBO:
            # a jumbogram: the length is in the hop-by-hop Jumbo Payload option (RFC 2675)
            end = min(pos + 40 + u32(data, pos + 44), wire)
        elif first == PROTO_TCP:
            # a BIG TCP segment captured on the sending host (Linux leaves the field 0 and drops
            # the option; no TCP segment fits in 0 bytes): as IPv4 TSO frames, as long as the frame
            end = wire
    if end > wire:
        row.status = BAD_IP_TOTAL_LEN
        return -1, 0, 0
    row.ipver = 6
    row.src_hi = u64(data, pos + 8)
    row.src_lo = u64(data, pos + 16)
    row.dst_hi = u64(data, pos + 24)
    row.dst_lo = u64(data, pos + 32)
    row.ip_len = end - pos
    row.ttl = data[pos + 7]
    nxt = u8(data, pos + 6)
    cur = pos + 40
    for _ in range(_MAX_IPV6_EXT):
        if nxt not in (_HOPOPT, _ROUTING, _DSTOPTS, _FRAGMENT, _AH):
            return nxt, cur, end - cur
        need = 8 if nxt == _FRAGMENT else 2
        if cur + need > end:
            row.status = BAD_IPV6_EXT_HEADER
            return -1, 0, 0
        if cur + need > cap:
            row.status = TRUNCATED_L3
            return -1, 0, 0
        if nxt == _FRAGMENT:
            frag_field = u16(data, cur + 2)
            row.ip_id = u32(data, cur + 4)
            row.frag = 2 if frag_field >> 3 else (1 if frag_field & 1 else 0)
            hlen = 8
        elif nxt == _AH:
            hlen = (u8(data, cur + 1) + 2) * 4
        else:
            hlen = (u8(data, cur + 1) + 1) * 8
        if cur + hlen > end:
            row.status = BAD_IPV6_EXT_HEADER
            return -1, 0, 0
        nxt = u8(data, cur)
        cur += hlen
    row.status = BAD_IPV6_EXT_HEADER
    return -1, 0, 0


@njit
def _min_captured(proto: int) -> int:
    """Bytes of transport header needed to report ports; 0: a protocol without ports."""
    if proto == PROTO_TCP:
        return 20
    if proto == PROTO_UDP:
        return 8
    if proto in (PROTO_ICMP, PROTO_ICMPV6, PROTO_SCTP):
        return 4
    return 0


@njit_inline  # a stage of the decoder's frame loop: inlined there
def transport(  # noqa: PLR0917 - a compiled stage takes its frame positionally
    data: U8, pos: int, payload: int, proto: int, cap: int, row: Row
) -> None:
    """Ports and payload bounds of the transport header at ``pos`` (``payload`` bytes per IP).

    The payload (``l4_off``) starts after the TCP header's data offset, the 8-byte UDP/ICMP
    header, the 12-byte SCTP header; on L3 rows (no ports, or a non-first fragment) it is the
    IP payload.
    """
    row.proto = proto
    need = _min_captured(proto)
    if need == 0 or row.frag == 2:
        row.status = L3
        row.l4_off = pos
        row.l4_len = payload
        return
    if payload < need or cap < pos + need:
        row.status = TRUNCATED_L4
        return
    hlen = 12 if proto == PROTO_SCTP else 8
    if proto == PROTO_TCP:
        off = u8(data, pos + 12)
        hlen = (off >> 4) * 4
        if hlen < 20 or hlen > payload:
            row.status = BAD_TCP_HEADER_LEN
            return
        row.sport = u16(data, pos)
        row.dport = u16(data, pos + 2)
        row.tcp_seq = u32(data, pos + 4)
        row.tcp_ack = u32(data, pos + 8)
        row.tcp_win = u16(data, pos + 14)
        row.tcp_flags = ((off & 1) << 8) | u8(data, pos + 13)
    elif proto in (PROTO_ICMP, PROTO_ICMPV6):
        row.sport = data[pos]
        row.dport = data[pos + 1]
    else:
        row.sport = u16(data, pos)
        row.dport = u16(data, pos + 2)
    row.status = L4
    row.l4_off = pos + hlen
    row.l4_len = max(payload - hlen, 0)
