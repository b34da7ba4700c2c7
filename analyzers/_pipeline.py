"""The analysis chain of one capture worker: duplicate suppression, decoding, the flow table.

``AnalysisPipeline`` is capture's ``BatchSink``: each batch is decoded once, its mirrored copies
are masked out, malformed frames are counted by reason, and the surviving rows go through the flow
table in one pass. Flow expiry follows *packet* time (the newest timestamp seen), so reading a pcap
gives the same flows as watching the same packets live; a live service additionally calls
``tick`` with the wall clock so flows still end while the link is quiet. Ended flows go to the
``FlowSink``s given at construction (record writers, the metrics exporter), the flow table's
events (``FlowEvents``) to the ``FlowEventSink``s (the notice detectors); ``FrameSink``s (the pcap
store) get each whole batch with its decode, before duplicates are masked.

Not for concurrent writers without its lock: ``on_batch``, ``tick`` and ``flush`` serialise on
one lock because a service's timer thread and its capture thread both call in.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from analyzers._carriers import carrier_view
from analyzers._decode import decode
from analyzers._decoded import DecodedBatch, Encap, Status
from analyzers._decodewalk import DecodingWalker
from analyzers._dedup import DEFAULT_WINDOW_NS, Deduplicator
from analyzers._flowevents import FlowEventSink
from analyzers._flowoptions import FlowTableOptions
from analyzers._flowtable import FlowTable
from analyzers._identity import IdentityMap
from analyzers._records import FlowRecord, FlowSink
from analyzers._share import share_rows
from analyzers._statuscount import count_statuses
from capture import FrameBatch

_NS = 1_000_000_000
_MALFORMED = int(Status.MALFORMED)
_CODES = 32  # every Status value is below this


@dataclass(frozen=True, slots=True)
class PipelineOptions(FlowTableOptions):
    """The flow table's options (``FlowTableOptions``) plus the pipeline's own; the defaults
    are the service's."""

    #: How often, in packet time, ended flows are swept out of the table.
    expire_every_s: float = 1.0
    #: Suppress mirrored copies (routed/NATed packets OVS mirrors twice); 0 turns it off.
    dedup_window_ns: int = DEFAULT_WINDOW_NS
    #: Analyse only share ``index`` of ``count`` of the flows (``_share``): N pipelines over the
    #: same frames, one share each, give together the records of one pipeline over all of them.
    share: tuple[int, int] = (0, 1)


@dataclass(frozen=True, slots=True)
class PipelineCounters:
    """Cumulative counters of one pipeline (what ``capture read`` summarises, metrics export)."""

    packets: int  # frames handed to the pipeline
    malformed: dict[str, int]  # by lower-case ``Status`` name
    duplicates: int  # mirrored copies suppressed
    flows_created: int
    flows_active: int
    flows_ended: int  # records delivered (every end reason, incl. active-timeout slices)
    records_by_proto: dict[str, int]  # delivered records by ``proto``


def _reason(code: int) -> str:
    try:
        return Status(code).name.lower()
    except ValueError:  # a code newer than this module: still counted, under its number
        return f"status_{code}"


class FrameSink(Protocol):
    """Receives every batch before duplicate suppression, with the pipeline's one decode of it
    (a pcap store must keep what crossed the wire, not what the analysis counts)."""

    def on_frames(self, batch: FrameBatch, decoded: DecodedBatch) -> None: ...


class _Count:
    """A FlowSink that only counts: the pipeline's own view of what it delivered."""

    def __init__(self) -> None:
        self.by_proto: dict[str, int] = {}
        self.total = 0

    def on_flows_ended(self, records: list[FlowRecord]) -> None:
        self.total += len(records)
        for r in records:
            self.by_proto[r.proto] = self.by_proto.get(r.proto, 0) + 1


class AnalysisPipeline:
    """dedup → decode → flow table for every batch; ended flows to ``sinks``."""

    def __init__(
        self,
        identity: IdentityMap,
        sinks: Sequence[FlowSink] = (),
        *,
        node: str = "",
        options: PipelineOptions | None = None,
        uid_seed: bytes | None = None,
        event_sinks: Sequence[FlowEventSink] = (),
        frame_sinks: Sequence[FrameSink] = (),
    ) -> None:
        opts = options if options is not None else PipelineOptions()
        self.options = opts
        self._count = _Count()
        self.table = FlowTable(
            identity,
            options=opts,
            on_ended=[self._count, *sinks],
            node=node,
            uid_seed=uid_seed,
            on_events=event_sinks,
        )
        self._frame_sinks = tuple(frame_sinks)
        #: A pcap file's record walk that decodes as it goes (``capture.RecordWalker``): a file
        #: opened with it hands this pipeline batches already decoded, read once from memory.
        self.walker = DecodingWalker()
        self._dedup = Deduplicator(opts.dedup_window_ns) if opts.dedup_window_ns > 0 else None
        self._expire_every_ns = max(int(opts.expire_every_s * _NS), 1)
        self._lock = threading.Lock()
        self._packets = 0
        self._status_counts = np.zeros(_CODES, np.int64)
        self._encap_counts = np.zeros(len(Encap), np.int64)
        self._clock_ns = 0  # newest packet (or tick) time seen
        self._next_expire_ns = 0

    # --- BatchSink -------------------------------------------------------------------------------
    def on_batch(self, batch: FrameBatch) -> None:
        """Account one batch; sweeps the table when packet time passed the next expiry."""
        n = len(batch)
        if n == 0:
            return
        with self._lock:
            dec = self.walker.take(batch)
            if dec is None:
                dec = decode(batch)
            index, count = self.options.share
            mine = share_rows(dec, index, count) if count > 1 else None
            status = dec.status if mine is None else dec.status[mine]
            encap = dec.encap if mine is None else dec.encap[mine]
            self._packets += int(status.shape[0])
            present = count_statuses(status, encap, self._status_counts)
            self._count_encapsulations(encap, present)
            for sink in self._frame_sinks:
                sink.on_frames(batch, dec)
            # every share looks for copies among all the frames, so it drops exactly the copies
            # one pipeline over all of them would, whichever share their original went to
            copies = self._dedup.mask(batch, dec) if self._dedup is not None else None
            keep = copies
            if mine is not None:
                keep = mine if keep is None else keep & mine
            self.table.process(batch, dec, keep)
            # a carrier is a tunnel's: a batch without encapsulations has none (a share's
            # frames say nothing of the others')
            carriers = carrier_view(dec) if present or mine is not None else None
            if carriers is not None:  # Teredo/AYIYA/GRE-over-UDP datagrams: flows of their own
                outer, rows = carriers
                if copies is not None:
                    rows &= copies
                if count > 1:  # a carrier's share is its own flow's, not the inner one's
                    rows &= share_rows(outer, index, count)
                self.table.process(batch, outer, rows)
            newest = int(batch.ts_ns.max())
            self._clock_ns = max(self._clock_ns, newest)
            self._maybe_expire()

    # --- timers and shutdown ---------------------------------------------------------------------
    def tick(self, now_ns: int) -> None:
        """Advance the clock to ``now_ns`` (if later) and expire: keeps a quiet live link honest."""
        with self._lock:
            self._clock_ns = max(self._clock_ns, now_ns)
            self._maybe_expire()

    def flush(self) -> None:
        """End every active flow (end_reason ``flush``): at EOF and on shutdown nothing is lost."""
        with self._lock:
            # flows already timed out at the last packet end as they would have with later
            # traffic: the records do not depend on where the last sweep fell
            self.table.expire(self._clock_ns)
            self.table.flush()

    def _count_encapsulations(self, encap: npt.NDArray[np.uint32], present: int) -> None:
        """Add each frame to the count of every encapsulation bit it has: one count per bit the
        batch has at all (*present*: few, usually none)."""
        for bit in range(len(Encap) if present else 0):
            if present >> bit & 1:
                self._encap_counts[bit] += int(np.count_nonzero(encap & np.uint32(1 << bit)))

    def _maybe_expire(self) -> None:
        if self._clock_ns >= self._next_expire_ns:
            self.table.expire(self._clock_ns)
            self._next_expire_ns = self._clock_ns + self._expire_every_ns

    # --- readers ---------------------------------------------------------------------------------
    @property
    def duplicates(self) -> int:
        return self._dedup.suppressed if self._dedup is not None else 0

    def malformed(self) -> dict[str, int]:
        """Malformed frames so far by reason (lower-case ``Status`` names, non-zero only)."""
        counts = self._status_counts
        return {
            _reason(int(code)): int(counts[code])
            for code in np.flatnonzero(counts[_MALFORMED:]) + _MALFORMED
        }

    def encapsulated(self) -> dict[str, int]:
        """Frames so far by each encapsulation they crossed (lower-case ``Encap`` names)."""
        return {
            str(Encap(1 << bit).name).lower(): int(n)
            for bit, n in enumerate(self._encap_counts.tolist())
            if n
        }

    def counters(self) -> PipelineCounters:
        tc = self.table.counters()
        return PipelineCounters(
            packets=self._packets,
            malformed=self.malformed(),
            duplicates=self.duplicates,
            flows_created=tc.flows_created,
            flows_active=tc.flows_active,
            flows_ended=self._count.total,
            records_by_proto=dict(self._count.by_proto),
        )
