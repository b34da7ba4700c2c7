"""Zeek's TCP endpoint state machine and history letters, compiled, over the flow columns.

The same semantics as ``_tcpstate.TcpScratch.event`` (Zeek's ``update_history``,
``update_window`` and ``UpdateStateMachine``), as one plain loop over a pass's events, each
flow's in arrival order, reading and writing the named per-flow columns of ``FlowColumns``
directly. A history is the flow's fixed-width byte column; letters past its width are handed back
as (slot, letter) pairs for the long-history side dict.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from capture import njit

__all__ = ["tcp_events"]

U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]

# TCP_ENDPOINT_* and flag bits as in _tcpstate (literal here: numba freezes globals anyway)
INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
H_SYN, H_FIN, H_RST, H_FIN_RST, H_DATA, H_ACK, H_MULTI = 1, 2, 4, 8, 16, 32, 64
_U32 = 0xFFFFFFFF
_UPPER_TO_LOWER = 32


@njit
def _scale_point(count: int) -> bool:
    while count >= 10 and count % 10 == 0:
        count //= 10
    return count == 1


@njit
def _letter(  # noqa: PLR0917 - a compiled helper takes its columns positionally
    hist: U8, slot: int, ep: int, code: int, spill: I64, n_spill: int
) -> int:
    """Append history letter *code* (upper case; the responder's is lower case)."""
    if ep == 1:
        code += _UPPER_TO_LOWER
    width = hist.shape[1]
    for i in range(width):
        if hist[slot, i] == 0:
            hist[slot, i] = code
            return n_spill
    spill[n_spill, 0] = slot
    spill[n_spill, 1] = code
    return n_spill + 1


@njit
def _set(state: U8, prev: U8, slot: int, ep: int, new: int) -> None:
    if state[slot, ep] != new:
        prev[slot, ep] = state[slot, ep]
        state[slot, ep] = new


@njit
def tcp_events(  # noqa: PLR0917 - a compiled kernel takes its columns positionally
    ev_slot: I64,
    ev_dir: I64,
    ev_flags: I64,
    ev_seq: I64,
    ev_plen: I64,
    ev_win: I64,
    ev_ts: I64,
    ev_t: npt.NDArray[np.bool_],
    state: U8,
    prev: U8,
    seen: U8,
    syn_mark: U32,
    fin_mark: U32,
    rst_mark: U32,
    zero_win: U32,
    rst_count: U32,
    syn_ts: I64,
    synack_ts: I64,
    ack_ts: I64,
    did_close: U8,
    close_ts: I64,
    hist: U8,
    spill: I64,
) -> int:
    """Apply each event to its flow's columns; returns how many spilled letters *spill* holds."""
    ns = 0
    for i in range(ev_slot.shape[0]):
        s = ev_slot[i]
        ep = ev_dir[i]
        peer = 1 - ep
        flags = ev_flags[i]
        seq = ev_seq[i]
        plen = ev_plen[i]
        ts = ev_ts[i]
        syn = (flags & SYN) != 0
        fin = (flags & FIN) != 0
        rst = (flags & RST) != 0
        ack = (flags & ACK) != 0
        # update_history: a letter the first time its bit is seen (Zeek's CheckHistory); SYN,
        # FIN and RST again when they carry a new sequence number
        if syn or fin or rst:
            if int(syn) + int(fin) + int(rst) > 1:
                bit, code = (H_FIN_RST, ord("I")) if fin and rst else (H_MULTI, ord("Q"))
                if not seen[s, ep] & bit:
                    seen[s, ep] |= bit
                    ns = _letter(hist, s, ep, code, spill, ns)
            else:
                if syn:
                    bit, code, mark, marks = H_SYN, ord("H" if ack else "S"), seq + 1, syn_mark
                elif fin:
                    bit, code, mark, marks = H_FIN, ord("F"), seq + plen + 1, fin_mark
                else:
                    bit, code, mark, marks = H_RST, ord("R"), seq + 1, rst_mark
                mark &= _U32
                if not seen[s, ep] & bit:
                    seen[s, ep] |= bit
                    ns = _letter(hist, s, ep, code, spill, ns)
                elif mark != marks[s, ep]:
                    ns = _letter(hist, s, ep, code, spill, ns)
                marks[s, ep] = mark
        elif plen:
            if not seen[s, ep] & H_DATA:
                seen[s, ep] |= H_DATA
                ns = _letter(hist, s, ep, ord("D"), spill, ns)
        elif ack and not seen[s, ep] & H_ACK:
            seen[s, ep] |= H_ACK
            ns = _letter(hist, s, ep, ord("A"), spill, ns)
        # update_window: zero windows are boring with or after a RST, or after the peer's FIN
        if ev_win[i] == 0 and not rst and state[s, peer] != CLOSED and state[s, ep] != RESET:
            zero_win[s, ep] += 1
            if _scale_point(zero_win[s, ep]):
                ns = _letter(hist, s, ep, ord("W"), spill, ns)
        if ev_t[i]:
            ns = _letter(hist, s, ep, ord("T"), spill, ns)
        if rst:
            rst_count[s, ep] += 1
        # handshake timing as seen at the mirror
        if syn and not ack and ep == 0 and not syn_ts[s]:
            syn_ts[s] = ts + 1
        elif syn and ack and ep == 1 and not synack_ts[s]:
            synack_ts[s] = ts + 1
        elif ep == 0 and ack and not syn and not rst and synack_ts[s] and not ack_ts[s]:
            ack_ts[s] = ts + 1
        before = state[s, ep]
        _update_state(state, prev, s, ep, peer, syn, fin, rst, ack, plen)
        if (fin or rst) and before not in (CLOSED, RESET) and not did_close[s, ep]:
            # Zeek's ConnectionClosed: a complete close starts the close delay
            did_close[s, ep] = 1
            if state[s, ep] == RESET or did_close[s, peer] or state[s, peer] == INACTIVE:
                close_ts[s] = ts
    return ns


@njit
def _update_state(  # noqa: PLR0917 - a compiled helper takes its columns positionally
    state: U8,
    prev: U8,
    s: int,
    ep: int,
    peer: int,
    syn: bool,
    fin: bool,
    rst: bool,
    ack: bool,
    plen: int,
) -> None:
    st = state[s, ep]
    if st == INACTIVE:
        if syn:
            if ep == 0:
                _set(state, prev, s, ep, SYN_ACK_SENT if ack else SYN_SENT)
            else:
                if state[s, peer] == SYN_SENT:
                    _set(state, prev, s, peer, ESTABLISHED)
                _set(state, prev, s, ep, ESTABLISHED)
        if fin:
            _set(state, prev, s, ep, CLOSED)
        if rst:
            _set(state, prev, s, ep, RESET)
        if state[s, ep] == INACTIVE:
            if ep == 1 and plen == 0 and state[s, 0] == SYN_SENT:
                pass  # an ACK of the SYN before the SYN-ACK: not a partial connection
            elif ack and state[s, peer] == ESTABLISHED:
                _set(state, prev, s, ep, ESTABLISHED)  # the SYN was missed
            else:
                _set(state, prev, s, ep, PARTIAL)
    elif st in (SYN_SENT, SYN_ACK_SENT):
        if fin:
            _set(state, prev, s, ep, CLOSED)
        if rst:
            _set(state, prev, s, ep, RESET)
    elif st in (ESTABLISHED, PARTIAL):
        if syn and st == PARTIAL and state[s, peer] == INACTIVE and not ack:
            _set(state, prev, s, ep, SYN_SENT)
        if fin and not rst:
            _set(state, prev, s, ep, CLOSED)
            if state[s, peer] == RESET and prev[s, peer] == CLOSED:
                _set(state, prev, s, peer, CLOSED)  # FIN then RST from the peer: a normal close
        if rst:
            _set(state, prev, s, ep, RESET)
    elif st == CLOSED and rst and state[s, peer] != CLOSED:
        _set(state, prev, s, ep, RESET)
