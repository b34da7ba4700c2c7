"""`mirrorctl capture run | read`: the capture service and the offline analyser.

This is where the pieces meet (capture never imports analyzers or exporters): a frame source
feeds an ``AnalysisPipeline`` through ``CaptureService``; ended flows go to a JSON-lines writer
and to the Prometheus collector; pod identity comes from OVSDB (``PodDirectory``).

Workers. ``--workers 1`` (default) runs everything in this process. With ``--workers N`` the
service forks N capture processes that join one PACKET_FANOUT group (flow-hash, both directions
of a flow reach the same worker); each has its own ring, pipeline, OVSDB identity feed and
records file (``flows-<node>-w<i>-….jsonl``). Every tick a worker sends the parent a snapshot of
its active flows, the flows that ended since the last tick and its health counters over a pipe;
the parent serves /metrics from the merged snapshots, so metrics cover all workers while records
stay per worker (readers concatenate the files).
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from analyzers import Endpoint, EndpointKind, IdentityMap
from analyzers._pipeline import AnalysisPipeline, PipelineCounters, PipelineOptions
from capture import AfPacketSource, CaptureError, FrameSource, compile_filter, open_capture_file
from capture._afpacket import FANOUT_FLAG_DEFRAG, FANOUT_HASH
from capture._netns import netns_path
from capture._offline_filter import FilteredSource
from capture._service import CaptureService, stop_on_signals
from exporters import (
    DEFAULT_LISTEN,
    CaptureHealth,
    CardinalityConfig,
    EndedFlows,
    FlowColumns,
    FlowMetricsCollector,
    FlowSnapshot,
    FlowStats,
    FlowTableSource,
    MetricsConfig,
    MetricsServer,
)
from exporters._jsonl import JsonLinesWriter, RotatingJsonLinesWriter
from mirrorctl._errors import MirrorscopeError, OVSDBUnreachableError, UsageError
from mirrorctl._keeper import MirrorKeeper
from mirrorctl._mirrors import DEFAULT_BRIDGE, DEFAULT_OUTPUT, MirrorSpec
from mirrorctl._ovsdb import ENDPOINT_ENV, OVSDBSession, Snapshot, connect, follow, resolve_endpoint
from mirrorctl._pods import PodDirectory, identity_entries, node_name
from mirrorctl._received import ReceivedAt

log = logging.getLogger(__name__)

NETNS_ENV = "MIRRORSCOPE_NETNS"
TICK_S = 1.0
#: Ended flows queued for the exporter beyond this are folded into its totals without a scrape,
#: so a service nobody scrapes does not grow without bound.
_ENDED_FOLD_AT = 50_000
#: How often the OVSDB feed checks for an update. A statistics write is paired with the capture's
#: counter when the feed sees it, so every ms of delay counts that much later traffic as covered
#: (at 0.1 s a mid-burst change point read 1.19); a seqno comparison costs next to nothing.
_FEED_POLL_S = 0.005


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``capture run`` and ``capture read`` to the CLI."""
    capture = sub.add_parser(
        "capture",
        help="capture mirror0 into flows, metrics and records, or analyse pcap files",
        description="The capture service (run) and the offline analyser (read).",
    )
    actions = capture.add_subparsers(dest="capture_command", required=True, metavar="ACTION")

    run = actions.add_parser("run", help="the capture service: mirror0 -> flows, /metrics, records")
    run.add_argument(
        "--iface", default=DEFAULT_OUTPUT, help="interface to capture (default mirror0)"
    )
    run.add_argument(
        "--netns", metavar="NAME", help=f"network namespace of the interface (env {NETNS_ENV})"
    )
    run.add_argument("--filter", metavar="EXPR", help="tcpdump filter expression (libpcap BPF)")
    run.add_argument("--snaplen", type=int, default=65535, help="bytes kept per frame (65535)")
    run.add_argument(
        "--workers", type=int, default=1, help="capture processes in one fanout group (default 1)"
    )
    run.add_argument(
        "--records",
        metavar="DIR",
        type=Path,
        help="write flow records as JSON lines into DIR (hourly files, or --rotate-mb)",
    )
    run.add_argument(
        "--rotate-mb", type=int, default=256, help="start a new records file past this size (256)"
    )
    run.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="ADDR:PORT",
        help=f"serve /metrics /healthz /readyz here (default {DEFAULT_LISTEN}; 'off' to disable)",
    )
    run.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long")
    run.add_argument(
        "--keep-mirror",
        choices=["none", "global"],
        default="none",
        help="also keep a global mirror into --iface applied, like `mirrorctl watch --global`",
    )
    run.add_argument("--block-mb", type=int, default=4, help="ring block size in MiB (default 4)")
    run.add_argument("--blocks", type=int, default=64, help="ring blocks (default 64)")
    run.add_argument("--pidfile", type=Path, help="write the service's pid here while it runs")
    defaults = CardinalityConfig()
    window_s = MetricsConfig(node="").coverage_window_s
    run.add_argument(
        "--metrics-top-k",
        type=int,
        default=defaults.top_k,
        metavar="N",
        help=f"remotes per pod with their own pod-pair series; the rest fold into 'other' "
        f"(default {defaults.top_k})",
    )
    run.add_argument(
        "--metrics-max-series",
        type=int,
        default=defaults.max_series,
        metavar="N",
        help=f"hard bound on the series /metrics can hold (default {defaults.max_series})",
    )
    run.add_argument(
        "--metrics-grace-s",
        type=float,
        default=defaults.grace_s,
        metavar="SECONDS",
        help=f"keep a deleted pod's series this long (default {defaults.grace_s:g})",
    )
    run.add_argument(
        "--coverage-window-s",
        type=float,
        default=window_s,
        metavar="SECONDS",
        help=f"window of mirrorscope_capture_coverage_ratio (default {window_s:g})",
    )
    _analysis_options(run)
    _ovsdb_options(run)
    run.set_defaults(handler=_run)

    read = actions.add_parser(
        "read",
        help="analyse pcap/pcapng files: flow records as JSON lines on stdout, summary on stderr",
    )
    read.add_argument("files", nargs="+", metavar="FILE", type=Path)
    read.add_argument(
        "--identity",
        metavar="FILE",
        type=Path,
        help='JSON naming addresses: {"10.16.0.5": "ns/pod", "100.64.0.2": "node/NAME"} or a '
        "lab state file (lab.json)",
    )
    read.add_argument(
        "--filter",
        metavar="EXPR",
        help="tcpdump filter expression, run by libpcap's BPF interpreter on each frame",
    )
    read.add_argument("--no-summary", action="store_true", help="no summary on stderr")
    _analysis_options(read)
    _ovsdb_options(read, offline=True)
    read.set_defaults(handler=_read)


def _analysis_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--node", metavar="NAME", help="this node's name (default: from OVSDB, else hostname)"
    )
    p.add_argument("--max-flows", type=int, default=2_000_000, help="flow table bound (2000000)")
    p.add_argument(
        "--no-dedup", action="store_true", help="count mirrored copies of a packet separately"
    )


def _ovsdb_options(p: argparse.ArgumentParser, *, offline: bool = False) -> None:
    p.add_argument(
        "--ovsdb",
        metavar="ENDPOINT",
        help=(
            "read pod identity once from this OVSDB (unix:PATH or tcp:HOST:PORT)"
            if offline
            else f"OVSDB for pod identity and mirror counters (env {ENDPOINT_ENV}; default "
            "unix:/var/run/openvswitch/db.sock)"
        ),
    )
    p.add_argument("--bridge", default=DEFAULT_BRIDGE, help="OVS bridge (default br-int)")


def _options(args: argparse.Namespace) -> PipelineOptions:
    if args.max_flows < 1:
        raise UsageError(f"--max-flows must be at least 1, not {args.max_flows}")
    return PipelineOptions(
        max_flows=args.max_flows, dedup_window_ns=0 if args.no_dedup else 1_000_000
    )


# ------------------------------------------------------------------------------------- read


def _identity_file(path: Path, identity: IdentityMap) -> None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"cannot read --identity {path}: {e.strerror}") from e
    except json.JSONDecodeError as e:
        raise UsageError(f"--identity {path} is not JSON: {e}") from e
    entries: list[tuple[str, Endpoint]] = []
    try:
        if isinstance(doc, dict) and "pods" in doc and "node_port" in doc:  # a lab state file
            node = str(doc["node_port"]["node_name"])
            for p in doc["pods"]:
                ep = Endpoint(EndpointKind.POD, str(p["namespace"]), str(p["name"]), node)
                entries += [(str(p["ipv4"]), ep), (str(p["ipv6"]), ep)]
            entries.append((str(doc["node_port"]["ipv4"]), Endpoint(EndpointKind.NODE, node=node)))
        elif isinstance(doc, dict):
            for addr, name in doc.items():
                entries.append((addr, _endpoint_named(str(name))))
        else:
            raise TypeError("not an object")
        identity.replace("file", entries)
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(
            f"--identity {path}: expected {{ip: 'ns/pod' | 'node/NAME'}} or a lab state file ({e})"
        ) from e


def _endpoint_named(name: str) -> Endpoint:
    first, sep, rest = name.partition("/")
    if not sep or not first or not rest:
        raise ValueError(f"{name!r} is not ns/pod or node/NAME")
    if first == "node":
        return Endpoint(EndpointKind.NODE, node=rest)
    return Endpoint(EndpointKind.POD, namespace=first, pod=rest)


def _summary(files: int, c: PipelineCounters) -> str:
    protos = ", ".join(f"{p} {n}" for p, n in sorted(c.records_by_proto.items())) or "none"
    bad = sum(c.malformed.values())
    reasons = ", ".join(f"{r} {n}" for r, n in sorted(c.malformed.items()))
    return (
        f"read {files} file(s): {c.packets} packets, {c.flows_ended} flows ({protos}), "
        f"malformed {bad}{f' ({reasons})' if reasons else ''}, duplicates suppressed "
        f"{c.duplicates}"
    )


def _read(args: argparse.Namespace) -> int:
    identity = IdentityMap()
    node = args.node or ""
    if args.identity is not None:
        _identity_file(args.identity, identity)
    if args.ovsdb:
        endpoint = resolve_endpoint(args.ovsdb, os.environ)
        with connect(endpoint) as session:
            snap = session.snapshot()
        node = node or node_name(snap) or ""
        identity.replace("ovsdb", identity_entries(snap, node or None))
    if args.filter:
        compile_filter(args.filter)  # a bad expression is one error line before any output
    writer = JsonLinesWriter(sys.stdout)
    pipeline = AnalysisPipeline(identity, [writer], node=node, options=_options(args))
    errors: list[CaptureError] = []
    for path in args.files:
        try:
            with open_capture_file(path) as file_source:
                source: FrameSource = file_source
                if args.filter:
                    source = FilteredSource(file_source, args.filter)
                CaptureService(source, [pipeline]).run()
        except CaptureError as e:
            # The flows decoded before the damage stay in the table and are flushed below.
            errors.append(e)
    pipeline.flush()
    writer.close()
    if not args.no_summary:
        print(f"mirrorctl: {_summary(len(args.files), pipeline.counters())}", file=sys.stderr)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise CaptureError(
            f"{len(errors)} of {len(args.files)} files could not be read to the end; first: "
            f"{errors[0]}",
            source=errors[0].source,
        )
    return 0


# ------------------------------------------------------------------------------------- run


class OvsdbFeed:
    """Follows OVSDB for the service: pod identity, the mirror's tx_packets, connectivity.

    Never fatal: an unreachable OVSDB is retried (``follow`` logs each retry) and shows as
    not-ready on /readyz; identity then says ``external`` until the first snapshot arrives.
    """

    def __init__(
        self, endpoint: str, identity: IdentityMap, *, bridge: str, iface: str, node: str
    ) -> None:
        self.endpoint = endpoint
        self.bridge = bridge
        self.iface = iface
        self.pods = PodDirectory(identity, node=node or None)
        self._seen_at: float | None = None
        self._mirror_tx: int | None = None
        #: Called on every snapshot, as soon as it arrives, with what OVS sent out the mirror port
        #: (see ``_mirror_port_sent``): a change is the moment ovs-vswitchd wrote statistics, the
        #: coverage ratio's change points.
        self.on_mirror_sent: Callable[[int | None], None] | None = None

    def __call__(self, _session: OVSDBSession, snapshot: Snapshot) -> None:
        self.pods.update(snapshot)
        mirrored = _mirror_tx_packets(snapshot, self.bridge, self.iface)
        if self.on_mirror_sent is not None:
            sent = _mirror_port_sent(snapshot, self.bridge, self.iface)
            self.on_mirror_sent(sent if sent is not None else mirrored)
        self._mirror_tx = mirrored
        self._seen_at = time.monotonic()

    @property
    def connected(self) -> bool:
        """A snapshot arrived in the last few seconds (``follow`` calls at least every 0.5 s)."""
        return self._seen_at is not None and time.monotonic() - self._seen_at < 5.0

    def mirror_tx_packets(self) -> int | None:
        return self._mirror_tx if self.connected else None

    def thread(
        self, stop: threading.Event, keep: MirrorSpec | None, netns: str | None
    ) -> threading.Thread:
        if keep is not None:
            keeper = MirrorKeeper(
                self.endpoint, keep, bridge=self.bridge, output=self.iface, netns=netns,
                observers=[self], poll=_FEED_POLL_S,
            )  # fmt: skip
            target: Callable[[], None] = lambda: keeper.run(stop)  # noqa: E731 - a thread body
        else:
            target = lambda: follow(self.endpoint, self, stop, poll=_FEED_POLL_S)  # noqa: E731 - a thread body
        return threading.Thread(target=target, name="ovsdb-feed", daemon=True)


def _mirror_port_sent(snapshot: Snapshot, bridge: str, iface: str) -> int | None:
    """tx_packets + tx_dropped of the interface ``iface`` on ``bridge``: what OVS sent, or tried
    to send, out the mirror's output port (which carries nothing but mirrored packets).

    Coverage compares against this rather than the Mirror row's tx_packets: ovs-vswitchd writes
    both every few seconds, but the interface counter is read from the device at that moment,
    while the Mirror's is credited from datapath flow statistics the revalidators push about
    every 0.5 s, so mid-burst it lags by up to that much traffic (measured: 17541 vs 21006).
    """
    br = snapshot.bridges.get(bridge)
    if br is None:
        return None
    for u in br.ports:
        port = snapshot.ports.get(u)
        if port is None or port.name != iface:
            continue
        for row in snapshot.interfaces_of(port):
            stats = row.statistics
            if row.name == iface and "tx_packets" in stats:
                return stats["tx_packets"] + stats.get("tx_dropped", 0)
    return None


def _mirror_tx_packets(snapshot: Snapshot, bridge: str, iface: str) -> int | None:
    """Sum of tx_packets of the mirrors on ``bridge`` whose output port is ``iface``."""
    br = snapshot.bridges.get(bridge)
    if br is None:
        return None
    total: int | None = None
    for u in br.mirrors:
        m = snapshot.mirrors.get(u)
        if m is None or m.output_port is None:
            continue
        port = snapshot.ports.get(m.output_port)
        if port is None or port.name != iface:
            continue
        total = (total or 0) + int(m.statistics.get("tx_packets", 0))
    return total


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Everything a capture worker needs (picklable: workers may be separate processes)."""

    iface: str
    netns: str | None
    bpf: str | None
    snaplen: int
    block_size: int
    block_count: int
    records: Path | None
    rotate_bytes: int
    node: str
    endpoint: str
    bridge: str
    options: PipelineOptions
    duration: float | None
    workers: int = 1
    fanout_group: int = 0
    wait_iface_s: float = 0.0  # how long to wait for a missing interface (--keep-mirror)
    metrics: MetricsConfig | None = None  # None: MetricsConfig(node) with its defaults


@dataclass(slots=True)
class _WorkerReport:
    """What a worker sends its parent each tick (pickled over a pipe)."""

    index: int
    active: FlowSnapshot
    ended: list[FlowStats]
    health: CaptureHealth
    final: bool = False
    records_files: list[str] = field(default_factory=list)
    at: float = 0.0  # time.monotonic() when health was read


def _open_source(cfg: RunConfig, fanout: tuple[int, int] | None) -> AfPacketSource:
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
                fanout=fanout,
            )
        except CaptureError as e:
            if e.errno != errno.ENODEV or time.monotonic() >= deadline:
                raise
            log.info("%s does not exist yet; waiting for the mirror keeper to create it", cfg.iface)
            time.sleep(0.2)


class _Worker:
    """One capture worker: ring → pipeline → records and an exporter view."""

    def __init__(self, cfg: RunConfig, index: int, identity: IdentityMap) -> None:
        self.cfg = cfg
        self.index = index
        self.identity = identity
        self.ended = EndedFlows()
        self.writer: RotatingJsonLinesWriter | None = None
        sinks: list[Any] = [self.ended]
        if cfg.records is not None:
            self.writer = RotatingJsonLinesWriter(
                cfg.records,
                prefix=f"flows-{cfg.node or 'node'}-w{index}",
                max_bytes=cfg.rotate_bytes,
            )
            sinks.insert(0, self.writer)
        self.pipeline = AnalysisPipeline(identity, sinks, node=cfg.node, options=cfg.options)
        fanout = None
        if cfg.workers > 1:
            # DEFRAG: the kernel reassembles before hashing, so every fragment of a datagram
            # reaches the worker that holds its flow.
            fanout = (cfg.fanout_group, FANOUT_HASH | FANOUT_FLAG_DEFRAG)
        self.source = _open_source(cfg, fanout)
        self.table_source = FlowTableSource(self.pipeline.table)

    def health(self) -> CaptureHealth:
        stats = self.source.stats()
        return CaptureHealth(
            received=stats.received,
            kernel_dropped=stats.dropped,
            malformed=self.pipeline.malformed(),
            duplicates=self.pipeline.duplicates,
        )

    def tick(self) -> None:
        self.pipeline.tick(time.time_ns())
        if self.writer is not None:
            self.writer.rotate_if_due()

    def finish(self) -> None:
        """Flush every active flow as a record (end_reason ``flush``) and close the files."""
        self.pipeline.flush()
        if self.writer is not None:
            self.writer.close()

    def report(self, final: bool = False) -> _WorkerReport:
        # The snapshot first, then the drain: a flow ending in between is in the drained list
        # and not in the snapshot (missed for one scrape at most, never counted twice).
        active = self.table_source.flow_snapshot()
        return _WorkerReport(
            self.index,
            active,
            self.ended.drain(),
            self.health(),
            final,
            [str(p) for p in self.writer.files] if self.writer is not None else [],
            time.monotonic(),
        )


class _Merged:
    """The parent's view of N workers: a FlowStatsSource and a health reader over their reports."""

    def __init__(self, workers: int, ended: EndedFlows) -> None:
        self._lock = threading.Lock()
        self._active: dict[int, FlowSnapshot] = {}
        self._health: dict[int, CaptureHealth] = {}
        self._ended = ended
        self.finished: set[int] = set()
        self.workers = workers
        self.received_at: ReceivedAt | None = None  # coverage pairs; set once the collector exists

    def take(self, r: _WorkerReport) -> None:
        if self.received_at is not None:
            self.received_at.report(r.index, r.at, r.health.received)
        with self._lock:
            for flow in r.ended:
                self._ended.on_flow_end(flow)
            self._active[r.index] = r.active
            self._health[r.index] = r.health
            if r.final:
                self.finished.add(r.index)

    def flow_snapshot(self) -> FlowSnapshot:
        with self._lock:
            snaps = list(self._active.values())
        if not snaps:
            return FlowSnapshot(active=FlowColumns.empty())
        endpoints: list[Endpoint] = []
        parts: list[FlowColumns] = []
        for s in snaps:
            off = len(endpoints)
            endpoints.extend(s.active.endpoints)
            parts.append(replace(s.active, orig=s.active.orig + off, resp=s.active.resp + off))
        cols = FlowColumns(
            endpoints=endpoints,
            orig=np.concatenate([p.orig for p in parts]).astype(np.int32),
            resp=np.concatenate([p.resp for p in parts]).astype(np.int32),
            proto=np.concatenate([p.proto for p in parts]),
            counts=np.concatenate([p.counts for p in parts]),
            handshake_rtt_s=np.concatenate([p.handshake_rtt_s for p in parts]),
            dns_rcode=np.concatenate([p.dns_rcode for p in parts]),
            dns_latency_s=np.concatenate([p.dns_latency_s for p in parts]),
        )
        return FlowSnapshot(active=cols, evictions=sum(s.evictions for s in snaps))

    def health(self) -> CaptureHealth:
        with self._lock:
            hs = list(self._health.values())
        malformed: dict[str, int] = {}
        for h in hs:
            for k, v in h.malformed.items():
                malformed[k] = malformed.get(k, 0) + v
        return CaptureHealth(
            received=sum(h.received for h in hs),
            kernel_dropped=sum(h.kernel_dropped for h in hs),
            malformed=malformed,
            duplicates=sum(h.duplicates for h in hs),
        )


def _resolve_node(args: argparse.Namespace, endpoint: str) -> str:
    if args.node:
        return str(args.node)
    try:
        with connect(endpoint, timeout=2.0) as session:
            found = node_name(session.snapshot())
    except OVSDBUnreachableError as e:
        log.warning("%s; naming this node by its hostname", e)
        found = None
    return found or socket.gethostname()


def _run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, not {args.workers}")
    if args.duration is not None and args.duration <= 0:
        raise UsageError(f"--duration must be positive, not {args.duration}")
    if args.rotate_mb < 1 or args.block_mb < 1 or args.blocks < 1:
        raise UsageError("--rotate-mb, --block-mb and --blocks must be at least 1")
    metrics = _metrics_config(args)  # bad flags fail before anything connects
    endpoint = resolve_endpoint(args.ovsdb, os.environ)
    netns = args.netns or os.environ.get(NETNS_ENV) or None
    node = _resolve_node(args, endpoint)
    cfg = RunConfig(
        iface=args.iface,
        netns=netns,
        bpf=args.filter,
        snaplen=args.snaplen,
        block_size=args.block_mb << 20,
        block_count=args.blocks,
        records=args.records,
        rotate_bytes=args.rotate_mb << 20,
        node=node,
        endpoint=endpoint,
        bridge=args.bridge,
        options=_options(args),
        duration=args.duration,
        workers=args.workers,
        fanout_group=os.getpid() & 0xFFFF,
        wait_iface_s=15.0 if args.keep_mirror != "none" else 0.0,
        metrics=replace(metrics, node=node),
    )
    keep = MirrorSpec(select_all=True) if args.keep_mirror == "global" else None
    if args.pidfile is not None:
        args.pidfile.write_text(f"{os.getpid()}\n", encoding="utf-8")
    try:
        if cfg.workers == 1:
            return _run_single(cfg, args.listen, keep)
        return _run_multi(cfg, args.listen, keep)
    finally:
        if args.pidfile is not None:
            args.pidfile.unlink(missing_ok=True)


_METRICS_FLAGS = {
    "top_k": "--metrics-top-k",
    "max_series": "--metrics-max-series",
    "grace_s": "--metrics-grace-s",
}


def _metrics_config(args: argparse.Namespace, node: str = "") -> MetricsConfig:
    """--metrics-top-k, --metrics-max-series, --metrics-grace-s, --coverage-window-s."""
    if args.coverage_window_s <= 0:
        raise UsageError(f"--coverage-window-s must be positive, not {args.coverage_window_s}")
    try:
        cardinality = CardinalityConfig(
            top_k=args.metrics_top_k,
            max_series=args.metrics_max_series,
            grace_s=args.metrics_grace_s,
        )
    except ValueError as e:
        text = str(e)  # names the field; the user knows the flag
        for field_name, flag in _METRICS_FLAGS.items():
            text = text.replace(field_name, flag)
        raise UsageError(text) from None
    return MetricsConfig(
        node=node, cardinality=cardinality, coverage_window_s=args.coverage_window_s
    )


def _serve(
    listen: str,
    *,
    source: Any,
    identity: IdentityMap,
    metrics: MetricsConfig,
    ended: EndedFlows,
    health: Callable[[], CaptureHealth],
    feed: OvsdbFeed,
    running: threading.Event,
) -> tuple[FlowMetricsCollector, MetricsServer | None]:
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
    if listen == "off":
        return collector, None
    server = MetricsServer(
        registry, listen, ready=lambda: running.is_set() and feed.connected
    ).start()
    host, port = server.address
    print(f"serving http://{host}:{port}/metrics", file=sys.stderr, flush=True)
    return collector, server


def _run_single(cfg: RunConfig, listen: str, keep: MirrorSpec | None) -> int:
    identity = IdentityMap()
    stop = threading.Event()
    feed = OvsdbFeed(cfg.endpoint, identity, bridge=cfg.bridge, iface=cfg.iface, node=cfg.node)
    feed_thread = feed.thread(stop, keep, cfg.netns)
    feed_thread.start()
    running = threading.Event()
    worker: _Worker | None = None
    server: MetricsServer | None = None
    try:
        worker = _Worker(cfg, 0, identity)
        collector, server = _serve(
            listen, source=worker.table_source, identity=identity,
            metrics=cfg.metrics or MetricsConfig(node=cfg.node), ended=worker.ended,
            health=worker.health, feed=feed, running=running,
        )  # fmt: skip
        w = worker
        lost = threading.Event()

        def tick() -> None:
            w.tick()
            if len(w.ended) > _ENDED_FOLD_AT:
                collector.collect()
            if _netns_gone(cfg.netns):
                lost.set()
                service.request_stop()

        service = CaptureService(
            w.source, [w.pipeline], stop=stop, tick=tick, tick_s=TICK_S, duration_s=cfg.duration
        )
        running.set()
        _announce(cfg)
        try:
            with stop_on_signals(service.request_stop):
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
        print(
            f"mirrorctl: captured {result.frames} frames ({result.source.dropped} dropped by the "
            f"kernel), {c.flows_ended} flow records, malformed {sum(c.malformed.values())}, "
            f"duplicates {c.duplicates}",
            file=sys.stderr,
            flush=True,
        )
        return 0
    finally:
        stop.set()
        if server is not None:
            server.stop()
        if worker is not None:
            worker.source.close()
        feed_thread.join(timeout=5)


def _netns_gone(netns: str | None) -> bool:
    """The capture's namespace was deleted: its interface and our socket's traffic are gone."""
    return netns is not None and not os.path.exists(netns_path(netns))


def _announce(cfg: RunConfig) -> None:
    where = cfg.iface if cfg.netns is None else f"{cfg.iface} in netns {cfg.netns}"
    records = f", records in {cfg.records}" if cfg.records else ""
    print(
        f"capturing on {where} with {cfg.workers} worker(s), node {cfg.node}{records}",
        file=sys.stderr,
        flush=True,
    )


def _worker_main(cfg: RunConfig, index: int, conn: mpc.Connection, stop_all: Any) -> None:
    """Body of a worker process (``--workers N``): capture, report every tick, flush at the end."""
    identity = IdentityMap()
    stop = threading.Event()
    feed = OvsdbFeed(cfg.endpoint, identity, bridge=cfg.bridge, iface=cfg.iface, node=cfg.node)
    feed_thread = feed.thread(stop, None, cfg.netns)
    feed_thread.start()
    try:
        worker = _Worker(cfg, index, identity)
    except (MirrorscopeError, CaptureError) as e:
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
        conn.send(worker.report())
        if stop_all.is_set() or _netns_gone(cfg.netns):
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
    conn.send(worker.report(final=True))
    stop.set()
    worker.source.close()
    feed_thread.join(timeout=5)


def _run_multi(cfg: RunConfig, listen: str, keep: MirrorSpec | None) -> int:
    ctx = mp.get_context("fork")  # workers inherit the parsed config and logging; no re-import
    stop_all = ctx.Event()
    procs: list[tuple[Any, mpc.Connection]] = []
    for i in range(cfg.workers):
        parent_end, child_end = ctx.Pipe(duplex=False)
        p = ctx.Process(
            target=_worker_main, args=(cfg, i, child_end, stop_all), name=f"capture-w{i}"
        )
        p.start()
        child_end.close()
        procs.append((p, parent_end))
    try:
        for p, conn in procs:
            try:
                msg = conn.recv() if conn.poll(30) else "no answer within 30 s"
            except EOFError:
                msg = f"it exited with code {p.exitcode}"
            if msg != "ready":
                raise CaptureError(f"capture worker {p.name} failed to start: {msg}")
        identity = IdentityMap()
        stop = threading.Event()
        feed = OvsdbFeed(cfg.endpoint, identity, bridge=cfg.bridge, iface=cfg.iface, node=cfg.node)
        feed_thread = feed.thread(stop, keep, cfg.netns)
        feed_thread.start()
        ended = EndedFlows()
        merged = _Merged(cfg.workers, ended)
        running = threading.Event()
        running.set()
        collector, server = _serve(
            listen, source=merged, identity=identity,
            metrics=cfg.metrics or MetricsConfig(node=cfg.node), ended=ended,
            health=merged.health, feed=feed, running=running,
        )  # fmt: skip
        # The parent's received counter is a report old: pair OVS writes with the workers'
        # counters interpolated to the write instead (see ReceivedAt).
        received_at = ReceivedAt(cfg.workers, collector.observe_coverage)
        merged.received_at = received_at
        feed.on_mirror_sent = lambda sent: received_at.mirror(time.monotonic(), sent)
        _announce(cfg)
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
                    if isinstance(msg, _WorkerReport):
                        merged.take(msg)
                        if msg.final:
                            conns.pop(conn)  # its pipe closes next: that EOF is expected
        running.clear()
        stop.set()
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
