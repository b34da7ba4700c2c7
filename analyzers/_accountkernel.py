"""A pass's per-packet accounting, compiled: one walk over its rows laid out by flow and direction.

Each row's flow slot and direction (0: from the originator) are resolved, its time, wire, IP and
payload lengths read once; each flow gets its first and last time in the pass, each (flow,
direction) group its packet and byte sums. The walk also hands back the rows' sorted columns the
TCP and DNS accounting read after it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from capture import njit

__all__ = ["account"]

I64 = npt.NDArray[np.int64]
U32 = npt.NDArray[np.uint32]
B = npt.NDArray[np.bool_]


@njit
def account(  # noqa: PLR0917 - a compiled kernel takes its columns positionally
    perm: I64,
    rows: I64,
    flow_of: I64,
    breaks: npt.NDArray[np.uint8],
    slots: I64,
    src_is_a: B,
    orig_a: B,
    ts_col: I64,
    wire_col: I64,
    ip_len_col: U32,
    l4_len_col: U32,
    sorted_i: I64,
    g_sums: I64,
    f_time: I64,
) -> int:
    """Walk the sorted positions; return how many (flow, direction) groups they form.

    *perm*, *flow_of* and *breaks* are ``_groupkernel``'s layout (*perm* indexes *rows*, the
    batch rows; *src_is_a* is per row of *rows*); *slots* each flow's slot. Per sorted position
    *sorted_i* gets (batch row, slot, direction, time, payload length); per group *g_sums* gets
    (flat slot-direction index, packets, wire bytes, IP bytes, payload bytes); per flow
    *f_time* gets (first, last) time.
    """
    g = -1
    for p in range(perm.shape[0]):
        i = perm[p]
        r = rows[i]
        f = flow_of[p]
        s = slots[f]
        d = int(src_is_a[i] != orig_a[s])
        t = ts_col[r]
        pay = int(l4_len_col[r])
        sorted_i[p, 0] = r
        sorted_i[p, 1] = s
        sorted_i[p, 2] = d
        sorted_i[p, 3] = t
        sorted_i[p, 4] = pay
        if breaks[p] == 3:  # a flow starts
            f_time[f, 0] = t
            f_time[f, 1] = t
        else:
            f_time[f, 0] = min(f_time[f, 0], t)
            f_time[f, 1] = max(f_time[f, 1], t)
        if breaks[p]:  # a group starts
            g += 1
            g_sums[g, 0] = 2 * s + d
            g_sums[g, 1] = 1
            g_sums[g, 2] = wire_col[r]
            g_sums[g, 3] = ip_len_col[r]
            g_sums[g, 4] = pay
        else:
            g_sums[g, 1] += 1
            g_sums[g, 2] += wire_col[r]
            g_sums[g, 3] += ip_len_col[r]
            g_sums[g, 4] += pay
    return g + 1
