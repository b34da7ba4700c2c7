"""The gap screen's per-segment test, compiled: which TCP segments may leave or acknowledge a hole.

A segment leaves a hole when it starts past the highest end of its direction before it; an ACK
acknowledges data never seen when it passes the highest end the peer had sent before it in
arrival order (no peer segment in the pass yet: the peer's end before the pass). Each flow's two
direction groups are each in arrival order already, so one merge of the two by row number walks
the flow in arrival order, no sort.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from analyzers._seqkernel import seq_delta
from capture import njit

__all__ = ["gap_candidates"]

I64 = npt.NDArray[np.int64]
U16 = npt.NDArray[np.uint16]
U32 = npt.NDArray[np.uint32]
B = npt.NDArray[np.bool_]

_ACK = 0x10


@njit
def gap_candidates(  # noqa: PLR0917 - a compiled kernel takes its columns positionally
    gid: I64,
    g_i: I64,
    rws: I64,
    flags: I64,
    ack: U32,
    seq_i: I64,
    g_ok: B,
    g_base: I64,
    seq_ok_f: B,
    seq_max_f: I64,
    cand: B,
) -> bool:
    """Mark *cand* for the rows that may leave or acknowledge a hole; whether any does.

    The rows are grouped by (flow, direction) (*gid*; *g_i* each group's flat index, a flow's
    two groups adjacent), each group in arrival order (*rws*, the batch rows). *seq_i* holds
    ``_seqkernel``'s per-row figures (relative end, running maximum, maximum before, length);
    *g_ok*/*g_base* each group's base before the pass; *seq_ok_f*/*seq_max_f* the columns, for
    a peer with no segment in the pass.
    """
    m = rws.shape[0]
    found = False
    for k in range(m):
        rel, before, seg = seq_i[k, 1], seq_i[k, 3], seq_i[k, 4]
        cand[k] = seg > 0 and rel - seg > before
        found = found or cand[k]
    k = 0
    while k < m:
        a_end = k
        while a_end < m and gid[a_end] == gid[k]:
            a_end += 1
        b_end = a_end
        if a_end < m and g_i[gid[a_end]] >> 1 == g_i[gid[k]] >> 1:
            while b_end < m and gid[b_end] == gid[a_end]:
                b_end += 1
        found = (
            _flow(
                k,
                a_end,
                b_end,
                gid,
                g_i,
                rws,
                flags,
                ack,
                seq_i,
                g_ok,
                g_base,
                seq_ok_f,
                seq_max_f,
                cand,
            )
            or found
        )
        k = b_end
    return found


@njit
def _flow(  # noqa: PLR0917 - a compiled helper takes its columns positionally
    a0: int,
    a1: int,
    b1: int,
    gid: I64,
    g_i: I64,
    rws: I64,
    flags: I64,
    ack: U32,
    seq_i: I64,
    g_ok: B,
    g_base: I64,
    seq_ok_f: B,
    seq_max_f: I64,
    cand: B,
) -> bool:
    """One flow: rows ``a0:a1`` of one direction, ``a1:b1`` of the other (none if equal)."""
    found = False
    i0, i1 = a0, a1  # the next row of each side
    end0 = end1 = 0  # each side's highest end so far in the pass
    while i0 < a1 or i1 < b1:
        side = 0 if i1 >= b1 or (i0 < a1 and rws[i0] < rws[i1]) else 1
        k = i0 if side == 0 else i1
        if flags[k] & _ACK:
            if side == 0 and i1 > a1:  # the peer's rows so far
                ok, edge = True, end1
            elif side == 1 and i0 > a0:
                ok, edge = True, end0
            elif side == 0 and b1 > a1:  # the peer's first row comes later: its base
                ok, edge = g_ok[gid[a1]], g_base[gid[a1]]
            elif side == 1:
                ok, edge = g_ok[gid[a0]], g_base[gid[a0]]
            else:  # no peer row in the pass: its columns
                i = g_i[gid[k]] ^ 1
                ok, edge = seq_ok_f[i], seq_max_f[i]
            if ok and seq_delta(np.int64(ack[k]), edge) > 0:
                cand[k] = True
                found = True
        end = g_base[gid[k]] + max(seq_i[k, 2], 0)
        if side == 0:
            end0 = end
            i0 += 1
        else:
            end1 = end
            i1 += 1
    return found
