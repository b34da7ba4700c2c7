"""Decode a whole FrameBatch into header columns: one compiled loop over its frames.

Each frame goes through the stages once, in order: the link layer (``_declink``) and the
ethertype chain (``_decchain``), IP and transport (``_decip``), and, where the packet is a tunnel
the decoder follows, the tunnel header (``_dectun``, ``_decgre``), after which the inner frame goes
round the same stages again, up to ``MAX_TUNNELS`` deep. The stages fill one record of named
fields (``_decrow``) that the loop stores into the typed columns. Every length is checked against
the frame's captured end before a read (numba checks no bounds): damage gets a reason code, never
an exception or a read past the frame. The common frame (untagged Ethernet, IPv4 without
options, TCP or UDP that is no tunnel) is first offered to ``_decplain``, which reads it in one
function straight into the columns and hands every other frame to the stages.

Compiled by numba on first use and cached on disk (``capture._jit``). numba's cache checks only
this file for changes, not the stage modules it calls: after editing a stage, touch this file.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from analyzers._deccolumns import ENCAP, WIDE, finish, fresh_zeros, new_columns
from analyzers._decip import ipv4, ipv6, transport
from analyzers._declink import link
from analyzers._decoded import I64, U8, U16, U32, U64, DecodedBatch, Status
from analyzers._decplain import plain
from analyzers._decrow import (
    ETH_IPV4,
    L3,
    L4,
    ROW,
    TUNNEL_TOO_DEEP,
    Row,
    clear,
)
from analyzers._decsparse import clear_sparse, store_sparse, zero_sparse
from analyzers._dectun import enter, tunnel
from analyzers._dedupkernel import fingerprint, fingerprint_of
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
    FrameBatch,
    PcapLayout,
    njit,
    prefetch,
    read_record,
    ring_ahead,
    ring_frame,
    stream_ahead,
    unowned,
)

__all__ = ["SUPPORTED_LINKTYPES", "decode", "decode_rows"]

#: The capture link types the decoder reads; frames of any other get ``UNSUPPORTED_LINKTYPE``.
SUPPORTED_LINKTYPES = frozenset(
    (
        LINKTYPE_NULL,
        LINKTYPE_ETHERNET,
        LINKTYPE_PPP,
        LINKTYPE_PPP_HDLC,
        LINKTYPE_RAW,
        LINKTYPE_IEEE802_11,
        LINKTYPE_LOOP,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_IEEE802_11_RADIOTAP,
        LINKTYPE_IPV4,
        LINKTYPE_IPV6,
        LINKTYPE_LINUX_SLL2,
    )
)
_AHEAD = 4  # frames between the one decoded and the one whose header is prefetched
#: Tunnels followed inside one another (Zeek's ``Tunnel::max_depth``); one more is malformed.
MAX_TUNNELS = 2


@njit
def _frame(  # noqa: PLR0917 - a compiled stage takes its frame positionally
    data: U8, start: int, cap: int, wire: int, linktype: int, row: Row
) -> None:
    """Decode the frame at ``start`` (captured to ``cap``, on the wire to ``wire``) into ``row``."""
    pos, end = start, wire
    for depth in range(MAX_TUNNELS + 1):
        etype, pos = link(data, pos, cap, end, linktype, row)
        if etype == 0:
            return
        if etype == ETH_IPV4:
            proto, pos, payload = ipv4(data, pos, cap, end, row)
        else:
            proto, pos, payload = ipv6(data, pos, cap, end, row)
        if proto < 0:
            return
        transport(data, pos, payload, proto, cap, row)
        linktype, pos, end, kind, key, direction, bits = tunnel(data, cap, row)
        if linktype == 0:
            return
        if depth == MAX_TUNNELS:
            row.status = TUNNEL_TOO_DEEP
            return
        enter(row, kind, key, direction, bits)


@njit
def decode_rows(  # noqa: PLR0917 - a compiled kernel takes its columns positionally
    data: U8,
    offsets: I64,
    caplens: I64,
    wirelens: I64,
    ts_ns: I64,
    pos: int,
    layout: PcapLayout,
    ring: bool,
    tags: I64,
    scratch: npt.NDArray[np.void],
    fast: bool,
    status: U8,
    ipver: U8,
    src_hi: U64,
    src_lo: U64,
    dst_hi: U64,
    dst_lo: U64,
    proto: U8,
    sport: U16,
    dport: U16,
    vlan: U16,
    tun_type: U8,
    tun_vni: U32,
    tun_dir: U8,
    outer_src_hi: U64,
    outer_src_lo: U64,
    outer_dst_hi: U64,
    outer_dst_lo: U64,
    encap: U32,
    carrier_ports: U32,
    carrier_ip_len: U32,
    carrier_l4_len: U32,
    ip_len: U32,
    l4_off: I64,
    l4_len: U32,
    tcp_flags: U16,
    tcp_seq: U32,
    tcp_ack: U32,
    tcp_win: U16,
    ip_id: U32,
    frag: U8,
    ttl: U8,
    fp: U64,
) -> tuple[int, int, int, int, int]:
    """Decode frames into the columns: ``(frames, position after them, walk status, sparse
    groups written, ring frames with a VLAN tag taken out)``; the columns of a sparse group not
    written (``_deccolumns``) are left as they were.

    Without a walk (*pos* < 0) the frames are the ones *offsets*, *caplens* and *wirelens*
    give, of ``layout.linktype``. With one, the pcap records from *pos* (laid out as *layout*
    says), or with *ring* the TPACKET_V3 block's frame headers from *pos* (*tags* getting each
    frame's VLAN word), are read into those columns and *ts_ns* first, each just before its
    frame is decoded: one pass over the memory instead of a walk and then a decode that finds
    the frames evicted (``DecodingWalker``). A ring frame whose tag the kernel took out is not
    decoded, nor any after it: the caller decodes the frames with their tags put back. With
    *fast*, each Ethernet frame is first offered to ``_decplain`` (the common frame's path).
    """
    # the stages each take the buffer: without its reference count, a call costs no atomics
    data = unowned(data)
    wide = (unowned(src_hi), unowned(dst_hi))
    encaps = (
        unowned(encap), unowned(vlan), unowned(tun_type), unowned(tun_vni), unowned(tun_dir),
        unowned(outer_src_hi), unowned(outer_src_lo), unowned(outer_dst_hi),
        unowned(outer_dst_lo), unowned(carrier_ports), unowned(carrier_ip_len),
        unowned(carrier_l4_len),
    )  # fmt: skip
    written = 0  # the sparse groups written on every row so far (``_deccolumns``)
    tagged = 0
    size = data.shape[0]
    row = scratch[0]
    linktype = layout.linktype
    ahead = pos
    n = offsets.shape[0]
    for i in range(n):
        u = np.uint64(i)  # the columns' index: numba wraps a signed one round at every access
        if ring:
            inside, offsets[u], caplens[u], wirelens[u], ts_ns[u], tags[u], nxt = ring_frame(
                data, pos
            )
            if not inside:
                return i, pos, 0, written, tagged
            ahead = ring_ahead(data, ahead, pos, nxt)
            pos = nxt
            if tags[u] != 0:
                tagged += 1
                linktype = -1  # no link type: walked on, no longer decoded
        elif pos >= 0:
            if pos >= size:
                return i, pos, 0, written, tagged
            ahead = stream_ahead(data, ahead, pos)
            status_i, cap_i, wire_i, ts_i = read_record(data, pos, layout)
            if status_i != 0:
                return i, pos, status_i, written, tagged
            offsets[u], caplens[u], wirelens[u], ts_ns[u] = pos + layout.hdrlen, cap_i, wire_i, ts_i
            pos += layout.hdrlen + cap_i
        elif i + _AHEAD < n and size > 0:
            prefetch(data, min(max(offsets[i + _AHEAD] + 12, 0), size - 1))
        # A reader bug must not turn into reads past the buffer: clamp what the frame can claim.
        start = min(max(offsets[u], 0), size)
        cap = start + min(max(caplens[u], 0), size - start)
        wire = max(start + wirelens[u], cap)
        if fast and linktype == LINKTYPE_ETHERNET:  # the common frame, without the stages
            taken, a, b, p, sp, dp, total, off, length, flags, seq, ack, win, ident, hops = plain(
                data, start, cap, wire
            )
            if taken:
                status[u], ipver[u], proto[u], frag[u], ttl[u] = L4, 4, p, 0, hops
                src_lo[u], dst_lo[u], sport[u], dport[u] = a, b, sp, dp
                ip_len[u], ip_id[u], l4_off[u], l4_len[u] = total, ident, off, length
                tcp_flags[u], tcp_seq[u], tcp_ack[u], tcp_win[u] = flags, seq, ack, win
                fp[u] = fingerprint_of(
                    data, cap, (4, p, 0, total, ident), (True, sp, dp, off, length),
                    (flags, win, seq, ack),
                )  # fmt: skip
                if written:
                    clear_sparse(wide, encaps, i, written)
                continue
        clear(row)
        _frame(data, start, cap, wire, linktype, row)
        status[u] = row.status
        ipver[u] = row.ipver
        src_lo[u] = row.src_lo
        dst_lo[u] = row.dst_lo
        proto[u] = row.proto
        sport[u] = row.sport
        dport[u] = row.dport
        # a sparse group is written from the first row that has it on (``_deccolumns``)
        has = (WIDE if row.src_hi | row.dst_hi else 0) | (ENCAP if row.encap else 0)
        if has & ~written:
            zero_sparse(wide, encaps, i, has & ~written)
            written |= has
        if written:
            store_sparse(wide, encaps, i, written, row)
        ip_len[u] = row.ip_len
        l4_off[u] = row.l4_off
        l4_len[u] = row.l4_len
        tcp_flags[u] = row.tcp_flags
        tcp_seq[u] = row.tcp_seq
        tcp_ack[u] = row.tcp_ack
        tcp_win[u] = row.tcp_win
        ip_id[u] = row.ip_id
        frag[u] = row.frag
        ttl[u] = row.ttl
        # dedup's key while the frame is in cache; a uint64 0, as numba types a uint64/int64
        # choice as a float, which would round the fingerprint
        fp[u] = fingerprint(data, cap, row) if row.status <= L3 else np.uint64(0)
    return n, pos, 0, written, tagged


def decode(batch: FrameBatch, *, fast: bool = True) -> DecodedBatch:
    """Header columns of every frame of ``batch``; never raises for any frame content.

    ``fast=False`` takes every frame through the stages, the common ones too (``_decplain``):
    the reference its test compares with."""
    n = len(batch)
    if n == 0 or batch.linktype not in SUPPORTED_LINKTYPES:
        out = finish(new_columns(n, zeroed=True), WIDE | ENCAP, fresh_zeros, n)
        out.status[:] = Status.UNSUPPORTED_LINKTYPE
        return out
    columns = new_columns(n, zeroed=False)  # the kernel writes every column it reports
    _, _, _, written, _ = decode_rows(
        np.ascontiguousarray(batch.data, dtype=np.uint8),
        batch.offsets.astype(np.int64, copy=False),
        batch.caplens.astype(np.int64, copy=False),
        batch.wirelens.astype(np.int64, copy=False),
        _NO_TIMES,
        -1,
        PcapLayout(0, False, 0, 0, batch.linktype),
        False,
        _NO_TIMES,
        np.zeros(1, ROW),
        fast,
        *columns,
    )
    return finish(columns, written, fresh_zeros, n)


_NO_TIMES = np.zeros(0, np.int64)  # a decode without a walk writes no times
