"""`capture run` with one worker: the service composed in this process.

The frame source feeds the worker's pipeline through ``CaptureService``; the OVSDB feed (and,
with --keep-mirror, the mirror keeper) runs beside it in a thread; /metrics reads the worker's
flow table. ``serve``, ``announce`` and ``netns_gone`` also serve the --workers N parent and
workers.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from analyzers import IdentityMap
from capture import CaptureError, CaptureService, netns_path, stop_on_signals
from exporters import (
    CaptureHealth,
    EndedFlows,
    FlowMetricsCollector,
    FlowSnapshotSource,
    FlowTableSource,
    IpfixMetricsCollector,
    MetricsConfig,
    NoticeKey,
    NoticeMetricsCollector,
    OpenFile,
    PcapStore,
    SenderCounters,
    TlsFiles,
)
from mirrorctl.ovs import MirrorSpec, SpecSource
from mirrorctl.service._config import RunConfig
from mirrorctl.service._feed import OvsdbFeed, start_feed
from mirrorctl.service._pcapserve import PcapEndpoints, PcapView
from mirrorctl.service._worker import Worker

if TYPE_CHECKING:
    from exporters import HttpServer

log = logging.getLogger(__name__)

TICK_S = 1.0
#: Ended flows queued for the exporter beyond this are folded into its totals without a scrape,
#: so a service nobody scrapes does not grow without bound.
_ENDED_FOLD_AT = 50_000


def serve(
    listen: str,
    *,
    source: FlowSnapshotSource,
    identity: IdentityMap,
    metrics: MetricsConfig,
    ended: EndedFlows,
    health: Callable[[], CaptureHealth],
    feed: OvsdbFeed,
    running: threading.Event,
    ipfix: Callable[[], Mapping[str, SenderCounters]] | None = None,
    token: str | None = None,
    notices: Callable[[], Mapping[NoticeKey, int]] | None = None,
    pcap: PcapView | None = None,
    records: Path | None = None,
    tls: TlsFiles | None = None,
    peers: tuple[str, ...] = (),
) -> tuple[FlowMetricsCollector, HttpServer | None, PcapEndpoints | None]:
    """The collector of ``source``, the listener serving it on ``listen`` (unless "off"), and
    the pcap endpoints when ``pcap`` (``--pcap-dir``) is given (the caller closes them).

    ``token`` guards every path but /metrics, /healthz, /readyz and the page shell /; without one
    the API is open. ``records`` (the records directory) and ``source``'s active flows answer the
    flows API and /report. ``tls`` makes the listener HTTPS only; the page links each pod to
    the same pod on ``peers`` (the other nodes' services).
    """
    from prometheus_client import CollectorRegistry  # noqa: PLC0415 - only the service needs it

    collector = FlowMetricsCollector(
        source,
        identity,
        metrics,
        ended=ended,
        health=health,
        mirror_tx_packets=feed.mirror_tx_packets,
        scrape_coverage=False,  # the feed pairs each OVS write with the capture's counter
    )
    feed.on_mirror_sent = collector.observe_mirror
    registry = CollectorRegistry()
    registry.register(collector)
    if ipfix is not None:
        registry.register(IpfixMetricsCollector(ipfix))
    if notices is not None:
        registry.register(NoticeMetricsCollector(metrics.node, notices))
    if listen == "off":
        return collector, None, None
    # the web framework loads only when the service serves HTTP
    from exporters import (  # noqa: PLC0415
        FlowQuery,
        HttpServer,
        build_app,
        flows_router,
        notices_router,
        page_router,
        pods_router,
        status_router,
    )

    def ready() -> bool:
        return running.is_set() and feed.connected

    if token is None:
        log.warning(
            "no API token (--token-file or MIRRORSCOPE_TOKEN): every endpoint on %s is open to "
            "whoever reaches it",
            listen,
        )
    routers = [
        status_router(metrics.node, health, ready),
        pods_router(registry.collect),
        flows_router(FlowQuery(records, source)),
        notices_router(records),
        page_router(peers),
    ]
    endpoints = PcapEndpoints(pcap, identity, registry) if pcap is not None else None
    if endpoints is not None:
        routers.extend(endpoints.routers())
    app = build_app(registry, ready, token=token, routers=routers)
    try:
        server = HttpServer(app, listen, tls=tls).start()
    except BaseException:
        if endpoints is not None:
            endpoints.close()
        raise
    host, port = server.address
    scheme = server.scheme
    print(f"serving {scheme}://{host}:{port}/metrics", file=sys.stderr, flush=True)
    print(f"page: {scheme}://{host}:{port}/", file=sys.stderr, flush=True)
    return collector, server, endpoints


def run_single(cfg: RunConfig, listen: str, keep: MirrorSpec | SpecSource | None) -> int:
    identity = IdentityMap()
    stop = threading.Event()
    feed, feed_thread = start_feed(cfg, identity, stop, keep)
    running = threading.Event()
    worker: Worker | None = None
    server: HttpServer | None = None
    endpoints: PcapEndpoints | None = None
    try:
        worker = Worker(cfg, 0, identity)
        collector, server, endpoints = serve(
            listen, source=FlowTableSource(worker.pipeline.table), identity=identity,
            metrics=cfg.metrics or MetricsConfig(node=cfg.node), ended=worker.ended,
            health=worker.health, feed=feed, running=running, token=cfg.token,
            ipfix=worker.ipfix_counters if cfg.ipfix is not None else None,
            notices=worker.notice_counts if cfg.notices is not None else None,
            pcap=_local_pcap(cfg, worker), records=cfg.records, tls=cfg.tls, peers=cfg.peers,
        )  # fmt: skip
        w = worker
        lost = threading.Event()

        def tick() -> None:
            w.tick()
            if len(w.ended) > _ENDED_FOLD_AT:
                collector.collect()
            if netns_gone(cfg.netns):
                lost.set()
                service.request_stop()

        service = CaptureService(
            w.source, [w.pipeline], stop=stop, tick=tick, tick_s=TICK_S, duration_s=cfg.duration
        )
        try:
            with stop_on_signals(service.request_stop):
                # health answers meanwhile, and a stop asked for meanwhile is kept for the run
                w.warm_up()
                running.set()
                announce(cfg)
                result = service.run()
        finally:
            # Also when the source fails (mirror0 deleted, netns gone): what was counted is
            # written before the error is reported.
            running.clear()
            w.finish()
        if lost.is_set():
            raise CaptureError(
                f"network namespace {cfg.netns} is gone (lab down?): stopped after writing every "
                "flow; start the service again once the namespace exists",
                source=cfg.iface,
            )
        c = w.pipeline.counters()
        stored = ""
        if w.assembly.store is not None:
            sc = w.assembly.store.counters()
            stored = (
                f"; pcap store: {sc.frames_stored} frames stored, {sc.frames_not_stored} not "
                f"({sc.frames_queue_full} with the writer behind)"
            )
        print(
            f"mirrorctl: captured {result.frames} frames ({result.source.dropped} dropped by the "
            f"kernel), {c.flows_ended} flow records, malformed {sum(c.malformed.values())}, "
            f"duplicates {c.duplicates}{stored}",
            file=sys.stderr,
            flush=True,
        )
        return 0
    finally:
        stop.set()
        if endpoints is not None:
            endpoints.close()
        if server is not None:
            server.stop()
        if worker is not None:
            worker.source.close()
        feed_thread.join(timeout=5)


def _local_pcap(cfg: RunConfig, worker: Worker) -> PcapView | None:
    """The one worker's store as the listener sees it (None without --pcap-dir)."""
    store, macs = worker.assembly.store, worker.assembly.macs
    if cfg.pcap is None or store is None or macs is None:
        return None
    return PcapView(
        config=cfg.pcap,
        api=cfg.pcap_api,
        stores=lambda: [store.counters()],
        macs=macs.macs,
        open_files=functools.partial(_caught_up_open_file, store),
        in_process=True,
    )


def _caught_up_open_file(store: PcapStore) -> list[OpenFile]:
    """The file the store is writing, once what was captured before the call is in it: a
    download must hold the newest packets even while a loaded host's writer lags (at most 1 s)."""
    store.catch_up(1.0)
    f = store.open_file()
    return [] if f is None else [f]


def netns_gone(netns: str | None) -> bool:
    """The capture's namespace was deleted: its interface and our socket's traffic are gone."""
    return netns is not None and not os.path.exists(netns_path(netns))


def announce(cfg: RunConfig) -> None:
    where = cfg.iface if cfg.netns is None else f"{cfg.iface} in netns {cfg.netns}"
    records = f", records in {cfg.records}" if cfg.records else ""
    print(
        f"capturing on {where} with {cfg.workers} worker(s), node {cfg.node}{records}",
        file=sys.stderr,
        flush=True,
    )
