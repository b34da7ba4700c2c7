"""Zeek's TCP endpoint state machine, history letters and ``conn_state``, for one flow at a time.

This is the scalar half of the flow table's TCP analysis. The flow table sends here only the
segments that can change something Zeek would log — every SYN, FIN and RST, the first segment of
each direction, the first data and first pure ACK of each direction, zero-window segments, and
the retransmissions that cross Zeek's log-scale thresholds — in time order per flow; everything
else is column arithmetic in the flow table.

Semantics follow Zeek's ``TCPSessionAdapter`` (``update_history``, ``update_window``,
``UpdateStateMachine``) and ``Conn::conn_state`` in base/protocols/conn/main.zeek.
"""

from __future__ import annotations

import re

# TCP_ENDPOINT_* in Zeek
INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

# history bits already seen, per endpoint (responder's shifted by 8), as Zeek's HIST_*
H_SYN, H_FIN, H_RST, H_FIN_RST, H_DATA, H_ACK, H_MULTI = 1, 2, 4, 8, 16, 32, 64
RESP_SHIFT = 8

_RSTOS0 = re.compile(r"\^?S[^HAFGIQ]*R.*")


def is_scale_point(count: int) -> bool:
    """True at 1, 10, 100, …: where Zeek repeats a counted history letter (T, W, C, G)."""
    while count >= 10 and count % 10 == 0:
        count //= 10
    return count == 1


#: One flow's scalar TCP state as the flow table stores it: a row of ``TCP_WORDS`` uint32
#: (68 bytes; a homogeneous row converts to and from Python lists much faster than a record).
#: 0: states (orig, resp) and previous states, a byte each; 1: history bits seen;
#: 2-7: marks ``(seq + 1) mod 2**32`` of the last SYN, FIN, RST per endpoint (0: none);
#: 8-9: zero windows per endpoint; 10: RST segments (originator's low 16 bits, responder's high
#: 16, saturating); 11-16: SYN, SYN-ACK, ACK times (ns + 1,
#: low and high words; 0: unset).
TCP_WORDS = 17
_U32 = 0xFFFFFFFF


class TcpScratch:
    """One flow's TCP state while a batch's events for it are applied (loaded and stored by slot).

    Index 0 is the originator, 1 the responder. The stored row itself is kept and updated in
    place (marks, zero windows, RST counts live at their row positions): a scratch allocates
    one small list besides itself, which keeps the garbage collector out of the hot path.
    """

    __slots__ = ("ack_ts", "hist", "r", "seen", "state", "syn_ts", "synack_ts")

    def __init__(self, row: list[int], hist: str) -> None:
        """From one stored row (see ``TCP_WORDS``, which it takes over) and the history so far."""
        st = row[0]
        # states of originator and responder, then their previous states
        self.state = [st & 0xFF, (st >> 8) & 0xFF, (st >> 16) & 0xFF, st >> 24]
        self.seen = row[1]
        self.syn_ts = row[11] | (row[12] << 32)
        self.synack_ts = row[13] | (row[14] << 32)
        self.ack_ts = row[15] | (row[16] << 32)
        self.hist = hist
        self.r = row

    def row(self) -> list[int]:
        """Back to a stored row."""
        st, r = self.state, self.r
        r[0] = st[0] | (st[1] << 8) | (st[2] << 16) | (st[3] << 24)
        r[1] = self.seen
        r[11] = self.syn_ts & _U32
        r[12] = self.syn_ts >> 32
        r[13] = self.synack_ts & _U32
        r[14] = self.synack_ts >> 32
        r[15] = self.ack_ts & _U32
        r[16] = self.ack_ts >> 32
        return r

    def _set(self, ep: int, new: int) -> None:
        st = self.state
        if st[ep] != new:
            st[ep + 2] = st[ep]
            st[ep] = new

    def _check(self, ep: int, bit: int, code: str) -> bool:
        """Zeek's CheckHistory: add the letter the first time; True if it was seen before."""
        mask = bit << (RESP_SHIFT * ep)
        if self.seen & mask:
            return True
        self.seen |= mask
        self.hist += code if ep == 0 else code.lower()
        return False

    def event(  # noqa: PLR0917 - per-segment hot path: positional is cheapest
        self, ep: int, flags: int, seq: int, plen: int, win: int, ts: int, t_letter: bool
    ) -> None:
        """Apply one segment sent by endpoint *ep* (0 originator, 1 responder)."""
        syn = flags & SYN
        fin = flags & FIN
        rst = flags & RST
        ack = flags & ACK
        peer = 1 - ep
        r = self.r
        # update_history (row words 2-7: the last SYN, FIN and RST marks per endpoint)
        if syn or fin or rst:
            if (syn != 0) + (fin != 0) + (rst != 0) > 1:
                if fin and rst:
                    self._check(ep, H_FIN_RST, "I")
                else:
                    self._check(ep, H_MULTI, "Q")
            elif syn:
                code = "H" if ack else "S"
                mark = (seq + 1) & _U32
                if self._check(ep, H_SYN, code) and mark != r[2 + ep]:
                    self.hist += code if ep == 0 else code.lower()
                r[2 + ep] = mark
            elif fin:
                mark = (seq + plen + 1) & _U32
                if self._check(ep, H_FIN, "F") and mark != r[4 + ep]:
                    self.hist += "F" if ep == 0 else "f"
                r[4 + ep] = mark
            else:
                mark = (seq + 1) & _U32
                if self._check(ep, H_RST, "R") and mark != r[6 + ep]:
                    self.hist += "R" if ep == 0 else "r"
                r[6 + ep] = mark
        elif plen:
            self._check(ep, H_DATA, "D")
        elif ack:
            self._check(ep, H_ACK, "A")
        # update_window: zero windows are boring with or after a RST, or after the peer's FIN
        st = self.state
        if win == 0 and not rst and st[peer] != CLOSED and st[ep] != RESET:
            r[8 + ep] += 1
            if is_scale_point(r[8 + ep]):
                self.hist += "W" if ep == 0 else "w"
        if t_letter:
            self.hist += "T" if ep == 0 else "t"
        if rst and (r[10] >> (16 * ep)) & 0xFFFF != 0xFFFF:  # saturating per endpoint
            r[10] += 1 << (16 * ep)
        # handshake timing as seen at the mirror
        if syn and not ack and ep == 0 and not self.syn_ts:
            self.syn_ts = ts + 1
        elif syn and ack and ep == 1 and not self.synack_ts:
            self.synack_ts = ts + 1
        elif ep == 0 and ack and not syn and not rst and self.synack_ts and not self.ack_ts:
            self.ack_ts = ts + 1
        self._update_state(ep, peer, syn, fin, rst, ack, plen)

    def _update_state(  # noqa: PLR0917 - per-segment hot path: positional is cheapest
        self, ep: int, peer: int, syn: int, fin: int, rst: int, ack: int, plen: int
    ) -> None:
        st = self.state[ep]
        if st == INACTIVE:
            if syn:
                if ep == 0:
                    self._set(ep, SYN_ACK_SENT if ack else SYN_SENT)
                else:
                    if self.state[peer] == SYN_SENT:
                        self._set(peer, ESTABLISHED)
                    self._set(ep, ESTABLISHED)
            if fin:
                self._set(ep, CLOSED)
            if rst:
                self._set(ep, RESET)
            if self.state[ep] == INACTIVE:
                if ep == 1 and plen == 0 and self.state[0] == SYN_SENT:
                    pass  # an ACK of the SYN before the SYN-ACK: not a partial connection
                elif ack and self.state[peer] == ESTABLISHED:
                    self._set(ep, ESTABLISHED)  # the SYN was missed; the handshake finished
                else:
                    self._set(ep, PARTIAL)
        elif st in (SYN_SENT, SYN_ACK_SENT):
            if fin:
                self._set(ep, CLOSED)
            if rst:
                self._set(ep, RESET)
        elif st in (ESTABLISHED, PARTIAL):
            if syn and st == PARTIAL and self.state[peer] == INACTIVE and not ack:
                self._set(ep, SYN_SENT)
            if fin and not rst:
                self._set(ep, CLOSED)
                if self.state[peer] == RESET and self.state[peer + 2] == CLOSED:
                    self._set(peer, CLOSED)  # FIN then RST from the peer: a normal close
            if rst:
                self._set(ep, RESET)
        elif st == CLOSED and rst and self.state[peer] != CLOSED:
            self._set(ep, RESET)


def conn_state(os_: int, rs: int, orig_size: int, resp_size: int, history: str) -> str:  # noqa: PLR0911 - mirrors Zeek's conn_state branch for branch
    """Zeek's ``Conn::conn_state`` for TCP from the two endpoint states."""
    o_inactive = os_ in (INACTIVE, PARTIAL)
    r_inactive = rs in (INACTIVE, PARTIAL)
    if rs == RESET:
        if os_ in (SYN_SENT, SYN_ACK_SENT) or (os_ == RESET and orig_size == 0 and resp_size == 0):
            return "REJ"
        return "RSTRH" if o_inactive else "RSTR"
    if os_ == RESET:
        if r_inactive:
            return "RSTOS0" if _RSTOS0.fullmatch(history) else "OTH"
        return "RSTO"
    if rs == CLOSED and os_ == CLOSED:
        return "SF"
    if os_ == CLOSED:
        return "SH" if r_inactive else "S2"
    if rs == CLOSED:
        return "SHR" if o_inactive else "S3"
    if os_ == SYN_SENT and rs == INACTIVE:
        return "S0"
    if os_ == ESTABLISHED and rs == ESTABLISHED:
        return "S1"
    return "OTH"
