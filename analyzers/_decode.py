"""Decode a whole FrameBatch into header columns: vectorized for the common case, scalar otherwise.

The vectorized pass handles, for every row at once, Ethernet with up to two VLAN tags (or Linux
SLL/SLL2, raw IP), IPv4 with or without options and fragments, IPv6 without extension headers,
TCP, UDP, ICMP, ICMPv6 and SCTP, a transport header cut by the snaplen or with a bad TCP data
offset, and the inner frames of VXLAN/Geneve. It reads one 42-byte record per row (ethertype, IP
header, fixed transport header; re-read at the right offset for VLAN, IPv6 and IP options) and
derives every column with masks. A row it cannot vouch for (truncated before the transport
header, a malformed IP header, an IPv6 extension header, three or more VLAN tags, an odd tunnel
header, or a few tunnelled rows not worth a second pass) is re-decoded by the scalar decoder in
``_decode_slow``, which is the reference for every field and every reason code: the fuzz tests
check that both agree on every column of every row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from analyzers import _decode_slow as slow
from analyzers._decoded import DecodedBatch, Encap, Status, TunnelType
from analyzers._gather import gather
from capture import FrameBatch

# The decoder reads one 42-byte record per row starting two bytes before the IP header: the
# ethertype, the IP header, and (for IPv4 without options) the first 20 bytes of transport header,
# all at fixed positions. Rows whose layout differs (VLAN tags, IPv6, IPv4 options) get that part
# re-gathered at the right offset, so every field below is read through one of two views.
_REC_WIDTH = 42
_REC_L4 = 22
_REC4 = np.dtype(
    [
        ("et", ">u2"),
        ("vihl", "u1"),
        ("tos", "u1"),
        ("total", ">u2"),
        ("id", ">u2"),
        ("frag", ">u2"),
        ("ttl", "u1"),
        ("proto", "u1"),
        ("csum", ">u2"),
        ("src", ">u4"),
        ("dst", ">u4"),
        ("sport", ">u2"),
        ("dport", ">u2"),
        ("seq", ">u4"),
        ("ack", ">u4"),
        ("off", "u1"),
        ("flags", "u1"),
        ("win", ">u2"),
        ("tcp_tail", "V4"),
    ]
)
_REC6 = np.dtype(
    [
        ("et", ">u2"),
        ("vtcfl", ">u4"),
        ("plen", ">u2"),
        ("nxt", "u1"),
        ("hlim", "u1"),
        ("src_hi", ">u8"),
        ("src_lo", ">u8"),
        ("dst_hi", ">u8"),
        ("dst_lo", ">u8"),
    ]
)
_ETYPE = np.dtype([("et", ">u2")])


def _flags(size: int, keys: Iterable[int]) -> npt.NDArray[np.bool_]:
    out = np.zeros(size, dtype=np.bool_)
    out[list(keys)] = True
    return out


def _ints(entries: dict[int, int]) -> npt.NDArray[np.int64]:
    out = np.zeros(256, dtype=np.int64)
    for key, value in entries.items():
        out[key] = value
    return out


# Lookup tables indexed by ethertype / IP protocol: one gather replaces a chain of comparisons.
_IS_VLAN = _flags(65536, slow.VLAN_TPIDS)
_L4_NEED = _ints(slow.L4_MIN_CAPTURED)
_L4_HLEN = _ints(slow.L4_HEADER_LEN)
_IS_ICMP = _flags(256, (slow.PROTO_ICMP, slow.PROTO_ICMPV6))
_IS_V6_EXT = _flags(256, slow.IPV6_EXT_HEADERS)

_U64 = np.uint64
_MIN_TUNNEL_ROWS = 48
_L2_LEN = {slow.LINKTYPE_ETHERNET: 14, slow.LINKTYPE_LINUX_SLL: 16, slow.LINKTYPE_LINUX_SLL2: 20}
# Below this many malformed IP headers in a batch the scalar decoder is cheaper than the masks.
_MIN_BAD_IP_ROWS = 8
# Columns the IPv4 pass writes on every row, to be cleared where the row is not IP at all.
_L3_COLUMNS = ("src_lo", "dst_lo", "proto", "ttl", "ip_id", "ip_len", "l4_off", "l4_len")


def decode(batch: FrameBatch) -> DecodedBatch:
    """Header columns of every frame of ``batch``; never raises for any frame content."""
    n = len(batch)
    if n == 0 or batch.linktype not in slow.SUPPORTED_LINKTYPES:
        out = _empty(n, zeroed=True)
        out.status[:] = Status.UNSUPPORTED_LINKTYPE
        return out
    out = _empty(n)
    data = np.ascontiguousarray(batch.data, dtype=np.uint8)
    offsets = batch.offsets.astype(np.int64, copy=False)
    # A reader bug must not turn into reads past the buffer: clamp what the frame can claim.
    caplens = np.minimum(batch.caplens, np.maximum(data.shape[0] - offsets, 0))
    wirelens = np.maximum(batch.wirelens, caplens)
    needs_slow = _vectorized(data, offsets, caplens, wirelens, linktype=batch.linktype, out=out)
    rows = np.flatnonzero(needs_slow)
    if rows.size:
        _scalar(
            data,
            rows,
            offsets=offsets,
            caplens=caplens,
            wirelens=batch.wirelens,
            linktype=batch.linktype,
            out=out,
        )
    return out


# Columns the vectorized pass writes only on some rows; every other column it writes whole.
_SPARSE = frozenset(
    (
        "src_hi",
        "dst_hi",
        "vlan",
        "tun_type",
        "tun_vni",
        "tun_dir",
        "outer_src_hi",
        "outer_src_lo",
        "outer_dst_hi",
        "outer_dst_lo",
        "encap",
    )
)


def _empty(n: int, *, zeroed: bool = False) -> DecodedBatch:
    """Columns for ``n`` rows: zeros where a pass may leave rows unwritten, else uninitialised."""
    columns = {
        field.name: (np.zeros if zeroed or field.name in _SPARSE else np.empty)(
            n, _DTYPES[field.name]
        )
        for field in dataclasses.fields(DecodedBatch)
    }
    return DecodedBatch(**columns)


_DTYPES: dict[str, type[np.generic]] = {
    "status": np.uint8,
    "ipver": np.uint8,
    "src_hi": np.uint64,
    "src_lo": np.uint64,
    "dst_hi": np.uint64,
    "dst_lo": np.uint64,
    "proto": np.uint8,
    "sport": np.uint16,
    "dport": np.uint16,
    "vlan": np.uint16,
    "tun_type": np.uint8,
    "tun_vni": np.uint32,
    "tun_dir": np.uint8,
    "outer_src_hi": np.uint64,
    "outer_src_lo": np.uint64,
    "outer_dst_hi": np.uint64,
    "outer_dst_lo": np.uint64,
    "encap": np.uint32,
    "ip_len": np.uint32,
    "l4_off": np.int64,
    "l4_len": np.uint32,
    "tcp_flags": np.uint16,
    "tcp_seq": np.uint32,
    "tcp_ack": np.uint32,
    "tcp_win": np.uint16,
    "ip_id": np.uint32,
    "frag": np.uint8,
    "ttl": np.uint8,
}


def _link_layer(
    data: npt.NDArray[np.uint8],
    offsets: npt.NDArray[np.int64],
    caplens: npt.NDArray[np.int64],
    linktype: int,
) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Per row: the 42-byte record, ethertype, L3 offset in the frame, whether L2 is readable.

    Also the VLAN column, through ``_vlan_fixup`` for Ethernet.
    """
    n = offsets.shape[0]
    if linktype in (slow.LINKTYPE_ETHERNET, slow.LINKTYPE_LINUX_SLL):
        l3 = 14 if linktype == slow.LINKTYPE_ETHERNET else 16
        rec = gather(data, offsets + (l3 - 2), _REC_WIDTH)
        l3off = np.full(n, l3, np.int64)
        return rec, rec.view(_REC4)["et"].astype(np.int64), l3off, caplens >= l3
    if linktype == slow.LINKTYPE_LINUX_SLL2:
        rec = gather(data, offsets + 18, _REC_WIDTH)
        etype = gather(data, offsets, 2).view(_ETYPE)["et"].astype(np.int64)
        return rec, etype, np.full(n, 20, np.int64), caplens >= 20
    rec = gather(data, offsets - 2, _REC_WIDTH)
    l3off = np.zeros(n, np.int64)
    if linktype == slow.LINKTYPE_IPV4:
        etype = np.full(n, slow.ETH_IPV4, np.int64)
    elif linktype == slow.LINKTYPE_IPV6:
        etype = np.full(n, slow.ETH_IPV6, np.int64)
    else:
        version = rec.view(_REC4)["vihl"] >> 4
        etype = np.where(version == 6, slow.ETH_IPV6, slow.ETH_IPV4).astype(np.int64)
    return rec, etype, l3off, caplens >= 1


def _vlan_fixup(
    data: npt.NDArray[np.uint8],
    offsets: npt.NDArray[np.int64],
    rec: npt.NDArray[Any],
    etype: npt.NDArray[np.int64],
    l3off: npt.NDArray[np.int64],
    *,
    vlan: npt.NDArray[np.uint16],
    encap: npt.NDArray[np.uint32],
) -> npt.NDArray[np.bool_]:
    """Re-read tagged Ethernet rows past their tags; return the rows with three or more tags."""
    tagged = np.flatnonzero(_IS_VLAN[etype])
    deep = np.zeros(etype.shape[0], np.bool_)
    if tagged.size == 0:
        return deep
    # The record was read from the outer ethertype on, so its next two bytes are the first TCI.
    first = rec[tagged].view(np.uint8).reshape(-1, _REC_WIDTH)
    vlan[tagged] = ((first[:, 2].astype(np.uint16) << 8) | first[:, 3]) & 0x0FFF
    encap[tagged] |= np.uint32(Encap.VLAN)
    once = gather(data, offsets[tagged] + 16, _REC_WIDTH)
    inner = once.view(_REC4)["et"].astype(np.int64)
    twice = np.flatnonzero(_IS_VLAN[inner])
    l3 = np.full(tagged.size, 18, np.int64)
    if twice.size:
        again = gather(data, offsets[tagged[twice]] + 20, _REC_WIDTH)
        once[twice] = again
        inner[twice] = again.view(_REC4)["et"]
        l3[twice] = 22
        encap[tagged[twice]] |= np.uint32(Encap.QINQ)
        deep[tagged[twice]] = _IS_VLAN[inner[twice]]
    rec[tagged] = once
    etype[tagged] = inner
    l3off[tagged] = l3
    return deep


def _vectorized(
    data: npt.NDArray[np.uint8],
    offsets: npt.NDArray[np.int64],
    caplens: npt.NDArray[np.int64],
    wirelens: npt.NDArray[np.int64],
    *,
    linktype: int,
    out: DecodedBatch,
    tunnelled: bool = False,
) -> npt.NDArray[np.bool_]:
    """Fill ``out`` for the rows the vectorized path can vouch for; return the rows it cannot.

    ``tunnelled`` rows are inner frames of a VXLAN/Geneve packet: their tunnels are not followed.
    """
    rec, etype, l3off, link_ok = _link_layer(data, offsets, caplens, linktype)
    # Frames too short for their link header: TRUNCATED_L2, nothing else (as the scalar says).
    cut_l2 = np.flatnonzero(caplens < _L2_LEN.get(linktype, 0))
    etype[cut_l2] = 0
    if linktype == slow.LINKTYPE_ETHERNET:
        deep = _vlan_fixup(data, offsets, rec, etype, l3off, vlan=out.vlan, encap=out.encap)
        link_ok &= (caplens >= l3off) & ~deep
    elif linktype in (slow.LINKTYPE_LINUX_SLL, slow.LINKTYPE_LINUX_SLL2):
        link_ok &= ~_IS_VLAN[etype]
    is4 = link_ok & (etype == slow.ETH_IPV4)
    is6 = link_ok & (etype == slow.ETH_IPV6)

    r4 = rec.view(_REC4)
    r6 = rec.view(_REC6)
    vihl = r4["vihl"]
    version = vihl >> 4
    hlen4 = (vihl & 0x0F).astype(np.int64) << 2
    total4 = r4["total"].astype(np.int64)
    # Total length 0 is a TSO/GSO or BIG TCP segment seen on the sending host: like tshark, take
    # the IP length from the frame's length on the wire (see ``_decode_slow._ipv4``).
    np.copyto(total4, wirelens - l3off, where=total4 == 0)
    plen6 = r6["plen"].astype(np.int64)
    good4 = (
        is4
        & (version == 4)
        & (hlen4 >= 20)
        & (caplens >= l3off + hlen4)
        & (total4 >= hlen4)
        & (l3off + total4 <= wirelens)
    )
    nxt6 = r6["nxt"]
    sound6 = is6 & (version == 6) & (caplens >= l3off + 40) & (l3off + 40 + plen6 <= wirelens)
    needs_slow = ~link_ok | (sound6 & _IS_V6_EXT[nxt6])  # extension header chains
    needs_slow[cut_l2] = False
    bad_ip = np.flatnonzero((is4 & ~good4) | (is6 & ~sound6))
    ip_reason = None
    if bad_ip.size >= _MIN_BAD_IP_ROWS:
        # A flood of cut or corrupt IP headers must not cost a scalar decode each: give them
        # their reason here and treat them as non-IP rows below (no L3/L4 columns, like the scalar).
        ip_reason = _ip_reasons(
            version[bad_ip], hlen4[bad_ip], caplens[bad_ip] - l3off[bad_ip], is6[bad_ip]
        )
        is4[bad_ip] = False
        is6[bad_ip] = False
    else:
        needs_slow[bad_ip] = True
    is6 &= ~needs_slow
    ip = is4 | is6

    # Columns are written for IPv4 unconditionally, then patched on the (usually fewer) IPv6
    # rows and cleared on non-IP rows: cheaper than a select over every row for every column.
    six = np.flatnonzero(is6)
    np.multiply(is4, np.uint8(4), out=out.ipver)
    np.bitwise_or(r4["src"], _U64(slow.IPV4_MAPPED), out=out.src_lo)
    np.bitwise_or(r4["dst"], _U64(slow.IPV4_MAPPED), out=out.dst_lo)
    out.proto[:] = r4["proto"]
    out.ttl[:] = r4["ttl"]
    out.ip_id[:] = r4["id"]
    hlen = hlen4
    payload = total4 - hlen4
    if six.size:
        v6 = rec[six].view(_REC6)  # a void gather: indexing the structured view is 10x slower
        out.ipver[six] = 6
        out.src_hi[six] = v6["src_hi"]
        out.src_lo[six] = v6["src_lo"]
        out.dst_hi[six] = v6["dst_hi"]
        out.dst_lo[six] = v6["dst_lo"]
        out.proto[six] = v6["nxt"]
        out.ttl[six] = v6["hlim"]
        out.ip_id[six] = 0
        hlen[six] = 40
        payload[six] = plen6[six]
    np.add(payload, hlen, out=out.ip_len, casting="unsafe")
    proto = out.proto
    frag_field = r4["frag"].astype(np.uint16)
    non_first = is4 & ((frag_field & 0x1FFF) != 0)
    more = is4 & ((frag_field & 0x2000) != 0)
    np.add(non_first * np.uint8(2), more & ~non_first, out=out.frag)

    l3pos = offsets + l3off
    l4pos = l3pos + hlen
    need = _L4_NEED[proto]
    need *= ip & ~non_first
    has_l4 = need > 0
    moved = np.flatnonzero(has_l4 & (hlen != 20))
    if moved.size:
        rec[moved] = gather(data, l4pos[moved] - _REC_L4, _REC_WIDTH)
    short = has_l4 & ((payload < need) | (caplens < l3off + hlen + need))
    is_tcp = has_l4 & (proto == slow.PROTO_TCP)
    tcp_off = r4["off"]
    tcp_hlen = (tcp_off >> 4).astype(np.int64) << 2
    bad_tcp = is_tcp & ~short & ((tcp_hlen < 20) | (tcp_hlen > payload))
    # A transport header cut by the snaplen (common with a small snaplen on Geneve traffic) or
    # with a bad data offset keeps its IP columns and gets its reason here, as the scalar does.
    broken = np.flatnonzero(short | bad_tcp)
    if broken.size:
        has_l4[broken] = False
        is_tcp[broken] = False
    ports = r4["sport"].astype(np.uint16)
    dport = r4["dport"].astype(np.uint16)
    is_udp = has_l4 & (proto == slow.PROTO_UDP)

    l4hdr = np.where(is_tcp, tcp_hlen, _L4_HLEN[proto])
    l4hdr *= has_l4
    np.add(~ip * np.uint8(Status.NON_IP), ip & ~has_l4, out=out.status)
    np.add(l4pos, l4hdr, out=out.l4_off)
    np.maximum(payload - l4hdr, 0, out=out.l4_len, casting="unsafe")
    if broken.size:
        reason = np.where(short[broken], Status.TRUNCATED_L4, Status.BAD_TCP_HEADER_LEN)
        out.status[broken] = reason
        out.l4_off[broken] = 0
        out.l4_len[broken] = 0
    np.multiply(ports, has_l4, out=out.sport)
    np.multiply(dport, has_l4, out=out.dport)
    icmp = np.flatnonzero(has_l4 & _IS_ICMP[proto])
    if icmp.size:
        out.sport[icmp] = ports[icmp] >> 8
        out.dport[icmp] = ports[icmp] & 0xFF
    np.multiply(((tcp_off.astype(np.uint16) & 1) << 8) | r4["flags"], is_tcp, out=out.tcp_flags)
    np.multiply(r4["seq"], is_tcp, out=out.tcp_seq, casting="unsafe")
    np.multiply(r4["ack"], is_tcp, out=out.tcp_ack, casting="unsafe")
    np.multiply(r4["win"], is_tcp, out=out.tcp_win, casting="unsafe")
    not_ip = np.flatnonzero(~ip)
    if not_ip.size:
        for name in _L3_COLUMNS:
            cleared: npt.NDArray[Any] = getattr(out, name)
            cleared[not_ip] = 0
    if ip_reason is not None:
        out.status[bad_ip] = ip_reason
    out.status[cut_l2] = Status.TRUNCATED_L2
    # Last: the inner frame overwrites every column the outer one wrote.
    if not tunnelled:
        tunnel = is_udp & ((dport == slow.VXLAN_PORT) | (dport == slow.GENEVE_PORT))
        tunnel &= out.frag == 0
        inner = np.flatnonzero(tunnel & ~needs_slow)
        needs_slow |= tunnel  # until the inner frame is decoded below
        # A second vectorized pass costs ~0.3 ms of numpy call overhead whatever its size; below
        # a few dozen tunnelled rows the scalar decoder (~7 us a row) is cheaper.
        if inner.size >= _MIN_TUNNEL_ROWS:
            done = _tunnels(
                data,
                inner,
                udp_at=l4pos[inner],
                udp_end=np.minimum(l4pos[inner] + payload[inner], offsets[inner] + wirelens[inner]),
                cap_end=offsets[inner] + caplens[inner],
                vxlan=dport[inner] == slow.VXLAN_PORT,
                out=out,
            )
            needs_slow[done] = False
    return np.asarray(needs_slow, dtype=np.bool_)


def _ip_reasons(
    version: npt.NDArray[np.integer[Any]],
    hlen4: npt.NDArray[np.int64],
    captured: npt.NDArray[np.int64],
    v6: npt.NDArray[np.bool_],
) -> npt.NDArray[np.uint8]:
    """Why each IP header failed, checked in the scalar decoder's order (first failure wins).

    ``captured`` is how many bytes of the frame follow the IP header's start; the total-length
    check is the only one left when all others pass.
    """
    reason = np.full(version.shape[0], Status.BAD_IP_TOTAL_LEN, np.uint8)
    # Applied last check first, so that the earliest failing check overwrites the later ones.
    reason[~v6 & (captured < hlen4)] = Status.TRUNCATED_L3
    reason[~v6 & (hlen4 < 20)] = Status.BAD_IP_HEADER_LEN
    reason[captured < np.where(v6, 40, 20)] = Status.TRUNCATED_L3
    reason[version != np.where(v6, 6, 4)] = Status.BAD_IP_VERSION
    reason[captured < 1] = Status.TRUNCATED_L3
    return reason


_TUNNEL = np.dtype([("b0", "u1"), ("b1", "u1"), ("ptype", ">u2"), ("vni", ">u4")])


def _tunnels(
    data: npt.NDArray[np.uint8],
    rows: npt.NDArray[np.intp],
    *,
    udp_at: npt.NDArray[np.int64],
    udp_end: npt.NDArray[np.int64],
    cap_end: npt.NDArray[np.int64],
    vxlan: npt.NDArray[np.bool_],
    out: DecodedBatch,
) -> npt.NDArray[np.intp]:
    """Decode the inner Ethernet frames of VXLAN/Geneve ``rows`` over them; return those done.

    The inner frame is decoded like a captured frame of its own that ends where the outer UDP
    payload (or the capture) ends. Rows whose tunnel header or inner frame needs the scalar
    decoder are left out of the result.
    """
    at = udp_at + 8
    header = gather(data, at, 8).view(_TUNNEL)
    b0 = header["b0"]
    readable = (at + 8 <= udp_end) & (at + 8 <= cap_end)
    inner_at = np.where(vxlan, at + 8, at + 8 + (b0 & 0x3F).astype(np.int64) * 4)
    ptype = header["ptype"]
    vxlan_ok = (b0 & 0x08) != 0  # the I flag: without it the VNI is not valid
    geneve_ok = ((b0 >> 6) == 0) & (inner_at <= np.minimum(udp_end, cap_end))
    known = (ptype == slow.ETH_TEB) | (ptype == slow.ETH_IPV4) | (ptype == slow.ETH_IPV6)
    # The scalar decoder's BAD_TUNNEL cases; the outer columns stay, as there.
    bad: npt.NDArray[np.intp] = rows[~readable | np.where(vxlan, ~vxlan_ok, ~(geneve_ok & known))]
    out.status[bad] = Status.BAD_TUNNEL
    # Geneve carrying raw IP (no inner Ethernet) is left to the scalar decoder.
    valid = readable & np.where(vxlan, vxlan_ok, geneve_ok & (ptype == slow.ETH_TEB))
    chosen = np.flatnonzero(valid)
    if chosen.size == 0:
        return bad
    start = inner_at[chosen]
    sub = _empty(chosen.size)
    sub_slow = _vectorized(
        data,
        start,
        cap_end[chosen] - start,
        udp_end[chosen] - start,
        linktype=slow.LINKTYPE_ETHERNET,
        out=sub,
        tunnelled=True,
    )
    sub.tun_type[:] = np.where(vxlan[chosen], TunnelType.VXLAN, TunnelType.GENEVE)
    sub.tun_vni[:] = header["vni"][chosen] >> 8
    target = rows[chosen]
    sub.outer_src_hi[:] = out.src_hi[target]
    sub.outer_src_lo[:] = out.src_lo[target]
    sub.outer_dst_hi[:] = out.dst_hi[target]
    sub.outer_dst_lo[:] = out.dst_lo[target]
    bit = np.where(vxlan[chosen], np.uint32(Encap.VXLAN), np.uint32(Encap.GENEVE))
    sub.encap[:] |= out.encap[target] | bit
    for field in dataclasses.fields(out):
        column: npt.NDArray[Any] = getattr(out, field.name)
        column[target] = getattr(sub, field.name)
    return np.asarray(np.concatenate((bad, target[~sub_slow])), dtype=np.intp)


def _scalar(
    data: npt.NDArray[np.uint8],
    rows: npt.NDArray[np.intp],
    *,
    offsets: npt.NDArray[np.int64],
    caplens: npt.NDArray[np.int64],
    wirelens: npt.NDArray[np.int64],
    linktype: int,
    out: DecodedBatch,
) -> None:
    """Re-decode ``rows`` with the scalar decoder and write them over the vectorized guesses."""
    view = data.data  # a memoryview: frames are sliced out of it without copying
    decoded = [
        slow.decode_frame(view[start : start + cap], start, wire, linktype)
        for start, cap, wire in zip(
            offsets[rows].tolist(), caplens[rows].tolist(), wirelens[rows].tolist(), strict=True
        )
    ]
    table = np.array(decoded, dtype=np.uint64).reshape(-1, slow.NCOLS)
    # The scalar row's column order is DecodedBatch's field order (see ``_decode_slow``).
    for position, field in enumerate(dataclasses.fields(out)):
        column: npt.NDArray[Any] = getattr(out, field.name)
        column[rows] = table[:, position].astype(column.dtype)
