"""Zeek's content gaps (``G``/``g``, ``missed_bytes``) from sequence numbers, without reassembly.

Zeek's reassembler reports a gap when the peer's ACK passes sequence space it never delivered:
a hole left by a segment that started beyond the highest end seen, or acknowledged space no
segment was seen for at all. Each uncovered stretch below the ACK is one gap; the ACK of a FIN
is taken as one short of it (the FIN's octet is not content). The gap counts (bytes in
``missed_bytes``, a ``G``/``g`` letter at 1, 10, 100… gaps) only when both endpoints are
established or closed cleanly from established, in the state the packet carrying the ACK leaves.
A hole filled by a retransmission before any ACK covers it is no gap; nothing is counted at the
flow's end. Only flows with a hole or an ACK beyond the data come here (the flow table screens
them in columns); for those, every TCP segment of the pass goes through ``GapTrack.packet`` in
arrival order, after ``TcpScratch.event`` has applied it.
"""

from __future__ import annotations

from analyzers._tcpstate import ACK, CLOSED, ESTABLISHED, TcpScratch, is_scale_point

_U32 = 0xFFFFFFFF
_HALF = 0x80000000


def _clean(state: int, prev_state: int) -> bool:
    return state == ESTABLISHED or (state == CLOSED and prev_state == ESTABLISHED)


class GapTrack:
    """One flow's content-gap state, per direction ``[originator, responder]``.

    Positions are the flow table's unwrapped sequence space (``seq_max``). ``edge`` is the
    highest end of data seen or acknowledged (None: nothing known of that direction yet);
    ``holes`` the stretches below it neither seen nor acknowledged, in order; ``missed`` and
    ``count`` what was reported, loaded from and stored to the flow table's columns.
    """

    __slots__ = ("count", "edge", "first", "holes", "missed")

    def __init__(
        self, edge: list[int | None], first: list[int], missed: list[int], count: list[int]
    ) -> None:
        self.edge = edge
        self.first = first  # first 32-bit sequence number seen per direction
        self.holes: list[list[tuple[int, int]]] = [[], []]
        self.missed = missed
        self.count = count

    def pending(self, seq_max: list[int]) -> bool:
        """Whether anything must be kept for later packets (a hole, or acks past the data)."""
        return any(
            self.holes[e] or (edge is not None and edge > seq_max[e])
            for e, edge in enumerate(self.edge)
        )

    def packet(  # noqa: PLR0917 - per-segment path: positional is cheapest
        self, sc: TcpScratch, ep: int, flags: int, ack: int, end: int, seg: int
    ) -> None:
        """Segment of *ep* with sequence space ``[end - seg, end)`` (*seg* 0: none) and *ack*."""
        if flags & ACK:
            self._acked(sc, 1 - ep, ack)
        edge = self.edge[ep]
        start = end - seg
        if edge is None:
            self.edge[ep] = end if seg else start
            return
        if seg == 0:
            return
        if start > edge:
            self.holes[ep].append((edge, start))
        elif start < edge and self.holes[ep]:
            self._fill(ep, start, end)
        if end > edge:
            self.edge[ep] = end

    def _fill(self, ep: int, start: int, end: int) -> None:
        """A retransmission (or reordered segment) covers part of the holes below the edge."""
        kept: list[tuple[int, int]] = []
        for lo, hi in self.holes[ep]:
            if hi <= start or lo >= end:
                kept.append((lo, hi))
                continue
            if lo < start:
                kept.append((lo, start))
            if hi > end:
                kept.append((end, hi))
        self.holes[ep] = kept

    def _acked(self, sc: TcpScratch, p: int, ack32: int) -> None:
        """Direction *p*'s data acknowledged up to *ack32*: holes below it become gaps."""
        edge = self.edge[p]
        if edge is None:
            return  # nothing seen of p yet: Zeek takes this ACK as p's start
        a = edge + ((ack32 - edge + _HALF) & _U32) - _HALF
        if sc.fin_mark[p]:  # p's last FIN, as the sequence number just past it
            fin = edge + ((sc.fin_mark[p] - edge + _HALF) & _U32) - _HALF
            if a >= fin:
                a = fin - 1
        if not sc.syn_mark[p] and ((ack32 - self.first[p]) & _U32) <= 1:
            return  # a partial connection's first ACK: Zeek ignores it
        holes = self.holes[p]
        if a > edge:
            holes.append((edge, a))
            self.edge[p] = a
        if not holes or holes[0][0] >= a:
            return
        st, prev = sc.state, sc.prev_state
        clean = _clean(st[0], prev[0]) and _clean(st[1], prev[1])
        while holes and holes[0][0] < a:
            lo, hi = holes[0]
            if hi > a:
                holes[0] = (a, hi)
                hi = a
            else:
                holes.pop(0)
            if clean:
                self.missed[p] += hi - lo
                self.count[p] += 1
                if is_scale_point(self.count[p]):
                    sc.hist += "G" if p == 0 else "g"
