"""Which TCP segments change nothing but their direction's highest sequence end.

The flow table's general pass runs every TCP segment through the sequence accounting
(``_seqkernel``), the content-gap screen (``_gapkernel``) and, for the segments those mark, the
state machine (``_tcpkernel``). A segment of an established connection that carries no control
flag, advertises a window, extends its direction's data without a hole or repeats nothing, and
acknowledges no more than the peer sent is none of those: Zeek's state, history, retransmission
count and gaps stay as they are, and only the direction's highest end moves. ``steady`` tells
such a segment from the rest by the same rules, so the known flows' loop (``_knownflows``) can
account it alone, exactly as the general pass would. Anything else goes to the general pass.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from analyzers._seqkernel import seq_delta
from analyzers._tcpstate import ACK, FIN, H_ACK, H_DATA, INACTIVE, RESET, RST, SYN
from capture import njit_inline

__all__ = ["steady"]

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

_U32 = 0xFFFFFFFF


@njit_inline
def steady(  # noqa: PLR0917 - a compiled helper takes its values positionally
    flags: int,
    seq: int,
    ack: int,
    win: int,
    plen: np.int64,
    i: np.int64,
    state_f: U8,
    seen_f: U8,
    seq_ok_f: B,
    seq_max_f: I64,
) -> tuple[bool, np.int64]:
    """Whether a segment (*flags*, *seq*, *ack*, *win*, payload *plen*) of the direction at
    flat index *i* (``slot * 2 + direction``) is steady, and that direction's new highest end.

    The general pass's rules, for a pass holding this segment alone: no SYN, FIN or RST, an
    ACK, a non-zero window (else an event); the direction neither inactive (its first segment
    is an event) nor reset (its ends no longer count), its sequence base known, its first data
    or first pure ACK already logged; data that ends past the highest end without starting
    past it (not a retransmission, not a hole), or a pure ACK at the highest end; an
    acknowledgment not past the peer's highest end (else a gap candidate).
    """
    if flags & (SYN | FIN | RST) or not flags & ACK or win == 0:
        return False, np.int64(0)
    st = state_f[i]
    if st in (INACTIVE, RESET) or not seq_ok_f[i]:
        return False, np.int64(0)
    if not seen_f[i] & (H_DATA if plen > 0 else H_ACK):
        return False, np.int64(0)
    base = seq_max_f[i]
    end32 = (np.int64(seq) + plen) & _U32
    rel = seq_delta(end32, base)
    if (plen > 0 and not (rel > 0 and rel - plen <= 0)) or (plen == 0 and rel != 0):
        return False, np.int64(0)
    j = i ^ 1
    if seq_ok_f[j] and seq_delta(np.int64(ack), seq_max_f[j]) > 0:
        return False, np.int64(0)
    return True, base + rel
