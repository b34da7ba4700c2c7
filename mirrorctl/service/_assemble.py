"""The one place that wires a frame source to an analysis pipeline and the pipeline to its sinks.

``capture run`` (one worker or N), ``capture read``, the embedding API and the benchmark all build
their pipeline here, so a new sink (a pcap store, IPFIX) is one field of ``Outputs`` and one branch
of ``assemble``. ``Assembly.close`` flushes the flows still in the table before it closes the
record writers: a caller cannot close the files and lose the active flows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from analyzers import (
    AnalysisPipeline,
    FlowRecord,
    FlowSink,
    FrameSink,
    IdentityMap,
    NoticeDetectors,
    NoticeOptions,
    NoticeSink,
    PipelineOptions,
    json_lines,
)
from capture import (
    CaptureError,
    CaptureService,
    FilteredSource,
    FrameSource,
    ReadAhead,
    RecordWalker,
    ServiceResult,
    open_capture_file,
)
from exporters import (
    DEFAULT_MAX_BYTES,
    EndedFlows,
    IpfixExporter,
    IpfixOptions,
    JsonLinesWriter,
    MacTable,
    NoticeCounts,
    NoticeLog,
    PcapStore,
    RecordsRetention,
    RotatingJsonLinesWriter,
    StoreConfig,
)


@dataclass(frozen=True, slots=True)
class Outputs:
    """Where a pipeline's ended flows go; every field left at its default is a sink not built."""

    #: JSON lines into one open stream the caller owns (``capture read`` → stdout).
    records_stream: IO[str] | None = None
    #: JSON lines into rotating files in this directory (``capture run --records``).
    records_dir: Path | None = None
    records_prefix: str = "flows"
    rotate_bytes: int = DEFAULT_MAX_BYTES
    #: Quota and age of the records directory, enforced at every rotation.
    records_retention: RecordsRetention | None = None
    #: Rewrite each completed records file as Parquet (what reports read fastest).
    records_parquet: bool = False
    #: Queue ended flows for the Prometheus collector (``capture run``'s /metrics).
    metrics: bool = False
    #: Send ended flows, and running flows every active timeout, to IPFIX collectors.
    ipfix: IpfixOptions | None = None
    #: The caller's own sinks, after the built ones (the bench's audit, an embedding callback).
    sinks: tuple[FlowSink, ...] = ()
    #: Run the notice detectors; their log goes beside the records (``records_dir``, as
    #: ``notices_prefix``) or into ``notices_stream``, their counts to /metrics with ``metrics``.
    notices: NoticeOptions | None = None
    notices_stream: IO[str] | None = None
    notices_prefix: str = "notices"
    #: Store every frame, before duplicate suppression, in rotating pcap files (``--pcap-dir``);
    #: also learns each address's MAC, which a pod's download needs for its ARP and ND.
    pcap: StoreConfig | None = None


class Assembly:
    """A pipeline and the sinks ``assemble`` built for it; ``close`` flushes, then closes."""

    def __init__(
        self,
        pipeline: AnalysisPipeline,
        writer: JsonLinesWriter[FlowRecord] | RotatingJsonLinesWriter[FlowRecord] | None,
        ended: EndedFlows | None,
        ipfix: IpfixExporter | None = None,
        *,
        detectors: NoticeDetectors | None = None,
        notice_log: NoticeLog | None = None,
        notice_counts: NoticeCounts | None = None,
        store: PcapStore | None = None,
        macs: MacTable | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.writer = writer
        self.ended = ended
        self.ipfix = ipfix
        self.detectors = detectors
        self.notice_log = notice_log
        self.notice_counts = notice_counts
        self.store = store
        self.macs = macs
        self._interim_ns = time.time_ns()  # running flows' last interim records (IPFIX)
        self._closed = False
        self._lock = threading.Lock()

    @property
    def keeps_frames(self) -> bool:
        """Whether a sink keeps a batch's frames past the batch (the pcap store's writer thread
        packs them later): its live source must then copy each ring block out
        (``AfPacketSource``'s ``copy_blocks``), the others may hand out views of the ring."""
        return self.store is not None

    def read(self, source: FrameSource) -> ServiceResult:
        """Feed ``source`` to the end (a file); its flows stay in the table until ``close``."""
        return CaptureService(source, [self.pipeline]).run()

    def read_files(self, paths: Iterable[Path | str], bpf: str | None = None) -> list[CaptureError]:
        """Feed each file in turn (``offline_source``); a file that cannot be read to the end
        is reported and the next one read (the flows decoded before the damage stay in the
        table, for ``close``). Returns the files' errors."""
        errors: list[CaptureError] = []
        for path in paths:
            try:
                source = offline_source(path, bpf, self.pipeline.walker)
                try:
                    self.read(source)
                finally:
                    source.close()
            except CaptureError as e:
                errors.append(e)
        return errors

    def tick(self) -> None:
        """The wall clock's turn: flows end on a quiet link, a records file rotates when due,
        running flows go to IPFIX every active timeout, a pcap file closes when old enough."""
        now = time.time_ns()
        self.pipeline.tick(now)
        if self.store is not None:
            self.store.tick()
        if isinstance(self.writer, RotatingJsonLinesWriter):
            self.writer.rotate_if_due()
        if self.notice_log is not None:
            self.notice_log.rotate_if_due()
        ipfix = self.ipfix
        if ipfix is not None and now - self._interim_ns >= ipfix.active_timeout_s * 1e9:
            ipfix.on_interim(self.pipeline.table.active_records(self._interim_ns))
            self._interim_ns = now

    def close(self) -> None:
        """Flush every active flow to the sinks (end reason ``flush``), then close the writer.

        Idempotent: the second call does nothing, so an error path and a ``finally`` may both
        call it.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self.pipeline.flush()
        finally:
            if self.writer is not None:
                self.writer.close()
            if self.notice_log is not None:
                self.notice_log.close()
            if self.ipfix is not None:
                self.ipfix.close()
            if self.store is not None:
                self.store.close()


def assemble(
    identity: IdentityMap,
    outputs: Outputs,
    *,
    node: str = "",
    options: PipelineOptions | None = None,
) -> Assembly:
    """Build the analysis pipeline and the sinks ``outputs`` names."""
    writer: JsonLinesWriter[FlowRecord] | RotatingJsonLinesWriter[FlowRecord] | None = None
    if outputs.records_dir is not None:
        writer = RotatingJsonLinesWriter(
            outputs.records_dir,
            prefix=outputs.records_prefix,
            max_bytes=outputs.rotate_bytes,
            retention=outputs.records_retention,
            parquet=outputs.records_parquet,
            lines=json_lines,
        )
    elif outputs.records_stream is not None:
        writer = JsonLinesWriter(outputs.records_stream, json_lines)
    ended = EndedFlows() if outputs.metrics else None
    ipfix = IpfixExporter(outputs.ipfix) if outputs.ipfix is not None else None
    sinks: list[FlowSink] = []
    if writer is not None:
        sinks.append(writer)
    if ended is not None:
        sinks.append(ended)
    if ipfix is not None:
        sinks.append(ipfix)
    sinks.extend(outputs.sinks)
    detectors, notice_log, counts = _notices(outputs, node)
    store = PcapStore(outputs.pcap) if outputs.pcap is not None else None
    macs = MacTable() if store is not None else None
    frame_sinks: list[FrameSink] = [s for s in (store, macs) if s is not None]
    pipeline = AnalysisPipeline(
        identity,
        sinks,
        node=node,
        options=options or PipelineOptions(),
        event_sinks=[detectors] if detectors is not None else (),
        frame_sinks=frame_sinks,
    )
    return Assembly(
        pipeline,
        writer,
        ended,
        ipfix,
        detectors=detectors,
        notice_log=notice_log,
        notice_counts=counts,
        store=store,
        macs=macs,
    )


def _notices(
    outputs: Outputs, node: str
) -> tuple[NoticeDetectors | None, NoticeLog | None, NoticeCounts | None]:
    """The detectors and the sinks of their notices (a log, the metrics' counts)."""
    if outputs.notices is None:
        return None, None, None
    log: NoticeLog | None = None
    if outputs.records_dir is not None:
        log = NoticeLog(
            RotatingJsonLinesWriter(
                outputs.records_dir,
                prefix=outputs.notices_prefix,
                max_bytes=outputs.rotate_bytes,
                retention=outputs.records_retention,
            )
        )
    elif outputs.notices_stream is not None:
        log = NoticeLog(JsonLinesWriter(outputs.notices_stream))
    counts = NoticeCounts() if outputs.metrics else None
    sinks: list[NoticeSink] = [s for s in (log, counts) if s is not None]
    return NoticeDetectors(outputs.notices, sinks, node=node), log, counts


def offline_source(
    path: Path | str, bpf: str | None = None, walker: RecordWalker | None = None
) -> FrameSource:
    """A pcap or pcapng file as a frame source, through ``bpf`` (tcpdump syntax) when given;
    *walker* walks a pcap file's records (the pipeline's ``walker`` decodes as it walks:
    unfiltered only, a filter hands on new batches that must be decoded anyway). The next
    batches are read on a thread of their own while the current one is analysed."""
    source: FrameSource = open_capture_file(path, walker=None if bpf else walker)
    if bpf:
        try:
            source = FilteredSource(source, bpf)
        except BaseException:
            source.close()
            raise
    return ReadAhead(source)
