"""One capture worker: ring → pipeline → records, an exporter view and a report for its parent."""

from __future__ import annotations

import errno
import logging
import time
from dataclasses import dataclass, field, replace

from analyzers import ActiveFlows, FlowRecord, IdentityMap, warm_up
from capture import FANOUT_FLAG_DEFRAG, FANOUT_HASH, AfPacketSource, BlockWalker, CaptureError
from exporters import (
    CaptureHealth,
    EndedFlows,
    NoticeKey,
    OpenFile,
    RotatingJsonLinesWriter,
    SenderCounters,
    StoreCounters,
)
from mirrorctl.service._assemble import Outputs, assemble
from mirrorctl.service._config import RunConfig
from mirrorctl.service._malloc import reuse_freed_memory

log = logging.getLogger(__name__)


@dataclass(slots=True)
class WorkerReport:
    """What a worker sends its parent each tick (pickled over a pipe): its table's in-flight
    flows, the records of the flows that ended since the last report, its counters."""

    index: int
    active: ActiveFlows
    ended: list[FlowRecord]
    health: CaptureHealth
    final: bool = False
    records_files: list[str] = field(default_factory=list)
    at: float = 0.0  # time.monotonic() when health was read
    evictions: int = 0  # flows its table ended early, so far
    ipfix: dict[str, SenderCounters] = field(default_factory=dict)  # by collector
    notices: dict[NoticeKey, int] = field(default_factory=dict)  # raised so far
    pcap: StoreCounters | None = None  # its pcap store's counters (--pcap-dir)
    pcap_open: OpenFile | None = None  # the file its store is writing, for the listing
    macs: dict[int, int] = field(default_factory=dict)  # address key -> MAC it sends from


def _open_source(
    cfg: RunConfig, fanout: tuple[int, int] | None, *, copy_blocks: bool, walker: BlockWalker
) -> AfPacketSource:
    """Open the ring; with --keep-mirror, wait up to ``wait_iface_s`` for the keeper to create
    the interface (ovs-vswitchd makes mirror0 a moment after the mirror is written)."""
    deadline = time.monotonic() + cfg.wait_iface_s
    while True:
        try:
            return AfPacketSource(
                cfg.iface,
                netns=cfg.netns,
                bpf=cfg.bpf,
                snaplen=cfg.snaplen,
                block_size=cfg.block_size,
                block_count=cfg.block_count,
                coalesce_ms=cfg.coalesce_ms,
                fanout=fanout,
                copy_blocks=copy_blocks,
                walker=walker,
            )
        except CaptureError as e:
            if e.errno != errno.ENODEV or time.monotonic() >= deadline:
                raise
            log.info("%s does not exist yet; waiting for the mirror keeper to create it", cfg.iface)
            time.sleep(0.2)


class Worker:
    """One capture worker: ring → pipeline → records and an exporter view."""

    def __init__(self, cfg: RunConfig, index: int, identity: IdentityMap) -> None:
        self.cfg = cfg
        self.index = index
        self.identity = identity
        outputs = Outputs(
            records_dir=cfg.records,
            records_prefix=f"flows-{cfg.node or 'node'}-w{index}",
            rotate_bytes=cfg.rotate_bytes,
            records_retention=cfg.records_retention,
            records_parquet=True,
            metrics=True,
            # one observation domain per worker: each numbers its own records (RFC 7011 §3.1)
            ipfix=None if cfg.ipfix is None else replace(cfg.ipfix, domain=index),
            notices=cfg.notices,
            notices_prefix=f"notices-{cfg.node or 'node'}-w{index}",
            pcap=None if cfg.pcap is None else replace(cfg.pcap, worker=index),
        )
        self.assembly = assemble(identity, outputs, node=cfg.node, options=cfg.options)
        if self.assembly.ended is None:  # outputs.metrics asks for it: a bug in assemble
            raise RuntimeError("assemble() built no metrics queue")
        self.ended: EndedFlows = self.assembly.ended
        self.pipeline = self.assembly.pipeline
        fanout = None
        if cfg.workers > 1:
            # DEFRAG: the kernel reassembles before hashing, so every fragment of a datagram
            # reaches the worker that holds its flow.
            fanout = (cfg.fanout_group, FANOUT_HASH | FANOUT_FLAG_DEFRAG)
        # Without a pcap store no sink keeps frames past a batch: analysed in the ring itself.
        copy_blocks = self.assembly.keeps_frames
        if not copy_blocks:
            reuse_freed_memory()  # no block copy raises glibc's mmap threshold any more
        # the ring walk decodes each frame as it reaches it: the pipeline takes that decode
        self.source = _open_source(
            cfg, fanout, copy_blocks=copy_blocks, walker=self.pipeline.walker.walk_block
        )

    def warm_up(self) -> None:
        """Load (after an install: compile) the compiled kernels before the first block is
        taken, not midway through the first packets; what arrives meanwhile waits in the ring.
        Called once the service answers health checks, before it says it is capturing."""
        warm_up(self.cfg.options)

    def health(self) -> CaptureHealth:
        stats = self.source.stats()
        return CaptureHealth(
            received=stats.received,
            kernel_dropped=stats.dropped,
            malformed=self.pipeline.malformed(),
            duplicates=self.pipeline.duplicates,
            encapsulated=self.pipeline.encapsulated(),
        )

    def tick(self) -> None:
        self.assembly.tick()

    def finish(self) -> None:
        """Flush every active flow as a record (end_reason ``flush``) and close the files."""
        self.assembly.close()

    def _records_files(self) -> list[str]:
        writer = self.assembly.writer
        if isinstance(writer, RotatingJsonLinesWriter):
            return [str(p) for p in writer.files]
        return []

    def report(self, final: bool = False) -> WorkerReport:
        # The snapshot first, then the drain: a flow ending in between is in the drained list
        # and not in the snapshot (missed for one scrape at most, never counted twice).
        table = self.pipeline.table
        active = table.active_view()
        evictions = table.counters().flows_evicted
        store, macs = self.assembly.store, self.assembly.macs
        return WorkerReport(
            self.index,
            active,
            self.ended.drain(),
            self.health(),
            final,
            self._records_files(),
            time.monotonic(),
            evictions,
            self.ipfix_counters(),
            self.notice_counts(),
            pcap=None if store is None else store.counters(),
            pcap_open=None if store is None else store.open_file(),
            macs={} if macs is None else macs.macs(),
        )

    def ipfix_counters(self) -> dict[str, SenderCounters]:
        """Each IPFIX collector's counters (none without --ipfix)."""
        ipfix = self.assembly.ipfix
        return {} if ipfix is None else ipfix.counters()

    def notice_counts(self) -> dict[NoticeKey, int]:
        """Notices raised so far by note and source pod (none without detectors)."""
        counts = self.assembly.notice_counts
        return {} if counts is None else counts.snapshot()
