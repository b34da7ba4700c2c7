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

# history bits already seen, per endpoint, as Zeek's HIST_*
H_SYN, H_FIN, H_RST, H_FIN_RST, H_DATA, H_ACK, H_MULTI = 1, 2, 4, 8, 16, 32, 64

_RSTOS0 = re.compile(r"\^?S[^HAFGIQ]*R.*")
_U32 = 0xFFFFFFFF


def is_scale_point(count: int) -> bool:
    """True at 1, 10, 100, …: where Zeek repeats a counted history letter (T, W, C, G)."""
    while count >= 10 and count % 10 == 0:
        count //= 10
    return count == 1


class TcpScratch:
    """One flow's TCP state while a batch's events for it are applied (loaded and stored by slot).

    Per-endpoint fields are ``[originator, responder]`` lists, the rows of the flow table's
    ``(n, 2)`` columns of the same names; handshake times are ns + 1 (0: not seen); ``close_ts``
    is the time of the packet that completed the close (0: none).
    """

    __slots__ = (
        "ack_ts",
        "close_ts",
        "did_close",
        "fin_mark",
        "hist",
        "prev_state",
        "rst_count",
        "rst_mark",
        "seen",
        "state",
        "syn_mark",
        "syn_ts",
        "synack_ts",
        "zero_win",
    )

    def __init__(  # noqa: PLR0917 - one argument per stored column, loaded by zip
        self,
        hist: str,
        state: list[int],
        prev_state: list[int],
        seen: list[int],
        syn_mark: list[int],
        fin_mark: list[int],
        rst_mark: list[int],
        zero_win: list[int],
        rst_count: list[int],
        syn_ts: int,
        synack_ts: int,
        ack_ts: int,
        did_close: list[int],
        close_ts: int,
    ) -> None:
        self.hist = hist
        self.state = state
        self.prev_state = prev_state
        self.seen = seen
        self.syn_mark = syn_mark
        self.fin_mark = fin_mark
        self.rst_mark = rst_mark
        self.zero_win = zero_win
        self.rst_count = rst_count
        self.syn_ts = syn_ts
        self.synack_ts = synack_ts
        self.ack_ts = ack_ts
        self.did_close = did_close
        self.close_ts = close_ts

    def _set(self, ep: int, new: int) -> None:
        st = self.state
        if st[ep] != new:
            self.prev_state[ep] = st[ep]
            st[ep] = new

    def _check(self, ep: int, bit: int, code: str) -> bool:
        """Zeek's CheckHistory: add the letter the first time; True if it was seen before."""
        seen = self.seen
        if seen[ep] & bit:
            return True
        seen[ep] |= bit
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
        # update_history
        if syn or fin or rst:
            if (syn != 0) + (fin != 0) + (rst != 0) > 1:
                if fin and rst:
                    self._check(ep, H_FIN_RST, "I")
                else:
                    self._check(ep, H_MULTI, "Q")
            elif syn:
                code = "H" if ack else "S"
                mark = (seq + 1) & _U32
                if self._check(ep, H_SYN, code) and mark != self.syn_mark[ep]:
                    self.hist += code if ep == 0 else code.lower()
                self.syn_mark[ep] = mark
            elif fin:
                mark = (seq + plen + 1) & _U32
                if self._check(ep, H_FIN, "F") and mark != self.fin_mark[ep]:
                    self.hist += "F" if ep == 0 else "f"
                self.fin_mark[ep] = mark
            else:
                mark = (seq + 1) & _U32
                if self._check(ep, H_RST, "R") and mark != self.rst_mark[ep]:
                    self.hist += "R" if ep == 0 else "r"
                self.rst_mark[ep] = mark
        elif plen:
            self._check(ep, H_DATA, "D")
        elif ack:
            self._check(ep, H_ACK, "A")
        # update_window: zero windows are boring with or after a RST, or after the peer's FIN
        st = self.state
        if win == 0 and not rst and st[peer] != CLOSED and st[ep] != RESET:
            self.zero_win[ep] += 1
            if is_scale_point(self.zero_win[ep]):
                self.hist += "W" if ep == 0 else "w"
        if t_letter:
            self.hist += "T" if ep == 0 else "t"
        if rst:
            self.rst_count[ep] += 1
        # handshake timing as seen at the mirror
        if syn and not ack and ep == 0 and not self.syn_ts:
            self.syn_ts = ts + 1
        elif syn and ack and ep == 1 and not self.synack_ts:
            self.synack_ts = ts + 1
        elif ep == 0 and ack and not syn and not rst and self.synack_ts and not self.ack_ts:
            self.ack_ts = ts + 1
        before = self.state[ep]
        self._update_state(ep, peer, syn, fin, rst, ack, plen)
        if (fin or rst) and before not in (CLOSED, RESET) and not self.did_close[ep]:
            self._closed(ep, peer, ts)

    def _closed(self, ep: int, peer: int, ts: int) -> None:
        """Zeek's ConnectionClosed: *ep*'s first FIN or RST; a complete close starts the delay.

        The close is complete when *ep* reset, the peer closed already, or the peer was never
        seen; the connection then ends the close delay after this packet, whatever follows
        (Zeek's delete timer is not moved by later packets). Otherwise the peer still talks.
        """
        self.did_close[ep] = 1
        st = self.state
        if st[ep] == RESET or self.did_close[peer] or st[peer] == INACTIVE:
            self.close_ts = ts

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
                if self.state[peer] == RESET and self.prev_state[peer] == CLOSED:
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
