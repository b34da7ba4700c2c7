"""Which flows of a pass need Zeek's content-gap tracking, and their tracker state per slot.

The screen is a compiled test of each of a pass's TCP segments (``_gapkernel``): a segment that
starts past its direction's highest end leaves a hole; an ACK that passes the peer's highest end
just before it (in arrival order) acknowledges data never seen. Only the flows it picks, and those
with holes still open from earlier passes, send their segments through ``GapTrack``
(``_tcpgaps``) in the scalar path.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from analyzers._decoded import DecodedBatch
from analyzers._flowcolumns import FlowColumns
from analyzers._gapkernel import gap_candidates
from analyzers._tcpgaps import GapTrack

I64 = npt.NDArray[np.int64]


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
    gid: I64,
    flags: I64,
    g_i: I64,
    ok: npt.NDArray[np.bool_],
    base: I64,
    seq_i: I64,
) -> GapRows | None:
    """The flows whose segments may leave or acknowledge a hole (None: none, the common case).

    The pass's TCP rows *rws* come grouped by (flow, direction) (*gid*, *g_i*), with each
    group's sequence base before the pass (*ok*, *base*) and ``_seqkernel``'s per-row figures
    (*seq_i*). The test per segment (``_gapkernel``) follows each flow in arrival order, so
    the screen does not depend on how packets fall into batches; flows with holes still open
    from earlier passes are tracked too.
    """
    cand = np.empty(rws.shape[0], np.bool_)
    any_cand = gap_candidates(
        gid, g_i, rws, flags, dec.tcp_ack[rws], seq_i, ok, base, c.seq_ok_f, c.seq_max_f, cand
    )
    stored = c.gaps
    if not any_cand and not stored:
        return None
    g_slot = g_i >> 1
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
