"""The common frame, decoded straight into the columns: Ethernet, IPv4 without options, TCP/UDP.

Nearly every frame a pod network mirrors is one of these. The general decoder (``_decode``'s
stages) takes each frame through the link, chain, IP, transport and tunnel stages, filling a
record that the frame loop then copies into the columns; for a 64-byte UDP frame that is ~37 ns
cache-warm. ``plain`` reads such a frame in one function whose values stay in registers until the
loop stores them: ~25 ns.

It is exact by construction: it takes a frame only where every stage of the general decoder would
take the same plain road, and hands every other frame back to them (``ok`` False). Taken: an
Ethernet II header with ethertype IPv4 (no tag, no chain), version 4 with a 20-byte header, a
total length of at least 40 that the frame's wire length holds, not a fragment (no MF flag, offset
0), and either TCP with a data offset between 20 bytes and the IP payload, or UDP on none of the
ports a tunnel the decoder follows uses (VXLAN, Geneve, GRE-in-UDP, AYIYA) that is not Teredo
either (``_dectun.udp_tunnel``: the tunnel stage's own ports, screen and test). At least 40 bytes
of IP must be captured. A test decodes every capture of both corpora with and without it: the
columns are the same.
"""

from __future__ import annotations

from analyzers._decrow import IPV4_MAPPED, U8, u8, u16, u32
from analyzers._dectun import udp_tunnel
from capture import njit_inline

__all__ = ["Plain", "plain"]

_TCP, _UDP = 6, 17
_IP_AT = 14  # the IPv4 header's offset in an untagged Ethernet II frame
_NEED = 40  # IPv4 header and a TCP header without options (a UDP header and 12 bytes of payload)

#: (taken, src, dst, protocol, sport, dport, IP length, payload offset, payload length,
#: TCP flags, seq, ack, window, IP id, TTL): the row's fields, 0 for the columns not listed
Plain = tuple[bool, int, int, int, int, int, int, int, int, int, int, int, int, int, int]
_NOT: Plain = (False, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)


@njit_inline  # the decoder's frame loop tries it first: inlined there
def plain(data: U8, start: int, cap: int, wire: int) -> Plain:
    """The Ethernet frame at ``start`` (captured to ``cap``, on the wire to ``wire``) if it is
    the common kind (the module says which), else ``taken`` False."""
    ip = start + _IP_AT
    if cap < ip + _NEED or data[start + 12] != 0x08 or data[start + 13] != 0 or data[ip] != 0x45:
        return _NOT
    total = u16(data, ip + 2)
    if total < _NEED or ip + total > wire or data[ip + 6] & 0x3F or data[ip + 7]:
        return _NOT
    proto = u8(data, ip + 9)
    at = ip + 20
    sport, dport = u16(data, at), u16(data, at + 2)
    flags, seq, ack, win = 0, 0, 0, 0
    hlen = (u8(data, at + 12) >> 4) * 4 if proto == _TCP else 8
    off, length = at + hlen, total - 20 - hlen
    if proto == _UDP:
        taken = not udp_tunnel(data, off, min(off + length, cap), sport, dport)
    else:
        taken = proto == _TCP and 20 <= hlen <= total - 20
        flags = ((u8(data, at + 12) & 1) << 8) | u8(data, at + 13)
        seq, ack, win = u32(data, at + 4), u32(data, at + 8), u16(data, at + 14)
    if not taken:
        return _NOT
    src, dst = IPV4_MAPPED | u32(data, ip + 12), IPV4_MAPPED | u32(data, ip + 16)
    ident, ttl = u16(data, ip + 4), u8(data, ip + 8)
    return True, src, dst, proto, sport, dport, total, off, length, flags, seq, ack, win, ident, ttl
