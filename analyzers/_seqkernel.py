"""A pass's TCP sequence accounting, compiled: retransmissions and the segments that are events.

One loop over the pass's TCP rows, each (flow, direction) group's rows in arrival order: each
segment's end is unwrapped against the one before it (a 64-bit sequence space, as Zeek counts
wraps), a segment whose end does not pass the highest end before it is Zeek's retransmission
(``update_last_seq``; none once a RST was seen), a ``T`` letter at 1, 10, 100... of them; and the
segments that can change Zeek's state or history — control flags, zero windows, ``T`` letters, a
group's first segment while its state is inactive, its first data and first pure ACK not logged
yet — are marked for the state machine (``_tcpkernel``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from capture import njit, njit_inline

__all__ = ["seq_delta", "seq_pass"]

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
U16 = npt.NDArray[np.uint16]
U32 = npt.NDArray[np.uint32]
B = npt.NDArray[np.bool_]

# literal here: numba freezes globals anyway (as _tcpstate names them)
_FIN, _SYN, _RST, _ACK = 0x01, 0x02, 0x04, 0x10
_INACTIVE, _RESET = 0, 6
_H_DATA, _H_ACK = 16, 32
_U32 = 0xFFFFFFFF
_HALF = 0x80000000
_EXCLUDED = -(1 << 33)  # below any end: a segment after a RST counts for no maximum


@njit_inline
def seq_delta(a: np.int64 | int, b: np.int64 | int) -> int:
    """How far 32-bit sequence number *a* lies after *b* (negative: before), within half the
    sequence space either way, as TCP compares them (either may be unwrapped: only their low
    32 bits count)."""
    return int(((a - b + _HALF) & _U32) - _HALF)


@njit
def seq_pass(  # noqa: PLR0917 - a compiled kernel takes its columns positionally
    gi: I64,
    flags: I64,
    seq: I64,
    plen: I64,
    win: U16,
    state_f: U8,
    seen_f: U8,
    seq_ok_f: B,
    seq_max_f: I64,
    seq_start_f: U32,
    retx_f: U32,
    out_i: I64,
    out_b: B,
    g_ok: B,
    g_base: I64,
) -> int:
    """Account the rows; return how many groups they form.

    *gi* is each row's flat (slot, direction) index, the rows grouped by it, each group in
    arrival order. Per row *out_i* gets (group, sequence end relative to the group's base, the
    running maximum of those ends (excluded ones below zero), that maximum before the row, the
    sequence length counted) and *out_b* (``T`` letter, event). Per group *g_ok* and *g_base*
    get whether its direction had a sequence base before the pass, and the base.
    """
    m = gi.shape[0]
    g = -1
    base = 0
    prev_end = 0
    rel = 0
    run = 0
    excluded = False
    retx = 0
    d_seen = False
    a_seen = False
    for k in range(m):
        f = flags[k]
        if k == 0 or gi[k] != gi[k - 1]:
            if g >= 0:
                _close_group(gi[k - 1], g_base[g], run, retx, seq_ok_f, seq_max_f, retx_f)
            g += 1
            i = gi[k]
            ok = seq_ok_f[i]
            base = seq_max_f[i] if ok else seq[k]
            if not ok:
                seq_start_f[i] = seq[k]
            g_ok[g] = ok
            g_base[g] = base
            prev_end = base & _U32
            rel = 0
            run = _EXCLUDED
            excluded = state_f[i] == _RESET
            retx = retx_f[i]
            d_seen = (seen_f[i] & _H_DATA) != 0
            a_seen = (seen_f[i] & _H_ACK) != 0
            first = state_f[i] == _INACTIVE
        else:
            first = False
        syn = (f & _SYN) != 0
        fin = (f & _FIN) != 0
        rst = (f & _RST) != 0
        seg = (0 if rst else plen[k]) + int(syn) + int(fin)
        end32 = (seq[k] + seg) & _U32
        rel += seq_delta(end32, prev_end)
        prev_end = end32
        excluded = excluded or rst
        before = max(run, 0)  # run starts each group below zero
        run = max(run, _EXCLUDED if excluded else rel)
        t_letter = False
        if plen[k] > 0 and not excluded and rel <= before:
            retx += 1
            t_letter = _scale_point(retx)
        ctrl = syn or fin or rst
        event = ctrl or (win[k] == 0 and not rst) or t_letter or first
        if not ctrl and plen[k] > 0 and not d_seen:
            d_seen = True
            event = True
        elif not ctrl and plen[k] == 0 and f & _ACK and not a_seen:
            a_seen = True
            event = True
        out_i[k, 0] = g
        out_i[k, 1] = rel
        out_i[k, 2] = run
        out_i[k, 3] = before
        out_i[k, 4] = 0 if excluded else seg
        out_b[k, 0] = t_letter
        out_b[k, 1] = event
    if g >= 0:
        _close_group(gi[m - 1], g_base[g], run, retx, seq_ok_f, seq_max_f, retx_f)
    return g + 1


@njit
def _close_group(  # noqa: PLR0917 - a compiled helper takes its columns positionally
    i: int, base: int, run: int, retx: int, seq_ok_f: B, seq_max_f: I64, retx_f: U32
) -> None:
    seq_max_f[i] = base + max(run, 0)
    seq_ok_f[i] = True
    if retx_f[i] != retx:  # a column most flows leave zero: never written, never mapped
        retx_f[i] = retx


@njit
def _scale_point(count: int) -> bool:
    while count >= 10 and count % 10 == 0:
        count //= 10
    return count == 1
