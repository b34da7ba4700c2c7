"""`capture run --workers N`: forked capture processes in one fanout group, merged by the parent.

The service forks N capture processes that join one PACKET_FANOUT group (flow-hash, both
directions of a flow reach the same worker); each has its own ring, pipeline, OVSDB identity feed
and records file (``flows-<node>-w<i>-….jsonl``). Every tick a worker sends the parent a snapshot
of its active flows, the flows that ended since the last tick and its health counters over a
pipe; the parent serves /metrics from the merged snapshots, so metrics cover all workers while
records stay per worker (readers concatenate the files).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from analyzers import ActiveFlows, IdentityMap
from capture import CaptureError, CaptureService, MirrorscopeError, stop_on_signals
from exporters import (
    CaptureHealth,
    EndedFlows,
    FlowSnapshot,
    MetricsConfig,
    NoticeKey,
    OpenFile,
    SenderCounters,
    StoreCounters,
    merge_counters,
    merge_notice_counts,
)
from mirrorctl.ovs import MirrorSpec, SpecSource
from mirrorctl.service._config import RunConfig
from mirrorctl.service._feed import start_feed
from mirrorctl.service._pcapserve import PcapView
from mirrorctl.service._received import ReceivedAt
from mirrorctl.service._runtime import TICK_S, announce, netns_gone, serve
from mirrorctl.service._worker import Worker, WorkerReport

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_READY_S = 120.0  # how long the parent waits for a worker to start (and load its kernels)


def _orphan_guard(inherited: list[mpc.Connection]) -> Callable[[], bool]:
    """Make a forked worker notice its parent's death; returns "is the parent gone?".

    A fork inherits the parent's ends of the pipes of the workers forked before it; holding
    them open would keep a sibling's ``send`` blocked forever once the parent is gone, so they
    are closed here. PR_SET_PDEATHSIG turns the parent's death (even SIGKILL) into a SIGTERM,
    which flushes and exits like any other stop.
    """
    for conn in inherited:
        conn.close()
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    return lambda: os.getppid() != parent


def _worker_main(
    cfg: RunConfig,
    index: int,
    conn: mpc.Connection,
    stop_all: Any,
    inherited: list[mpc.Connection],
) -> None:
    """Body of a worker process (``--workers N``): capture, report every tick, flush at the end."""
    orphaned = _orphan_guard(inherited)
    identity = IdentityMap()
    stop = threading.Event()
    _, feed_thread = start_feed(cfg, identity, stop, None)
    try:
        worker = Worker(cfg, index, identity)
        worker.warm_up()  # the parent says "capturing on" once every worker is ready
    except MirrorscopeError as e:
        conn.send(str(e))
        stop.set()
        return
    except Exception as e:  # a bug: the parent reports it as one line, the log has the trace
        log.exception("capture worker %d failed to start", index)
        conn.send(f"{type(e).__name__}: {e}")
        stop.set()
        return
    conn.send("ready")

    def tick() -> None:
        worker.tick()
        if orphaned():
            service.request_stop()  # nobody to report to: flush the records and go
            return
        conn.send(worker.report())
        if stop_all.is_set() or netns_gone(cfg.netns):
            service.request_stop()

    service = CaptureService(
        worker.source, [worker.pipeline], stop=stop, tick=tick, tick_s=TICK_S, duration_s=None
    )
    try:
        with stop_on_signals(service.request_stop):
            service.run()
    except CaptureError as e:
        log.error("capture worker %d: %s", index, e)
    worker.finish()
    if not orphaned():
        conn.send(worker.report(final=True))
    stop.set()
    worker.source.close()
    feed_thread.join(timeout=5)


class _Merged:
    """The parent's view of N workers: a FlowSnapshotSource and a health reader over their
    reports."""

    def __init__(self, workers: int, ended: EndedFlows) -> None:
        self._lock = threading.Lock()
        self._active: dict[int, tuple[ActiveFlows, int]] = {}  # flows, evictions by worker
        self._health: dict[int, CaptureHealth] = {}
        self._ipfix: dict[int, dict[str, SenderCounters]] = {}
        self._notices: dict[int, dict[NoticeKey, int]] = {}
        self._pcap: dict[int, tuple[StoreCounters, OpenFile | None]] = {}
        self._macs: dict[int, int] = {}
        self._ended = ended
        self.finished: set[int] = set()
        self.workers = workers
        self.received_at: ReceivedAt | None = None  # coverage pairs; set once the collector exists

    def take(self, r: WorkerReport) -> None:
        if self.received_at is not None:
            self.received_at.report(r.index, r.at, r.health.received)
        with self._lock:
            self._ended.on_flows_ended(r.ended)
            self._active[r.index] = (r.active, r.evictions)
            self._health[r.index] = r.health
            self._ipfix[r.index] = r.ipfix
            self._notices[r.index] = r.notices
            if r.pcap is not None:
                self._pcap[r.index] = (r.pcap, r.pcap_open)
            self._macs.update(r.macs)
            if r.final:
                self.finished.add(r.index)

    def flow_snapshot(self) -> FlowSnapshot:
        with self._lock:
            reports = list(self._active.values())
        return FlowSnapshot(
            active=ActiveFlows.concat([active for active, _ in reports]),
            evictions=sum(evictions for _, evictions in reports),
        )

    def ipfix_counters(self) -> dict[str, SenderCounters]:
        """Each IPFIX collector's counters summed over the workers' last reports."""
        with self._lock:
            return merge_counters(self._ipfix.values())

    def notice_counts(self) -> dict[NoticeKey, int]:
        """Notices by note and source pod, summed over the workers' last reports."""
        with self._lock:
            return merge_notice_counts(self._notices.values())

    def pcap_stores(self) -> list[StoreCounters]:
        with self._lock:
            return [c for c, _ in self._pcap.values()]

    def pcap_open_files(self) -> list[OpenFile]:
        with self._lock:
            return [f for _, f in self._pcap.values() if f is not None]

    def macs(self) -> dict[int, int]:
        with self._lock:
            return dict(self._macs)

    def health(self) -> CaptureHealth:
        with self._lock:
            hs = list(self._health.values())
        malformed: dict[str, int] = {}
        encapsulated: dict[str, int] = {}
        for h in hs:
            for k, v in h.malformed.items():
                malformed[k] = malformed.get(k, 0) + v
            for k, v in h.encapsulated.items():
                encapsulated[k] = encapsulated.get(k, 0) + v
        return CaptureHealth(
            received=sum(h.received for h in hs),
            kernel_dropped=sum(h.kernel_dropped for h in hs),
            malformed=malformed,
            duplicates=sum(h.duplicates for h in hs),
            encapsulated=encapsulated,
        )


def run_multi(cfg: RunConfig, listen: str, keep: MirrorSpec | SpecSource | None) -> int:
    ctx = mp.get_context("fork")  # workers inherit the parsed config and logging; no re-import
    stop_all = ctx.Event()
    procs: list[tuple[Any, mpc.Connection]] = []
    for i in range(cfg.workers):
        parent_end, child_end = ctx.Pipe(duplex=False)
        inherited = [conn for _, conn in procs]
        p = ctx.Process(
            target=_worker_main,
            args=(cfg, i, child_end, stop_all, inherited),
            name=f"capture-w{i}",
        )
        p.start()
        child_end.close()
        procs.append((p, parent_end))
    try:
        for p, conn in procs:
            try:
                # a worker loads its compiled kernels first: 20-30 s after an install, when it
                # compiles them (the workers at once, on the node's cores)
                msg = conn.recv() if conn.poll(_READY_S) else f"no answer within {_READY_S:.0f} s"
            except EOFError:
                msg = f"it exited with code {p.exitcode}"
            if msg != "ready":
                raise CaptureError(f"capture worker {p.name} failed to start: {msg}")
        identity = IdentityMap()
        stop = threading.Event()
        feed, feed_thread = start_feed(cfg, identity, stop, keep)
        ended = EndedFlows()
        merged = _Merged(cfg.workers, ended)
        running = threading.Event()
        running.set()
        pcap = None
        if cfg.pcap is not None:
            pcap = PcapView(
                config=cfg.pcap, api=cfg.pcap_api, stores=merged.pcap_stores, macs=merged.macs,
                open_files=merged.pcap_open_files, in_process=False,
            )  # fmt: skip
        collector, server, endpoints = serve(
            listen, source=merged, identity=identity,
            metrics=cfg.metrics or MetricsConfig(node=cfg.node), ended=ended,
            health=merged.health, feed=feed, running=running, token=cfg.token,
            ipfix=merged.ipfix_counters if cfg.ipfix is not None else None,
            notices=merged.notice_counts if cfg.notices is not None else None, pcap=pcap,
            records=cfg.records, tls=cfg.tls, peers=cfg.peers,
        )  # fmt: skip
        # The parent's received counter is a report old: pair OVS writes with the workers'
        # counters interpolated to the write instead (see ReceivedAt).
        received_at = ReceivedAt(cfg.workers, collector.observe_coverage)
        merged.received_at = received_at
        feed.on_mirror_sent = lambda sent: received_at.mirror(time.monotonic(), sent)
        announce(cfg)
        started = time.monotonic()
        conns = {conn: p for p, conn in procs}
        with stop_on_signals(stop_all.set):
            while len(merged.finished) < cfg.workers and conns:
                if cfg.duration is not None and time.monotonic() - started >= cfg.duration:
                    stop_all.set()
                for ready in mpc.wait(list(conns), timeout=TICK_S):
                    conn = next(c for c in conns if c is ready)
                    try:
                        msg = conn.recv()
                    except EOFError:
                        proc = conns.pop(conn)
                        log.error("capture worker %s exited early (code %s)", proc.name,
                                  proc.exitcode)  # fmt: skip
                        continue
                    if isinstance(msg, WorkerReport):
                        merged.take(msg)
                        if msg.final:
                            conns.pop(conn)  # its pipe closes next: that EOF is expected
        running.clear()
        stop.set()
        if endpoints is not None:
            endpoints.close()
        if server is not None:
            server.stop()
        feed_thread.join(timeout=5)
        h = merged.health()
        print(
            f"mirrorctl: {cfg.workers} workers captured {h.received} frames "
            f"({h.kernel_dropped} dropped by the kernel)",
            file=sys.stderr,
            flush=True,
        )
        return 0 if len(merged.finished) == cfg.workers else 1
    finally:
        stop_all.set()
        for p, _ in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
