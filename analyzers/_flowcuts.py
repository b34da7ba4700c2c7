"""In-batch flow ends: where, inside one batch, a flow ends and a new one with its key starts.

A packet after its flow's idle timeout (or TCP close delay), or a pure SYN on a closed or reset
TCP connection (Zeek's connection reuse), starts a new flow. Whether the flow has ended depends
on the state its earlier packets leave, so the flow table accounts each flow's rows before such
a packet first, then the flow is tested at that packet, and the rows from it on go through the
next pass: records do not depend on batch size. ``BatchCuts`` finds those packets and, once
the rows before them are accounted, tells which flows ended there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analyzers._decoded import DecodedBatch, Status
from analyzers._flowcolumns import FlowColumns
from analyzers._flowexpiry import dns_flows, ended
from analyzers._flowkey import PROTO_TCP, PROTO_UDP
from analyzers._tcpstate import ACK, CLOSED, FIN, RESET, RST, SYN
from capture import FrameBatch

I64 = npt.NDArray[np.int64]
_NS = 1_000_000_000
_L4 = int(Status.L4)  # a plain int: comparing a column with an IntEnum costs a conversion


@dataclass(frozen=True, slots=True)
class Cuts:
    """The packets of one pass where a flow may end, one per flow at most."""

    deferred: npt.NDArray[np.bool_]  # per sorted position: at or after its flow's cut
    rows: I64  # the batch row of each cut
    ts: I64  # its timestamp
    slots: I64  # its flow's slot
    pure_syn: npt.NDArray[np.bool_]  # whether it is a pure SYN


class BatchCuts:
    """Finds a batch's in-batch flow ends; remembers which rows were already tested."""

    def __init__(  # noqa: PLR0917 - the table's timeouts, in its order
        self,
        cols: FlowColumns,
        idle_ns: int,
        udp_idle_ns: int,
        icmp_idle_ns: int,
        closed_ns: int,
        dns_ns: int,
    ) -> None:
        self._cols = cols
        self._idle_ns = idle_ns
        self._udp_idle_ns = udp_idle_ns
        self._icmp_idle_ns = icmp_idle_ns
        self._closed_ns = closed_ns
        self._dns_ns = dns_ns
        self._checked = np.zeros(0, np.bool_)  # rows already tested for ending their flow

    def new_batch(self, n: int) -> None:
        """Start a batch of *n* rows: none of them tested yet."""
        self._checked = np.zeros(n, np.bool_)

    def find(  # noqa: PLR0917 - hot-path helper over _pass's sorted arrays
        self,
        batch: FrameBatch,
        dec: DecodedBatch,
        rows: I64,
        perm: I64,
        flow_of: I64,
        slots: I64,
    ) -> Cuts | None:
        """The packets of this pass where flows may end; None when no flow can."""
        cols = self._cols
        rs = rows[perm]
        ts = batch.ts_ns[rs]
        proto = dec.proto[rs]
        tcp = (proto == PROTO_TCP) & (dec.status[rs] == _L4)
        pure_syn = tcp & ((dec.tcp_flags[rs] & (SYN | ACK | RST)) == SYN)
        # the shortest quiet time after which each row's flow may have ended: the close delay
        # for TCP, the DNS session timer less its grace for UDP DNS flows, else inactivity
        dns = dns_flows(cols, slots)
        udp_floor = np.where(dns[flow_of], self._dns_ns - _NS, self._udp_idle_ns)
        floor = np.where(
            proto == PROTO_TCP,
            min(self._closed_ns, self._idle_ns),
            np.where(proto == PROTO_UDP, udp_floor, self._icmp_idle_ns),
        )
        last = cols.last[slots]  # 0: a flow new in this batch
        close_ts = cols.close_ts[slots]
        span = int(ts.max() - ts.min())
        # the common case (a short batch, no flow back after a pause or past its close delay,
        # no SYN on a known flow) costs these few column operations
        if (
            span < int(floor.min())
            and not (pure_syn & (last[flow_of] > 0)).any()
            and not ((last[flow_of] > 0) & (ts - last[flow_of] > floor)).any()
            and not ((close_ts[flow_of] > 0) & (ts - close_ts[flow_of] >= self._closed_ns)).any()
            and not (np.bincount(flow_of, weights=pure_syn) > 1).any()
        ):
            return None
        n = rs.shape[0]
        fo = np.lexsort((perm, flow_of))  # positions by flow, then arrival
        f = flow_of[fo]
        t = ts[fo]
        newf = np.empty(n, np.bool_)
        newf[0] = True
        np.not_equal(f[1:], f[:-1], out=newf[1:])
        prev_t = np.empty(n, np.int64)
        prev_t[1:] = t[:-1]
        prev_t[newf] = last[f[newf]]
        has_prev = ~newf | (last[f] > 0)
        # a close completes only at a FIN or RST: stored, or at the first one earlier in this
        # batch (a superset of the rows past the delay; the pass at the cut makes it exact)
        ctl = (tcp & ((dec.tcp_flags[rs] & (FIN | RST)) != 0))[fo]
        walked = np.cumsum(ctl)
        group_base = (walked - ctl)[np.flatnonzero(newf)][np.cumsum(newf) - 1]
        before = walked - ctl - group_base
        first_ctl_t = np.zeros(slots.shape[0], np.int64)
        first_ctl = np.flatnonzero(ctl & (walked - group_base == 1))
        first_ctl_t[f[first_ctl]] = t[first_ctl]
        stored = close_ts[f]
        past_close = ((stored > 0) & (t - stored >= self._closed_ns)) | (
            (before > 0) & (t - first_ctl_t[f] >= self._closed_ns)
        )
        limit_lo = np.where(proto[fo] == PROTO_TCP, self._idle_ns, floor[fo])
        cand = (
            has_prev
            & ((t - prev_t > limit_lo) | past_close | pure_syn[fo])
            & ~self._checked[rs[fo]]
        )
        cidx = np.flatnonzero(cand)
        if cidx.size == 0:
            return None
        fc = f[cidx]
        firstc = np.empty(cidx.size, np.bool_)
        firstc[0] = True
        np.not_equal(fc[1:], fc[:-1], out=firstc[1:])
        cut_at = np.full(slots.shape[0], n, np.int64)
        cut_at[fc[firstc]] = cidx[firstc]
        deferred = np.zeros(n, np.bool_)
        deferred[fo] = np.arange(n) >= cut_at[f]
        cut_pos = fo[cidx[firstc]]
        return Cuts(
            deferred=deferred,
            rows=rs[cut_pos],
            ts=ts[cut_pos],
            slots=slots[flow_of[cut_pos]],
            pure_syn=pure_syn[cut_pos],
        )

    def ended_at(self, cuts: Cuts) -> tuple[I64, I64]:
        """Test the flows at their cuts (the rows before accounted): (idle ones, reopened ones)."""
        cols = self._cols
        self._checked[cuts.rows] = True
        s = cuts.slots
        gone = ended(
            cols,
            s,
            cuts.ts,
            idle_ns=self._idle_ns,
            udp_idle_ns=self._udp_idle_ns,
            icmp_idle_ns=self._icmp_idle_ns,
            closed_ns=self._closed_ns,
            dns_ns=self._dns_ns,
        )
        st = cols.tcp_state[s]
        closed = ((st == CLOSED) | (st == RESET)).any(axis=1)
        reopen = ~gone & cuts.pure_syn & closed & (cols.proto[s] == PROTO_TCP)
        return s[gone], s[reopen]
