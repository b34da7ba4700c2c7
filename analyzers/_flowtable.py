"""The bidirectional flow table: Zeek conn.log flows, updated a decoded batch at a time.

Per batch: canonical keys and a 63-bit hash per row (``_flowkey``), a compiled grouping of the
rows by flow (on the full key) and direction, time order kept inside each group
(``_groupkernel``), a lookup per *unique* flow of the batch (not per packet, exact despite hash
clashes), then one walk accounting each row's packet and bytes (``_accountkernel``) into the
slot-indexed columns (``_flowcolumns``). TCP goes to ``_flowtcp``, DNS payloads to
``_flowdns``; flows end by timeout or eviction (``_flowexpiry``) and become ``FlowRecord``
objects only then (``_flowrecords``). A flow ending inside a batch is cut there (``_flowcuts``);
a new flow's slot is set up by ``_flowslots``. ``active_view`` is the exporter's snapshot
(``_activeflows``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from analyzers._accountkernel import account
from analyzers._activeflows import ActiveFlows, active_flows
from analyzers._decoded import DecodedBatch, Status
from analyzers._flowcolumns import FlowColumns
from analyzers._flowcuts import BatchCuts
from analyzers._flowdns import dns_rows
from analyzers._flowemit import FlowEventEmitter
from analyzers._flowevents import FlowEventSink
from analyzers._flowexpiry import eviction_victims, timed_out
from analyzers._flowicmp import IcmpFirstTypes
from analyzers._flowindex import FlowIndex
from analyzers._flowkey import PROTO_TCP, PROTO_UDP, FlowKeys, flow_keys
from analyzers._flowoptions import FlowTableOptions
from analyzers._flowrecords import build_records
from analyzers._flowslots import init_slots
from analyzers._flowtcp import tcp_rows
from analyzers._flowtunnels import FlowTunnels
from analyzers._groupkernel import group
from analyzers._identity import IdentityMap
from analyzers._iprows import kept_ip_rows
from analyzers._knownflows import KnownFlows
from analyzers._recordjson import join_deliveries
from analyzers._records import FlowRecord, FlowSink
from capture import FrameBatch

log = logging.getLogger(__name__)

I64 = npt.NDArray[np.int64]
END_REASONS = ("idle", "active", "end", "evicted", "flush")
_NS = 1_000_000_000
_L4 = int(Status.L4)  # a plain int: comparing a column with an IntEnum costs a conversion
_EVERY = np.zeros(0, np.bool_)  # kept_ip_rows' keep mask for every row


@dataclass(frozen=True, slots=True)
class FlowTableCounters:
    """Cumulative counters since the table was created."""

    flows_created: int
    flows_ended: dict[str, int]  # by end_reason
    flows_evicted: int
    flows_active: int
    packets_counted: int
    packets_not_ip: int
    dns_unparsed: int
    hash_collisions: int


class FlowTable:
    """Bidirectional flows with Zeek conn.log semantics, fed by decoded batches.

    Not thread-safe for writers: one worker calls ``process``/``expire``/``flush``. Readers
    (``active_view``, ``counters``) may run in another thread; they take a short lock.
    """

    def __init__(
        self,
        identity: IdentityMap,
        *,
        options: FlowTableOptions | None = None,
        on_ended: Callable[[list[FlowRecord]], None] | Sequence[FlowSink] | None = None,
        node: str = "",
        uid_seed: bytes | None = None,
        on_events: Sequence[FlowEventSink] = (),
    ) -> None:
        opts = options if options is not None else FlowTableOptions()
        max_flows = opts.max_flows
        self._identity = identity
        self._idle_ns = int(opts.idle_timeout_s * _NS)
        self._udp_idle_ns = int(opts.udp_idle_timeout_s * _NS)
        self._icmp_idle_ns = int(opts.icmp_idle_timeout_s * _NS)
        self._closed_ns = int(opts.tcp_closed_timeout_s * _NS)
        self._active_ns = int(opts.active_timeout_s * _NS)
        self._dns_ns = int(opts.dns_session_timeout_s * _NS)
        self._max = max_flows
        self._node = node
        self._seed = uid_seed if uid_seed is not None else os.urandom(16)
        if on_ended is None:
            self._sinks: list[Callable[[list[FlowRecord]], None]] = []
        elif callable(on_ended):
            self._sinks = [on_ended]
        else:
            self._sinks = [s.on_flows_ended for s in on_ended]
        self._lock = threading.Lock()
        self._cols = FlowColumns(max_flows)
        self._index = FlowIndex(self._cols)
        self._tunnels = FlowTunnels()
        self._icmp_first = IcmpFirstTypes()
        self._n_active = 0
        self._created = 0
        self._ended = dict.fromkeys(END_REASONS, 0)
        self._evicted = 0
        self._pkts_counted = 0
        self._not_ip = 0
        self._dns_bad = 0
        self._collisions = 0
        self._pending: list[list[FlowRecord]] = []  # ended while processing, delivered after
        self._cuts = BatchCuts(
            self._cols,
            self._idle_ns,
            self._udp_idle_ns,
            self._icmp_idle_ns,
            self._closed_ns,
            self._dns_ns,
        )
        self._emit = FlowEventEmitter(self._cols, int(opts.tcp_attempt_timeout_s * _NS))
        self._event_sinks = list(on_events)
        self._known = KnownFlows(
            self._cols,
            self._index,
            self._emit,
            udp_idle_ns=self._udp_idle_ns,
            icmp_idle_ns=self._icmp_idle_ns,
            tcp_idle_ns=self._idle_ns,
        )

    # ------------------------------------------------------------------ readers
    def __len__(self) -> int:
        return self._n_active

    def counters(self) -> FlowTableCounters:
        with self._lock:
            return FlowTableCounters(
                flows_created=self._created,
                flows_ended=dict(self._ended),
                flows_evicted=self._evicted,
                flows_active=self._n_active,
                packets_counted=self._pkts_counted,
                packets_not_ip=self._not_ip,
                dns_unparsed=self._dns_bad,
                hash_collisions=self._collisions,
            )

    def active_view(self) -> ActiveFlows:
        """Copy the counters of every in-flight flow (see ``active_flows``)."""
        return active_flows(self._cols, self._lock)

    def active_records(self, since_ns: int = 0) -> list[FlowRecord]:
        """Records of the in-flight flows with a packet after *since_ns*, as they stand now.

        The flows go on (same uid, counters not reset): an exporter's interim records of long
        flows. ``end_reason`` is ``active``.
        """
        with self._lock:
            c = self._cols
            s = np.flatnonzero(c.active[: c.hwm] & (c.last[: c.hwm] > since_ns))
            return self._records(s, "active")

    # ------------------------------------------------------------------ hot path
    def process(
        self, batch: FrameBatch, dec: DecodedBatch, keep: npt.NDArray[Any] | None = None
    ) -> None:
        """Account every row of *dec* (or the rows *keep* selects: a bool mask or indices)."""
        if keep is None:
            keep = _EVERY
        elif keep.dtype != np.bool_:
            keep = np.isin(np.arange(len(dec)), keep)
        rows, not_ip = kept_ip_rows(dec.status, keep)
        with self._lock:
            self._cuts.new_batch(len(dec))
            self._not_ip += not_ip
            if rows.size and self._cols.free_count() >= rows.size:
                # no flow is evicted in this batch, so the known flows' rows may go first
                rows, known = self._known.account(batch, dec, rows, events=bool(self._event_sinks))
                self._pkts_counted += known
            if rows.size:
                self._process_rows(batch, dec, rows)
            pending, self._pending = self._pending, []
        self._deliver(join_deliveries(pending))

    def _process_rows(self, batch: FrameBatch, dec: DecodedBatch, rows: I64) -> None:
        # rows whose flow shares its 63-bit hash with another flow of the same batch come back
        # from a pass and go through another one, until none is left: grouping stays exact
        # a pass never sees more rows than max_flows, so the flows it touches always fit
        for start in range(0, rows.shape[0], self._max):
            chunk = rows[start : start + self._max]
            while chunk.size:
                chunk = self._pass(batch, dec, chunk)

    def _pass(self, batch: FrameBatch, dec: DecodedBatch, rows: I64) -> I64:
        """Account *rows*; return the rows it had to leave out (an in-batch hash clash)."""
        keys = flow_keys(dec, rows)
        n = rows.shape[0]
        g = group(keys)
        if g.wait is not None:
            # the index holds one flow per hash: a flow whose hash an earlier flow of the pass
            # has waits, whole, for the next pass
            kept = rows[~g.wait]
            while kept.size:
                kept = self._pass(batch, dec, kept)
            return rows[g.wait]
        perm, flow_of, breaks, flow, first_pos = g.perm, g.flow_of, g.breaks, g.flow, g.first
        nf = first_pos.shape[0]
        slots = self._lookup(keys, keys.hash63[first_pos] >> np.uint64(1), first_pos, g.keys, dec)
        later = self._split_at_ends(batch, dec, rows, flow, slots)
        if later is not None:
            return later
        cols = self._cols
        sorted_i = np.empty((5, n), np.int64).T  # each field a contiguous column
        g_sums = np.empty((n, 5), np.int64)
        f_time = np.empty((nf, 2), np.int64)
        ng = account(
            perm,
            rows,
            flow_of,
            breaks,
            slots,
            keys.src_is_a,
            cols.orig_a,
            batch.ts_ns,
            batch.wirelens,
            dec.ip_len,
            dec.l4_len,
            sorted_i,
            g_sums,
            f_time,
        )
        rsorted, slot_sorted, dir_sorted, ts, l4len = sorted_i.T
        cols.stretch_times(slots, f_time)
        cols.add_sums(g_sums[:ng])
        self._pkts_counted += n
        proto = dec.proto[rsorted]
        l4 = dec.status[rsorted] == _L4
        tcp = l4 & (proto == PROTO_TCP)
        if tcp.any():
            tcp_rows(cols, dec, rsorted, tcp, slot_sorted, dir_sorted, ts, l4len)
        port53 = (keys.sport == 53) | (keys.dport == 53)
        if port53.any():
            p53 = port53[perm]
            dns = p53 & l4 & ((proto == PROTO_UDP) | tcp) & (l4len > 0)
            if dns.any():
                self._dns_bad += dns_rows(cols.dns, batch, dec, rsorted, dns, slot_sorted, ts, tcp)
        if self._event_sinks:
            self._emit.check(slots)
        return rows[:0]

    def _split_at_ends(
        self, batch: FrameBatch, dec: DecodedBatch, rows: I64, flow: I64, slots: I64
    ) -> I64 | None:
        """End flows at the packet of this batch where they end (``_flowcuts``); None if none.

        The rows before each cut are accounted first; the rows from it on are returned.
        """
        cuts = self._cuts.find(batch, dec, rows, flow, slots)
        if cuts is None:
            return None
        kept = rows[~cuts.deferred]
        while kept.size:
            kept = self._pass(batch, dec, kept)
        gone, reopen = self._cuts.ended_at(cuts)
        self._pending.append(self._end(gone, "idle"))
        self._pending.append(self._end(reopen, "end"))
        return rows[cuts.deferred]

    def _lookup(
        self,
        keys: FlowKeys,
        uh: npt.NDArray[np.uint64],
        first_pos: I64,
        canon: npt.NDArray[np.uint64],
        dec: DecodedBatch,
    ) -> I64:
        """Slot of each unique flow of the batch, creating slots for new flows."""
        slots, need, clash = self._index.find(uh, first_pos, canon)
        if need.size:
            new_slots = self._alloc(need.size, busy=slots[slots >= 0])
            slots[need] = new_slots
            r = first_pos[need]
            init_slots(
                self._cols,
                keys,
                r,
                new_slots,
                dec,
                canon=canon[need],
                identity=self._identity,
                emit=self._emit,
                tunnels=self._tunnels,
                icmp_first=self._icmp_first,
            )
            self._index.add(canon[need], uh[need], new_slots, clash)
            self._collisions += int(np.count_nonzero(clash))
            self._created += new_slots.size
            self._n_active += new_slots.size
        return slots

    def _alloc(self, k: int, busy: I64) -> I64:
        """*k* free slots, evicting idle flows if needed (never the *busy* ones of this pass)."""
        free_n = self._cols.free_count()
        if free_n < k:
            self._evict(k - free_n, busy)
        return self._cols.take(k)

    # ------------------------------------------------------------------ ending flows
    def expire(self, now_ns: int) -> int:
        """End flows idle or active too long at packet time *now_ns*; returns how many ended."""
        with self._lock:
            idle, too_long = timed_out(
                self._cols,
                now_ns,
                idle_ns=self._idle_ns,
                udp_idle_ns=self._udp_idle_ns,
                icmp_idle_ns=self._icmp_idle_ns,
                closed_ns=self._closed_ns,
                active_ns=self._active_ns,
                dns_ns=self._dns_ns,
            )
            records = join_deliveries([self._end(idle, "idle"), self._slice(too_long)])
            if self._event_sinks:
                self._emit.unanswered(now_ns)
        self._deliver(records)
        return len(records)

    def flush(self) -> None:
        """End every active flow (shutdown: nothing is lost)."""
        with self._lock:
            records = self._end(np.flatnonzero(self._cols.active[: self._cols.hwm]), "flush")
        self._deliver(records)

    def _evict(self, k: int, busy: I64) -> None:
        victims = eviction_victims(self._cols, k, busy)
        self._evicted += victims.size
        self._pending.append(self._end(victims, "evicted"))

    def _deliver(self, records: list[FlowRecord]) -> None:
        # records first: a sink of events sees ENDED rows of flows the record sinks already have
        if records:
            for sink in self._sinks:
                sink(records)
        events = self._emit.take()
        if events is not None:
            for ev_sink in self._event_sinks:
                ev_sink.on_flow_events(events)

    def _slice(self, s: I64) -> list[FlowRecord]:
        """Active timeout: report the flow so far, then keep tracking it as a new record."""
        if s.size == 0:
            return []
        records = self._records(s, "active")
        self._cols.new_ids(s)
        self._cols.reset_counters(s)
        self._ended["active"] += s.size
        return records

    def _end(self, s: I64, reason: str) -> list[FlowRecord]:
        if s.size == 0:
            return []
        cols = self._cols
        has_pkts = cols.pkts[s].sum(axis=1) > 0
        records = self._records(s[has_pkts], reason)
        if self._event_sinks:
            self._emit.check(s)
            self._emit.ended(s[has_pkts], records)
        self._ended[reason] += int(has_pkts.sum())
        self._index.remove(s)
        self._tunnels.forget(s)
        self._icmp_first.forget(s)
        cols.release(s)
        self._n_active -= s.size
        return records

    def _records(self, s: I64, reason: str) -> list[FlowRecord]:
        return build_records(
            self._cols,
            s,
            reason,
            identity=self._identity,
            tunnels=self._tunnels,
            icmp_first=self._icmp_first,
            seed=self._seed,
            node=self._node,
        )
