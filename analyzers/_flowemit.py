"""The flow table's side of ``FlowEvents``: which slots changed state, as column arithmetic.

The flow table calls ``started`` for new slots, ``check`` with the slots of every pass and of
every flow about to end, ``unanswered`` at each expiry sweep and ``ended`` with the records it
delivers; ``take`` hands over what accumulated, once per batch. A per-slot byte of flags makes
each kind fire once per flow incarnation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from analyzers._flowcolumns import FlowColumns
from analyzers._flowevents import EventKind, FlowEvents
from analyzers._flowkey import PROTO_TCP
from analyzers._records import FlowRecord
from analyzers._tcpstate import RESET

I64 = npt.NDArray[np.int64]
BoolArr = npt.NDArray[np.bool_]

PENDING, _EST, _FAILED = 1, 2, 4  # flags per slot
SETTLED = _EST | _FAILED  # a TCP flow's ESTABLISHED or FAILED reported
_ICMP = (1, 58)


class FlowEventEmitter:
    """Collects one batch's events from the flow table's columns."""

    def __init__(self, cols: FlowColumns, attempt_timeout_ns: int) -> None:
        self._cols = cols
        self._flags = np.zeros(cols.size, np.uint8)
        self._timeout_ns = attempt_timeout_ns
        self._parts: list[FlowEvents] = []

    @property
    def flags(self) -> npt.NDArray[np.uint8]:
        """Per slot: the event kinds reported for the flow (bit ``PENDING``: ATTEMPT not yet)."""
        return self._flags

    def started(self, s: I64, is_attempt: BoolArr) -> None:
        """Slots *s* hold new flows; those *is_attempt* marks report ``ATTEMPT`` at ``check``."""
        self._flags[s] = np.where(is_attempt, PENDING, 0)

    def check(self, s: I64) -> None:
        """Events of slots *s* from their state now (after a pass, or before they end)."""
        c = self._cols
        f = self._flags[s]
        pending = (f & PENDING) != 0
        if pending.any():
            p = s[pending]
            self._add(EventKind.ATTEMPT, p, c.first[p])
            self._flags[p] &= ~np.uint8(PENDING)
        tcp = (c.proto[s] == PROTO_TCP) & (c.syn_ts[s] > 0) & ((f & SETTLED) == 0)
        if not tcp.any():
            return
        t = s[tcp]
        est = (c.synack_ts[t] > 0) & (c.ack_ts[t] > 0)
        if est.any():
            e = t[est]
            self._add(EventKind.ESTABLISHED, e, c.ack_ts[e] - 1)
            self._flags[e] |= _EST
        # Zeek's is_failed_conn: a RST either way before the handshake completed, no data
        st = c.tcp_state[t]
        reset = (st[:, 0] == RESET) | (st[:, 1] == RESET)
        failed = ~est & reset & (c.pay[t].sum(axis=1) == 0)
        if failed.any():
            x = t[failed]
            self._add(EventKind.FAILED, x, c.last[x])
            self._flags[x] |= _FAILED

    def unanswered(self, now_ns: int) -> None:
        """SYNs with no answer for the attempt timeout at packet time *now_ns* fail (Zeek's S0)."""
        c = self._cols
        h = c.hwm
        syn = c.syn_ts[:h]
        cand = (
            c.active[:h]
            & (syn > 0)
            & (c.synack_ts[:h] == 0)
            & (c.pkts[:h, 1] == 0)
            & ((self._flags[:h] & SETTLED) == 0)
            & (now_ns - (syn - 1) >= self._timeout_ns)
        )
        x = np.flatnonzero(cand)
        if x.size:
            self._add(EventKind.FAILED, x, c.syn_ts[x] - 1 + self._timeout_ns)
            self._flags[x] |= _FAILED

    def ended(self, s: I64, records: Sequence[FlowRecord]) -> None:
        """Slots *s* ended with *records* (one each, same order)."""
        if s.size:
            self._add(EventKind.ENDED, s, self._cols.last[s], records)

    def take(self) -> FlowEvents | None:
        """Everything since the last call, or None."""
        if not self._parts:
            return None
        parts, self._parts = self._parts, []
        return FlowEvents.concat(parts).sorted_by_time()

    def _add(self, kind: EventKind, s: I64, ts: I64, records: Sequence[FlowRecord] = ()) -> None:
        c = self._cols
        o = c.orig_a[s]
        ports = c.ports[s]
        resp_port = np.where(o, ports & 0xFFFF, ports >> 16).astype(np.uint16)
        # ICMP keeps its type and code in the port columns: not a service port
        resp_port[np.isin(c.proto[s], _ICMP)] = 0
        self._parts.append(
            FlowEvents(
                kind=np.full(s.size, kind, np.uint8),
                ts_ns=np.asarray(ts, np.int64),
                proto=c.proto[s].copy(),
                orig_hi=np.where(o, c.ahi[s], c.bhi[s]),
                orig_lo=np.where(o, c.alo[s], c.blo[s]),
                resp_hi=np.where(o, c.bhi[s], c.ahi[s]),
                resp_lo=np.where(o, c.blo[s], c.alo[s]),
                resp_port=resp_port,
                orig_ep=c.ep[s, 0].copy(),
                resp_ep=c.ep[s, 1].copy(),
                records=records,
            )
        )
