"""The embedding API: flow analysis from Python without knowing how the CLI wires it.

Three shapes, all built by ``assemble`` and all unable to lose the flows still active at the end:

- ``analyse_pcap(path)`` iterates over the records of a file, the flows active at its end
  included (flushed); stopping the iteration early closes the file and is not an error.
- ``Pipeline`` is a context manager fed batches or sources; leaving the block, normally or by an
  exception, flushes every active flow to its sinks.
- ``live_capture(iface)`` captures an interface in a background thread for the duration of a
  ``with`` block; leaving it stops the capture, flushes and closes the socket.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO

from analyzers import (
    FlowRecord,
    IdentityMap,
    NoticeOptions,
    PipelineCounters,
    PipelineOptions,
    warm_up,
)
from capture import (
    AfPacketSource,
    BatchSink,
    BlockWalker,
    CaptureService,
    FrameBatch,
    FrameSource,
)
from mirrorctl.service._assemble import Outputs, assemble, offline_source
from mirrorctl.service._identity import identity_map

log = logging.getLogger(__name__)

Identity = Mapping[str, str] | IdentityMap | None
OnFlows = Callable[[list[FlowRecord]], None]


class _Collect:
    """A FlowSink keeping records until they are taken."""

    def __init__(self) -> None:
        self.records: list[FlowRecord] = []

    def on_flows_ended(self, records: list[FlowRecord]) -> None:
        self.records.extend(records)

    def take(self) -> list[FlowRecord]:
        taken, self.records = self.records, []
        return taken


class _Call:
    """A FlowSink handing every delivery of ended flows to a callable."""

    def __init__(self, on_flows: OnFlows) -> None:
        self._on_flows = on_flows

    def on_flows_ended(self, records: list[FlowRecord]) -> None:
        self._on_flows(records)


def analyse_pcap(
    path: Path | str,
    *,
    identity: Identity = None,
    filter: str | None = None,
    node: str = "",
    options: PipelineOptions | None = None,
    notices: IO[str] | None = None,
) -> Iterator[FlowRecord]:
    """Every flow record of a pcap/pcapng file, the flows still active at its end included.

    With ``notices`` the security detectors run too (default thresholds, packet time), their
    notices written there as JSON lines, as ``capture read --notices`` does.

    ``identity`` names addresses: ``{"10.16.0.5": "ns/pod", "100.64.0.2": "node/NAME"}`` or an
    ``analyzers.IdentityMap``; ``filter`` is a tcpdump expression. Records come as flows end, so
    memory stays bounded by the flow table, not the file.
    """
    collected = _Collect()
    outputs = Outputs(
        sinks=(collected,),
        notices=NoticeOptions() if notices is not None else None,
        notices_stream=notices,
    )
    assembly = assemble(identity_map(identity), outputs, node=node, options=options)
    source = offline_source(path, filter, assembly.pipeline.walker)
    try:
        for batch in source.batches():
            assembly.pipeline.on_batch(batch)
            yield from collected.take()
        assembly.close()  # the flows active at the end of the file
        yield from collected.take()
    finally:
        # Also when the caller stopped early (GeneratorExit): the file is closed, nothing raises.
        source.close()
        assembly.close()


class Pipeline:
    """An analysis pipeline as a context manager: leaving the block flushes every active flow.

    ``on_flows`` receives each delivery of ended flows (a list of ``FlowRecord``); ``records``
    names a directory for rotating JSON-lines files. Feed it with ``feed(batch)`` or
    ``read(source)``; ``tick()`` lets flows end by the wall clock on a quiet source.
    """

    def __init__(
        self,
        *,
        identity: Identity = None,
        on_flows: OnFlows | None = None,
        records: Path | None = None,
        node: str = "",
        options: PipelineOptions | None = None,
    ) -> None:
        sinks = (_Call(on_flows),) if on_flows is not None else ()
        outputs = Outputs(
            records_dir=records, records_prefix=f"flows-{node or 'node'}", sinks=sinks
        )
        self._assembly = assemble(identity_map(identity), outputs, node=node, options=options)

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def batch_sink(self) -> BatchSink:
        """The pipeline as capture's ``BatchSink``, for a ``CaptureService`` of your own."""
        return self._assembly.pipeline

    @property
    def block_walker(self) -> BlockWalker:
        """The ring block walk that decodes each frame as it reaches it, for an
        ``AfPacketSource(walker=...)`` of your own feeding ``batch_sink``: the pipeline then
        takes that decode instead of reading the frames again."""
        return self._assembly.pipeline.walker.walk_block

    def feed(self, batch: FrameBatch) -> None:
        self._assembly.pipeline.on_batch(batch)

    def read(self, source: FrameSource) -> None:
        """Feed ``source`` to its end (the caller closes it)."""
        self._assembly.read(source)

    def tick(self) -> None:
        self._assembly.tick()

    def counters(self) -> PipelineCounters:
        return self._assembly.pipeline.counters()

    def close(self) -> None:
        """Flush every active flow to the sinks and close the record files (idempotent)."""
        self._assembly.close()


class LiveCapture:
    """A running ``live_capture``: its pipeline's counters and the capture thread's error."""

    def __init__(self, pipeline: Pipeline, service: CaptureService) -> None:
        self.pipeline = pipeline
        self._service = service
        self.error: BaseException | None = None

    def counters(self) -> PipelineCounters:
        return self.pipeline.counters()

    def stop(self) -> None:
        """Ask the capture to stop; leaving the ``with`` block does this too."""
        self._service.request_stop()


@contextmanager
def live_capture(
    iface: str,
    *,
    netns: str | None = None,
    filter: str | None = None,
    identity: Identity = None,
    on_flows: OnFlows | None = None,
    records: Path | None = None,
    node: str = "",
    options: PipelineOptions | None = None,
) -> Iterator[LiveCapture]:
    """Capture ``iface`` (in ``netns``) in a background thread while the ``with`` block runs.

    Ended flows go to ``on_flows`` (called from the capture thread, then once more from the
    exiting thread with the flushed flows, never both at once) and/or ``records``. Leaving the
    block, also by an exception, stops the capture, flushes every active flow and closes the
    socket; an error of the capture thread is raised there unless the block raised its own.
    """
    pipeline = Pipeline(
        identity=identity, on_flows=on_flows, records=records, node=node, options=options
    )
    try:
        # Blocks are copied out here, as before: analysing them in place pays only with glibc's
        # mmap threshold raised (the worker's ``reuse_freed_memory``), and the embedding
        # process's allocator is its owner's to set, not ours.
        source = AfPacketSource(iface, netns=netns, bpf=filter, walker=pipeline.block_walker)
    except BaseException:
        pipeline.close()
        raise
    try:  # the kernels load before the first block is taken; meanwhile packets wait in the ring
        warm_up(options if options is not None else PipelineOptions())
    except BaseException:
        source.close()
        pipeline.close()
        raise
    service = CaptureService(source, [pipeline.batch_sink], tick=pipeline.tick)
    live = LiveCapture(pipeline, service)

    def run() -> None:
        try:
            service.run()
        except BaseException as e:  # handed to the exiting thread, which raises it
            live.error = e

    thread = threading.Thread(target=run, name=f"live-capture-{iface}", daemon=True)
    thread.start()
    try:
        yield live
    finally:
        service.request_stop()
        thread.join()
        try:
            pipeline.close()
        finally:
            source.close()
    if live.error is not None:
        raise live.error
