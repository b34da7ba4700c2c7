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

from analyzers._cutkernel import find_cuts
from analyzers._decoded import DecodedBatch, Status
from analyzers._flowcolumns import FlowColumns
from analyzers._flowexpiry import dns_flows, ended
from analyzers._flowkey import PROTO_TCP
from analyzers._tcpstate import ACK, CLOSED, RESET, RST, SYN
from capture import FrameBatch

I64 = npt.NDArray[np.int64]
_L4 = int(Status.L4)  # a plain int: comparing a column with an IntEnum costs a conversion


@dataclass(frozen=True, slots=True)
class Cuts:
    """The packets of one pass where a flow may end, one per flow at most."""

    deferred: npt.NDArray[np.bool_]  # per row of the pass: at or after its flow's cut
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
        # rows already tested for ending their flow; made when a batch first needs it (most
        # batches are all known flows' rows and never do)
        self._checked: npt.NDArray[np.bool_] | None = None
        self._rows = 0
        self._limits = np.array([idle_ns, udp_idle_ns, icmp_idle_ns, closed_ns, dns_ns], np.int64)

    def new_batch(self, n: int) -> None:
        """Start a batch of *n* rows: none of them tested yet."""
        self._checked = None
        self._rows = n

    def _tested(self) -> npt.NDArray[np.bool_]:
        if self._checked is None:
            self._checked = np.zeros(self._rows, np.bool_)
        return self._checked

    def find(
        self, batch: FrameBatch, dec: DecodedBatch, rows: I64, flow: I64, slots: I64
    ) -> Cuts | None:
        """The packets of this pass where flows may end; None when no flow can.

        *rows* are the pass's batch rows in arrival order, *flow* each one's flow (an index
        into *slots*).
        """
        cols = self._cols
        cut_at = np.empty(slots.shape[0], np.int64)
        n_cuts = find_cuts(
            rows,
            flow,
            batch.ts_ns,
            dec.proto,
            dec.status,
            dec.tcp_flags,
            cols.last[slots],  # 0: a flow new in this batch
            cols.close_ts[slots],
            dns_flows(cols, slots),
            self._tested(),
            self._limits,
            cut_at,
        )
        if n_cuts == 0:
            return None
        cut_flows = np.flatnonzero(cut_at >= 0)
        at = cut_at[cut_flows]
        deferred = np.arange(rows.shape[0]) >= np.where(cut_at >= 0, cut_at, rows.shape[0])[flow]
        cut_rows = rows[at]
        flags = dec.tcp_flags[cut_rows]
        pure_syn = (
            (dec.proto[cut_rows] == PROTO_TCP)
            & (dec.status[cut_rows] == _L4)
            & ((flags & (SYN | ACK | RST)) == SYN)
        )
        return Cuts(
            deferred=deferred,
            rows=cut_rows,
            ts=batch.ts_ns[cut_rows],
            slots=slots[cut_flows],
            pure_syn=pure_syn,
        )

    def ended_at(self, cuts: Cuts) -> tuple[I64, I64]:
        """Test the flows at their cuts (the rows before accounted): (idle ones, reopened ones)."""
        cols = self._cols
        self._tested()[cuts.rows] = True
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
