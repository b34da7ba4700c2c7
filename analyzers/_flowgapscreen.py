"""Which flows of a pass need Zeek's content-gap tracking, and their tracker state per slot.

The screen is vectorised over a pass's TCP rows: a segment that starts past its direction's highest
end leaves a hole; an ACK that passes the peer's highest end just before it (in arrival order)
acknowledges data never seen. Only the flows it picks, and those with holes still open from
earlier passes, send their segments through ``GapTrack`` (``_tcpgaps``) in the scalar path.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from analyzers._decoded import DecodedBatch
from analyzers._flowcolumns import FlowColumns
from analyzers._tcpgaps import GapTrack
from analyzers._tcpstate import ACK

I64 = npt.NDArray[np.int64]
_HALF = 0x80000000  # half the 32-bit sequence space: what "before" and "after" compare within


class GapRows:
    """The flows of a pass that need gap tracking: their rows, and each direction's edge."""

    __slots__ = ("edge0", "rows", "slots")

    def __init__(self, rows: npt.NDArray[np.bool_], slots: set[int], edge0: dict[int, int]) -> None:
        self.rows = rows
        self.slots = slots
        self.edge0 = edge0  # slot * 2 + direction -> edge before the pass (-1: none)


def gap_screen(  # noqa: PLR0917 - hot-path column helper
    c: FlowColumns,
    dec: DecodedBatch,
    rws: I64,
    slot: I64,
    d: npt.NDArray[np.intp],
    gid: I64,
    flags: I64,
    g_i: I64,
    ok: npt.NDArray[np.bool_],
    base: I64,
    run: I64,
    rel: I64,
    prev: I64,
    seg: I64,
) -> GapRows | None:
    """The flows whose segments may leave or acknowledge a hole (None: none, the common case).

    A hole is a segment starting beyond the highest end of its direction before it; an ACK
    is past the data when it exceeds the highest end the peer had sent *before it* in
    arrival order (none in the pass: the peer's end before it, if any), so the screen does
    not depend on how packets fall into batches. One sort merges each flow's two directions
    into arrival order; the peer's last row before an ACK is then the row just before the
    ACK's run of same-direction rows, so no ACK needs a search of its own.
    """
    cand = (seg > 0) & (rel - seg > prev)
    pos, flow_m, d_m, rws_m = by_arrival(slot, d, rws, len(dec))
    m = pos.shape[0]
    idx = np.arange(m)
    new_flow = np.empty(m, np.bool_)
    new_flow[0] = True
    np.not_equal(flow_m[1:], flow_m[:-1], out=new_flow[1:])
    new_run = new_flow.copy()  # a run of one direction's rows starts
    new_run[1:] |= d_m[1:] != d_m[:-1]
    run_start = np.maximum.accumulate(idx * new_run)
    # a run after the flow's first follows the peer's run: its last row holds the peer's end
    seen = run_start > np.maximum.accumulate(idx * new_flow)
    end_m = (base[gid] + np.maximum(run, 0))[pos]  # each row's direction's end after it
    hi = end_m[run_start - 1]
    past = seen & (((dec.tcp_ack[rws_m] - hi + _HALF) & 0xFFFFFFFF) - _HALF > 0)
    hit = pos[np.flatnonzero(past)]
    cand[hit[(flags[hit] & ACK) != 0]] = True
    # no peer row before the ACK in this pass: the peer's end before the pass decides
    q = pos[np.flatnonzero(~seen)]
    q = q[(flags[q] & ACK) != 0]
    g_slot = g_i >> 1
    if q.size:
        ngr = g_i.shape[0]
        g_peer = np.full(ngr, -1, np.int64)
        if ngr > 1:
            up = np.flatnonzero(g_slot[1:] == g_slot[:-1])
            g_peer[up] = up + 1
            g_peer[up + 1] = up
        gq = gid[q]
        pq = g_peer[gq]
        in_pass = pq >= 0
        pqc = np.maximum(pq, 0)
        peer_flat = g_i[gq] ^ 1
        pre_ok = np.where(in_pass, ok[pqc], c.seq_ok_f[peer_flat])
        pre_hi = np.where(in_pass, base[pqc], c.seq_max_f[peer_flat])
        ahead = ((dec.tcp_ack[rws[q]] - pre_hi + _HALF) & 0xFFFFFFFF) - _HALF > 0
        cand[q[pre_ok & ahead]] = True
    stored = c.gaps
    if not cand.any() and not stored:
        return None
    slot_r = g_slot[gid]
    cs = np.unique(slot_r[cand])
    if stored:
        cs = np.union1d(cs, np.intersect1d(g_slot, np.fromiter(stored, np.int64)))
        if not cs.size:
            return None
    rows = np.isin(slot_r, cs)
    gsel = np.flatnonzero(np.isin(g_slot, cs))
    edge0 = dict(zip(g_i[gsel].tolist(), np.where(ok[gsel], base[gsel], -1).tolist(), strict=True))
    return GapRows(rows, set(cs.tolist()), edge0)


def by_arrival(
    slot: I64, d: npt.NDArray[np.intp], rws: I64, n_rows: int
) -> tuple[I64, I64, I64, I64]:
    """Positions of the rows per flow in arrival order, with their flow, direction and row.

    The rows come grouped by flow, each direction in arrival order: a stable sort (a merge of
    those runs) on the flow's rank, then the row number, gives each flow in arrival order.
    The fields are packed into one integer per row when they fit, so the sort yields them
    all without gathers; *n_rows* bounds the row numbers.
    """
    m = rws.shape[0]
    flow = np.empty(m, np.int64)
    flow[0] = 0
    np.not_equal(slot[1:], slot[:-1], out=flow[1:])
    np.cumsum(flow, out=flow)
    pb = max(m - 1, 1).bit_length()
    rb = max(n_rows - 1, 1).bit_length()
    if int(flow[-1]).bit_length() + rb + 1 + pb <= 63:  # int64's value bits
        k = (flow << (rb + 1 + pb)) | (rws << (1 + pb)) | (d << pb) | np.arange(m)
        k.sort(kind="stable")
        return (
            k & ((1 << pb) - 1),
            k >> (rb + 1 + pb),
            (k >> pb) & 1,
            (k >> (1 + pb)) & ((1 << rb) - 1),
        )
    o = np.argsort((flow << 32) | rws, kind="stable")
    return o, flow[o], d[o].astype(np.int64), rws[o]


def gap_track(c: FlowColumns, sl: int, gaps: GapRows) -> GapTrack:
    """Slot *sl*'s gap state: kept from an earlier pass, else each direction's edge before it."""
    missed = c.missed[sl].tolist()
    count = c.gap_count[sl].tolist()
    tr = c.gaps.get(sl)
    if tr is not None:
        tr.missed, tr.count = missed, count  # a record in between zeroed the columns
        return tr
    edge: list[int | None] = []
    for i in (sl * 2, sl * 2 + 1):
        e0 = gaps.edge0.get(i)
        if e0 is None:  # no segment of this direction in the pass: its columns hold
            e0 = int(c.seq_max_f[i]) if c.seq_ok_f[i] else -1
        edge.append(None if e0 < 0 else e0)
    return GapTrack(edge, c.seq_start[sl].tolist(), missed, count)


def store_gaps(c: FlowColumns, us_list: list[int], tracks: list[GapTrack | None]) -> None:
    for sl, tr in zip(us_list, tracks, strict=True):
        if tr is None:
            continue
        c.missed[sl] = tr.missed
        c.gap_count[sl] = tr.count
        if tr.pending(c.seq_max[sl].tolist()):
            c.gaps[sl] = tr
        else:
            c.gaps.pop(sl, None)
