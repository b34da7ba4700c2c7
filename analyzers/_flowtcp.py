"""The flow table's per-batch TCP accounting: retransmissions in columns, events to the scalar path.

Retransmissions are Zeek's ``update_last_seq`` as a grouped running maximum of sequence ends per
(flow, direction). Only the segments that can change Zeek's state or history — control flags,
a direction's first segment, its first data and first pure ACK, zero windows, and the
retransmissions that cross the log-scale thresholds — go through ``TcpScratch``, per flow in
arrival order.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from analyzers._decoded import DecodedBatch
from analyzers._flowcolumns import HIST_WIDTH, FlowColumns
from analyzers._flowgapscreen import GapRows, gap_screen, gap_track, store_gaps
from analyzers._tcpstate import (
    ACK,
    FIN,
    H_ACK,
    H_DATA,
    INACTIVE,
    RESET,
    RST,
    SYN,
    TcpScratch,
)

I64 = npt.NDArray[np.int64]
_POW10 = np.array([10**i for i in range(10)], dtype=np.int64)


def tcp_rows(  # noqa: PLR0917 - hot-path column helper
    c: FlowColumns,
    dec: DecodedBatch,
    rsorted: I64,
    tcp_mask: npt.NDArray[np.bool_],
    slot_sorted: I64,
    dir_sorted: npt.NDArray[np.intp],
    grp_break: npt.NDArray[np.bool_],
    ts_sorted: I64,
    l4len_sorted: I64,
) -> None:
    """Account the TCP rows *tcp_mask* selects among a pass's rows sorted by (flow, direction)."""
    pos = np.flatnonzero(tcp_mask)
    rws = rsorted[pos]
    slot = slot_sorted[pos]
    d = dir_sorted[pos]
    flags = dec.tcp_flags[rws].astype(np.int64)
    seq = dec.tcp_seq[rws].astype(np.int64)
    win = dec.tcp_win[rws]
    plen = l4len_sorted[pos]
    ts = ts_sorted[pos]
    m = pos.shape[0]
    # groups (flow, direction) among TCP rows: a break in the full order, or a skipped row
    gb = grp_break[pos].copy()
    gb[0] = True
    gstart = np.flatnonzero(gb)
    gid = np.cumsum(gb) - 1
    g_slot = slot[gstart]
    g_dir = d[gstart]
    g_i = g_slot * 2 + g_dir
    is_syn = (flags & SYN) != 0
    is_fin = (flags & FIN) != 0
    is_rst = (flags & RST) != 0
    state0 = c.tcp_state_f[g_i]
    # ---- retransmissions: Zeek's update_last_seq as a grouped running maximum
    seg = np.where(is_rst, 0, plen) + is_syn + is_fin
    end32 = (seq + seg) & 0xFFFFFFFF
    ok = c.seq_ok_f[g_i]
    base = np.where(ok, c.seq_max_f[g_i], seq[gstart])
    new_groups = ~ok
    if new_groups.any():
        c.seq_start_f[g_i[new_groups]] = seq[gstart][new_groups]
    # 64-bit sequence space, as Zeek's wrap counting: each end is unwrapped against the one
    # before it (the group's first against the stored maximum), so a transfer may pass any
    # number of 4 GiB wraps inside one batch as long as consecutive segments are < 2 GiB apart
    prev_end = np.empty(m, np.int64)
    prev_end[1:] = end32[:-1]
    prev_end[gstart] = base & 0xFFFFFFFF
    step = ((end32 - prev_end + 0x80000000) & 0xFFFFFFFF) - 0x80000000
    walked = np.cumsum(step)
    rel = walked - (walked[gstart] - step[gstart])[gid]
    idx = np.arange(m)
    rst_at = np.maximum.accumulate(np.where(is_rst, idx, -1))
    excluded = (state0[gid] == RESET) | (rst_at >= gstart[gid])
    big = np.int64(1) << 34
    vals = np.where(excluded, -(np.int64(1) << 33), rel) + gid * big
    run = np.maximum.accumulate(vals) - gid * big
    prev = np.empty(m, np.int64)
    prev[0] = 0
    prev[1:] = run[:-1]
    prev[gstart] = 0
    prev = np.maximum(prev, 0)
    retx = (plen > 0) & ~excluded & (rel <= prev)
    gmax = np.maximum(np.maximum.reduceat(np.where(excluded, 0, rel), gstart), 0)
    c.seq_max_f[g_i] = base + gmax
    c.seq_ok_f[g_i] = True
    t_letter = np.zeros(m, np.bool_)
    if retx.any():
        rcount = np.add.reduceat(retx.astype(np.int64), gstart)
        before = c.retx_f[g_i].astype(np.int64)
        c.retx_f[g_i] = before + rcount
        running = np.cumsum(retx) - np.append(0, np.cumsum(retx))[gstart][gid]
        t_letter = retx & np.isin(running + before[gid], _POW10)
    # ---- content gaps: flows with a hole, or an ACK past the peer's data, go to _tcpgaps
    seg_eff = np.where(excluded, 0, seg)
    gaps = gap_screen(c, dec, rws, slot, d, gid, flags, g_i, ok, base, run, rel, prev, seg_eff)
    # ---- which segments need the scalar state machine
    ctrl = (flags & (SYN | FIN | RST)) != 0
    nosfr = ~ctrl
    ev = ctrl | ((win == 0) & ~is_rst) | t_letter
    if gaps is not None:
        ev |= gaps.rows
    ev[gstart[state0 == INACTIVE]] = True
    seen = c.hist_seen_f[g_i]
    d_seen = (seen & H_DATA) != 0
    a_seen = (seen & H_ACK) != 0
    for cand_mask, seen_g in (
        (nosfr & (plen > 0), d_seen),
        (nosfr & (plen == 0) & ((flags & ACK) != 0), a_seen),
    ):
        cand = np.flatnonzero(cand_mask & ~seen_g[gid])
        if cand.size:
            # candidates are in group order: the first of each group is where gid changes
            g = gid[cand]
            first = np.empty(cand.size, np.bool_)
            first[0] = True
            np.not_equal(g[1:], g[:-1], out=first[1:])
            ev[cand[first]] = True
    evp = np.flatnonzero(ev)
    if evp.size:
        gap_args = None if gaps is None else (gaps, dec.tcp_ack[rws], base[gid] + rel, seg_eff)
        _tcp_events(c, evp, rws, slot, d, flags, seq, plen, win, ts, t_letter, gap_args)


def _tcp_events(  # noqa: PLR0917 - hot-path column helper
    c: FlowColumns,
    evp: I64,
    rws: I64,
    slot: I64,
    d: npt.NDArray[np.intp],
    flags: I64,
    seq: I64,
    plen: I64,
    win: npt.NDArray[np.uint16],
    ts: I64,
    t_letter: npt.NDArray[np.bool_],
    gap_args: tuple[GapRows, npt.NDArray[np.uint32], I64, I64] | None,
) -> None:
    """Apply the segments *evp* to their flows' TCP columns, per flow in arrival order.

    The compiled kernel (``_tcpkernel``) takes every flow but those *gap_args* screened (each
    row's ACK, unwrapped sequence end and sequence length beside them): their segments go
    through ``TcpScratch`` and then their ``GapTrack``, in the state each packet leaves.
    """
    evp = evp[np.argsort((slot[evp] << 32) | rws[evp])]  # per flow, in arrival order
    if gap_args is not None:
        tracked = np.isin(slot[evp], np.fromiter(gap_args[0].slots, np.int64))
        if tracked.any():
            _scalar_events(c, evp[tracked], slot, d, flags, seq, plen, win, ts, t_letter, gap_args)
            evp = evp[~tracked]
    if evp.size:
        _compiled_events(c, evp, slot, d, flags, seq, plen, win, ts, t_letter)


def _compiled_events(  # noqa: PLR0917 - hot-path column helper
    c: FlowColumns,
    evp: I64,
    slot: I64,
    d: npt.NDArray[np.intp],
    flags: I64,
    seq: I64,
    plen: I64,
    win: npt.NDArray[np.uint16],
    ts: I64,
    t_letter: npt.NDArray[np.bool_],
) -> None:
    from analyzers._tcpkernel import tcp_events  # noqa: PLC0415 - numba loads with the first TCP

    ev_slot = slot[evp]
    spill = np.empty((3 * evp.shape[0], 2), np.int64)  # at most 3 letters per segment
    n_spill = tcp_events(
        ev_slot,
        d[evp].astype(np.int64),
        flags[evp],
        seq[evp],
        plen[evp],
        win[evp].astype(np.int64),
        ts[evp],
        t_letter[evp],
        c.tcp_state,
        c.tcp_prev_state,
        c.hist_seen,
        c.syn_mark,
        c.fin_mark,
        c.rst_mark,
        c.zero_win,
        c.rst_count,
        c.syn_ts,
        c.synack_ts,
        c.ack_ts,
        c.did_close,
        c.close_ts,
        c.hist_bytes,
        spill,
    )
    longs = c.hist_long
    for sl, letter in spill[:n_spill].tolist():
        text = longs.get(sl) or c.hist[sl].decode("ascii")
        longs[sl] = text + chr(letter)


def _scalar_events(  # noqa: PLR0917 - hot-path column helper
    c: FlowColumns,
    evp: I64,
    slot: I64,
    d: npt.NDArray[np.intp],
    flags: I64,
    seq: I64,
    plen: I64,
    win: npt.NDArray[np.uint16],
    ts: I64,
    t_letter: npt.NDArray[np.bool_],
    gap_args: tuple[GapRows, npt.NDArray[np.uint32], I64, I64],
) -> None:
    """The gap-screened flows: ``TcpScratch`` per segment, then its ``GapTrack``."""
    ev_slot = slot[evp]
    brk = np.empty(ev_slot.shape[0], np.bool_)
    brk[0] = True
    np.not_equal(ev_slot[1:], ev_slot[:-1], out=brk[1:])
    us = ev_slot[brk]
    us_list = us.tolist()
    longs = c.hist_long
    objs = [
        TcpScratch(
            (longs.get(sl) if longs else None) or h.decode("ascii"),
            state,
            prev_state,
            seen,
            syn_mark,
            fin_mark,
            rst_mark,
            zero_win,
            rst_count,
            syn_ts,
            synack_ts,
            ack_ts,
            did_close,
            close_ts,
        )
        for (
            sl,
            h,
            state,
            prev_state,
            seen,
            syn_mark,
            fin_mark,
            rst_mark,
            zero_win,
            rst_count,
            syn_ts,
            synack_ts,
            ack_ts,
            did_close,
            close_ts,
        ) in zip(
            us_list,
            c.hist[us].tolist(),
            c.tcp_state[us].tolist(),
            c.tcp_prev_state[us].tolist(),
            c.hist_seen[us].tolist(),
            c.syn_mark[us].tolist(),
            c.fin_mark[us].tolist(),
            c.rst_mark[us].tolist(),
            c.zero_win[us].tolist(),
            c.rst_count[us].tolist(),
            c.syn_ts[us].tolist(),
            c.synack_ts[us].tolist(),
            c.ack_ts[us].tolist(),
            c.did_close[us].tolist(),
            c.close_ts[us].tolist(),
            strict=True,
        )
    ]
    gaps, ack, abs_end, seg = gap_args
    tracks = [gap_track(c, sl, gaps) if sl in gaps.slots else None for sl in us_list]
    for k, e, fl, sq, pl, wn, t, tl, ak, en, sg in zip(
        (np.cumsum(brk) - 1).tolist(),
        d[evp].tolist(),
        flags[evp].tolist(),
        seq[evp].tolist(),
        plen[evp].tolist(),
        win[evp].tolist(),
        ts[evp].tolist(),
        t_letter[evp].tolist(),
        ack[evp].tolist(),
        abs_end[evp].tolist(),
        seg[evp].tolist(),
        strict=True,
    ):
        o = objs[k]
        o.event(e, fl, sq, pl, wn, t, tl)
        tr = tracks[k]
        if tr is not None:
            tr.packet(o, e, fl, ak, en, sg)
    store_gaps(c, us_list, tracks)
    c.tcp_state[us] = [o.state for o in objs]
    c.tcp_prev_state[us] = [o.prev_state for o in objs]
    c.hist_seen[us] = [o.seen for o in objs]
    c.syn_mark[us] = [o.syn_mark for o in objs]
    c.fin_mark[us] = [o.fin_mark for o in objs]
    c.rst_mark[us] = [o.rst_mark for o in objs]
    c.zero_win[us] = [o.zero_win for o in objs]
    c.rst_count[us] = [o.rst_count for o in objs]
    c.syn_ts[us] = [o.syn_ts for o in objs]
    c.synack_ts[us] = [o.synack_ts for o in objs]
    c.ack_ts[us] = [o.ack_ts for o in objs]
    c.did_close[us] = [o.did_close for o in objs]
    c.close_ts[us] = [o.close_ts for o in objs]
    hist = []
    for sl, o in zip(us_list, objs, strict=True):
        if len(o.hist) > HIST_WIDTH:
            longs[sl] = o.hist
        hist.append(o.hist[:HIST_WIDTH].encode("ascii"))
    c.hist[us] = hist
