"""The flow table's per-batch TCP accounting: retransmissions in columns, events to the scalar path.

Retransmissions (Zeek's ``update_last_seq``) and the choice of the segments that can change
Zeek's state or history are one compiled loop (``_seqkernel``); those segments then go through the
compiled state machine (``_tcpkernel``), per flow in arrival order, or, for the flows the gap
screen picks, through ``TcpScratch`` and their ``GapTrack``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from analyzers._decoded import DecodedBatch
from analyzers._flowcolumns import HIST_WIDTH, FlowColumns
from analyzers._flowgapscreen import GapRows, gap_screen, gap_track, store_gaps
from analyzers._seqkernel import seq_pass
from analyzers._tcpstate import TcpScratch

I64 = npt.NDArray[np.int64]


def tcp_rows(  # noqa: PLR0917 - hot-path column helper
    c: FlowColumns,
    dec: DecodedBatch,
    rsorted: I64,
    tcp_mask: npt.NDArray[np.bool_],
    slot_sorted: I64,
    dir_sorted: npt.NDArray[np.intp],
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
    gi = slot * 2 + d
    out_i = np.empty((m, 5), np.int64)
    out_b = np.empty((m, 2), np.bool_)
    g_ok = np.empty(m, np.bool_)
    g_base = np.empty(m, np.int64)
    ng = seq_pass(
        gi,
        flags,
        seq,
        plen,
        win,
        c.tcp_state_f,
        c.hist_seen_f,
        c.seq_ok_f,
        c.seq_max_f,
        c.seq_start_f,
        c.retx_f,
        out_i,
        out_b,
        g_ok,
        g_base,
    )
    gid, rel, _, _, seg = out_i.T
    t_letter, ev = out_b.T
    # ---- content gaps: flows with a hole, or an ACK past the peer's data, go to _tcpgaps
    gstart = np.flatnonzero(np.diff(gid, prepend=-1))
    ok, base = g_ok[:ng], g_base[:ng]
    gaps = gap_screen(c, dec, rws, gid, flags, gi[gstart], ok, base, out_i)
    if gaps is not None:
        ev = ev | gaps.rows
    evp = np.flatnonzero(ev)
    if evp.size:
        gap_args = None if gaps is None else (gaps, dec.tcp_ack[rws], base[gid] + rel, seg)
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
