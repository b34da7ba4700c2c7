"""The Prometheus collector: per-pod flow metrics computed at scrape time from the flow table.

The hot path never touches a metric object. At each scrape the collector first folds the flows that
ended since the previous scrape into cumulative totals, then takes one snapshot of the active flows,
and sums both into families. In that order a flow can never be counted twice; a flow that ends
between the two steps is missed for one scrape only, and every counter is exported as the maximum of
its computed value and its last exported one, so that gap never shows as a counter reset.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric

from analyzers import Endpoint, EndpointKind, FlowRecord
from exporters._aggregate import (
    DNS0,
    DNS_BUCKETS,
    DNS_COUNT,
    DNS_QUERIES,
    F64,
    OTHER,
    OTHER_ID,
    PROTOCOLS,
    RCODE0,
    RCODES,
    RESETS,
    RETRANSMITS,
    RTT0,
    RTT_BUCKETS,
    RTT_COUNT,
    RX_BYTES,
    RX_PACKETS,
    TX_BYTES,
    TX_PACKETS,
    WIDTH,
    ZERO_WINDOWS,
    EndpointIndex,
    KeyedVectors,
    aggregate,
    key_local,
    key_pair,
    key_remote,
    protocol_counts,
)
from exporters._cardinality import CardinalityConfig, CardinalityGuard, EndpointDirectory
from exporters._coverage import CoverageWindow
from exporters._ended import EndedFlows
from exporters._health import CaptureHealth, health_families
from exporters._scrapecolumns import ScrapeColumns
from exporters._tablesource import FlowSnapshotSource

log = logging.getLogger(__name__)

#: Endpoint ids tolerated beyond twice those in use before the index is rebuilt.
_COMPACT_SLACK = 1024


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """``node`` is the constant ``node`` label of every series (the Kubernetes node name)."""

    node: str
    cardinality: CardinalityConfig = field(default_factory=CardinalityConfig)
    coverage_window_s: float = 60.0


def remote_labels(remote: Endpoint) -> tuple[str, str, str]:
    """``remote_namespace``, ``remote_pod``, ``remote_kind`` of a remote endpoint."""
    if remote == OTHER:
        return "", "other", "other"
    if remote.kind is EndpointKind.POD:
        return remote.namespace, remote.pod, "pod"
    if remote.kind is EndpointKind.NODE:
        return "", remote.node, "node"
    return "", "external", "external"


class FlowMetricsCollector:
    """A ``prometheus_client`` Collector and the flow table's ended-flow sink.

    Register it on a registry you own: ``registry.register(collector)``; give it (or ``ended``) to
    the flow table as a sink of ended flows. ``health`` and ``mirror_tx_packets`` are read at
    scrape time; either may be None (its families are then left out). ``mirror_tx_packets``
    returns None when OVSDB is unreachable.

    The coverage ratio is taken between changes of the mirrored counter (see ``CoverageWindow``).
    By default each scrape samples (received, ``mirror_tx_packets()``). With
    ``scrape_coverage=False`` the caller feeds pairs instead, at the moment it learns of an OVS
    statistics write (``observe_mirror``, ``observe_coverage``; the service's OVSDB feed does),
    and scrapes only read the ratio.
    """

    def __init__(
        self,
        source: FlowSnapshotSource,
        directory: EndpointDirectory,
        config: MetricsConfig,
        *,
        ended: EndedFlows | None = None,
        health: Callable[[], CaptureHealth] | None = None,
        mirror_tx_packets: Callable[[], int | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        scrape_coverage: bool = True,
    ) -> None:
        self._source = source
        self._directory = directory
        self._config = config
        self._health = health
        self._mirror_tx = mirror_tx_packets
        self._guard = CardinalityGuard(config.cardinality, clock)
        self._coverage = CoverageWindow(clock, config.coverage_window_s)
        self._scrape_coverage = scrape_coverage
        self._lock = threading.Lock()
        self.ended = ended if ended is not None else EndedFlows()
        self._last: dict[tuple[str, tuple[str, ...]], float] = {}
        self._next: dict[tuple[str, tuple[str, ...]], float] = {}
        self._index = EndpointIndex(config.node)
        self._shown = np.zeros(0, dtype=np.int64)  # keys (proto 0) of pairs exported last time
        self._cumulative = KeyedVectors.empty()
        self._ended_by_proto = np.zeros(len(PROTOCOLS), dtype=np.int64)

    def observe_mirror(self, mirrored: int | None) -> None:
        """What OVS counts as mirrored, as ovs-vswitchd just wrote it (the service passes the
        mirror output port's tx_packets + tx_dropped, read from the device at the write); pairs it
        with the capture's received counter now. Call it on every OVSDB update, at once."""
        if mirrored is None or self._health is None:
            return
        self.observe_coverage(self._health().received, mirrored)

    def observe_coverage(self, captured: int, mirrored: int) -> None:
        """One (captured, mirrored) pair taken at the same instant, for the coverage ratio."""
        self._coverage.observe(captured, mirrored)

    def on_flows_ended(self, records: Sequence[FlowRecord]) -> None:
        """``analyzers.FlowSink``: take a list of ended flow records."""
        self.ended.on_flows_ended(records)

    def describe(self) -> Iterable[Metric]:
        # Families depend on traffic; describing none keeps register() from running a scrape.
        return ()

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            self._next = {}
            families = list(self._collect())
            self._last = self._next
            return families

    def _mono(self, name: str, labels: list[str], value: float) -> float:
        """Never export less than last time for this series (see the module docstring)."""
        key = (name, tuple(labels))
        value = max(value, self._last.get(key, 0.0))
        self._next[key] = value
        return value

    def _seen(self, name: str, labels: list[str]) -> bool:
        return (name, tuple(labels)) in self._last

    def _count(self, family: CounterMetricFamily, labels: list[str], value: float) -> None:
        family.add_metric(labels, self._mono(family.name, labels, float(value)))

    def _histogram(
        self,
        family: HistogramMetricFamily,
        labels: list[str],
        vec: F64,
        first: int,
        bounds: tuple[float, ...],
    ) -> None:
        counts = np.cumsum(vec[first : first + len(bounds) + 1])
        les = [repr(float(b)) for b in bounds] + ["+Inf"]
        buckets = [
            (le, self._mono(family.name, [*labels, le], float(c)))
            for le, c in zip(les, counts, strict=True)
        ]
        total = self._mono(family.name + "_sum", labels, float(vec[first + len(bounds) + 1]))
        family.add_metric(labels, buckets, total)

    def _expired_mask(self) -> npt.NDArray[np.bool_]:
        mask = np.zeros(len(self._index), dtype=bool)
        for pod in self._guard.expired:
            i = self._index.id_of(pod)
            if i is not None:
                mask[i] = True
        return mask

    def _collect(self) -> Iterator[Metric]:
        # Ended flows go into the totals before anything can fail, so a failing snapshot costs
        # one scrape, never data.
        ended = ScrapeColumns.of_records(self.ended.drain())
        self._ended_by_proto += protocol_counts(ended)
        ended_kv = aggregate(ended, self._index)
        self._cumulative = self._cumulative.plus(ended_kv.folded(self._expired_mask()))
        snap = self._source.flow_snapshot()
        active = ScrapeColumns.of_active(snap.active)
        active_kv = aggregate(active, self._index)
        keys = np.concatenate([self._cumulative.keys, active_kv.keys])
        ids = np.unique(np.concatenate([key_local(keys), key_remote(keys)]))
        ids = ids[self._index.is_pod()[ids]]
        seen = [self._index.endpoints[i] for i in ids.tolist()]
        newly = self._guard.refresh(self._directory, seen)
        expired = self._expired_mask()
        if newly:
            self._cumulative = self._cumulative.folded(expired)
        # A series exported last time must not vanish because its flow is between the table and
        # the ended queue at this instant: give it a zero row and let _mono keep its value.
        shown = KeyedVectors(self._shown, np.zeros((self._shown.shape[0], WIDTH))).folded(expired)
        merged = self._cumulative.plus(active_kv.folded(expired)).plus(shown)

        yield from self._pod_families(merged)
        active_by_proto = protocol_counts(active)
        yield from self._flow_families(active_by_proto, snap.evictions, len(snap.active))
        yield from self._health_families()
        yield from self._series_families()
        self._compact()

    def _compact(self) -> None:
        """Forget ids of endpoints no total refers to any more, once they are most of the index."""
        cum = self._cumulative.keys
        shown = self._shown
        used = np.concatenate(
            [key_local(cum), key_remote(cum), key_local(shown), key_remote(shown)]
        )
        if len(self._index) <= 2 * np.unique(used).shape[0] + _COMPACT_SLACK:
            return
        self._index, remap = self._index.compacted(used)
        self._cumulative = self._cumulative.remapped(remap)
        self._shown = KeyedVectors(shown, np.zeros((shown.shape[0], 1))).remapped(remap).keys

    def _pod_families(self, merged: KeyedVectors) -> Iterator[Metric]:
        node = self._config.node
        eps = self._index.endpoints
        local = key_local(merged.keys)
        pod_start = np.flatnonzero(np.r_[True, local[1:] != local[:-1]]) if len(merged) else local
        pod_ids = local[pod_start]
        pod_vecs = np.add.reduceat(merged.vecs, pod_start, axis=0) if len(merged) else merged.vecs
        pair = key_pair(merged.keys)
        pair_start = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]]) if len(merged) else pair
        pair_keys = pair[pair_start]
        pair_vecs = (
            np.add.reduceat(merged.vecs[:, :4], pair_start, axis=0)
            if len(merged)
            else merged.vecs[:, :4]
        )
        pair_local = pair_keys >> 32
        pair_remote = pair_keys & 0xFFFF_FFFF
        pair_bounds = [*np.searchsorted(pair_local, pod_ids, side="left").tolist(), len(pair_keys)]
        shown: list[int] = []

        pod_lbl = ["node", "namespace", "pod"]
        packets = CounterMetricFamily(
            "mirrorscope_pod_packets",
            "Packets a pod sent (tx) or received (rx), as seen on the mirror.",
            labels=[*pod_lbl, "direction"],
        )
        bytes_ = CounterMetricFamily(
            "mirrorscope_pod_bytes",
            "Bytes a pod sent (tx) or received (rx), as seen on the mirror.",
            labels=[*pod_lbl, "direction"],
        )
        retrans = CounterMetricFamily(
            "mirrorscope_tcp_retransmits", "TCP segments a pod sent again.", labels=pod_lbl
        )
        resets = CounterMetricFamily(
            "mirrorscope_tcp_resets", "TCP RST segments a pod sent.", labels=pod_lbl
        )
        zero_win = CounterMetricFamily(
            "mirrorscope_tcp_zero_windows",
            "TCP segments a pod sent advertising a zero receive window.",
            labels=pod_lbl,
        )
        rtt = HistogramMetricFamily(
            "mirrorscope_tcp_handshake_rtt_seconds",
            "SYN to final ACK of the handshakes of connections a pod opened.",
            labels=pod_lbl,
        )
        queries = CounterMetricFamily(
            "mirrorscope_dns_queries", "DNS queries a pod sent.", labels=pod_lbl
        )
        responses = CounterMetricFamily(
            "mirrorscope_dns_responses",
            "DNS responses a pod received, by response code.",
            labels=[*pod_lbl, "rcode"],
        )
        dns_lat = HistogramMetricFamily(
            "mirrorscope_dns_response_latency_seconds",
            "Time from a pod's DNS query to its response.",
            labels=pod_lbl,
        )
        pair_lbl = [*pod_lbl, "remote_namespace", "remote_pod", "remote_kind", "direction"]
        pair_bytes = CounterMetricFamily(
            "mirrorscope_pod_remote_bytes",
            "Bytes between a pod and a remote (top-K remotes per pod, the rest as other).",
            labels=pair_lbl,
        )
        pair_packets = CounterMetricFamily(
            "mirrorscope_pod_remote_packets",
            "Packets between a pod and a remote (top-K remotes per pod, the rest as other).",
            labels=pair_lbl,
        )

        for n, pod_id in enumerate(pod_ids.tolist()):
            pod = eps[pod_id]
            if not self._guard.admit_pod(pod):
                continue
            v = pod_vecs[n]
            base = [node, pod.namespace, pod.pod]
            for direction, p, b in (("tx", TX_PACKETS, TX_BYTES), ("rx", RX_PACKETS, RX_BYTES)):
                self._count(packets, [*base, direction], v[p])
                self._count(bytes_, [*base, direction], v[b])
            self._count(retrans, base, v[RETRANSMITS])
            self._count(resets, base, v[RESETS])
            self._count(zero_win, base, v[ZERO_WINDOWS])
            if v[RTT_COUNT] > 0 or self._seen(rtt.name + "_sum", base):
                self._histogram(rtt, base, v, RTT0, RTT_BUCKETS)
            if v[DNS_QUERIES] > 0 or self._seen(queries.name, base):
                self._count(queries, base, v[DNS_QUERIES])
            for i, rcode in enumerate(RCODES):
                if v[RCODE0 + i] > 0 or self._seen(responses.name, [*base, rcode]):
                    self._count(responses, [*base, rcode], v[RCODE0 + i])
            if v[DNS_COUNT] > 0 or self._seen(dns_lat.name + "_sum", base):
                self._histogram(dns_lat, base, v, DNS0, DNS_BUCKETS)

            lo, hi = pair_bounds[n], pair_bounds[n + 1]
            remotes = pair_remote[lo:hi].tolist()
            x = pair_vecs[lo:hi]
            volume = x[:, TX_BYTES] + x[:, RX_BYTES]
            own = self._guard.assign_remotes(
                pod, {eps[r]: float(volume[k]) for k, r in enumerate(remotes) if r != OTHER_ID}
            )
            mine = np.fromiter((r != OTHER_ID and eps[r] in own for r in remotes), bool)
            rows = [(eps[r], x[k]) for k, r in enumerate(remotes) if mine[k]]
            if not mine.all():
                rows.append((OTHER, x[~mine].sum(axis=0)))
            for remote, row in rows:
                shown.append(pod_id << 32 | (self._index.id_of(remote) or OTHER_ID))
                rl = remote_labels(remote)
                for direction, p, b in (("tx", TX_PACKETS, TX_BYTES), ("rx", RX_PACKETS, RX_BYTES)):
                    self._count(pair_packets, [*base, *rl, direction], row[p])
                    self._count(pair_bytes, [*base, *rl, direction], row[b])
        self._shown = np.unique(np.asarray(shown, dtype=np.int64)) << 8

        yield from (packets, bytes_, retrans, resets, zero_win, rtt, queries, responses, dns_lat)
        yield from (pair_bytes, pair_packets)

    def _flow_families(
        self, active_by_proto: npt.NDArray[np.int64], evictions: int, size: int
    ) -> Iterator[Metric]:
        node = self._config.node
        started = CounterMetricFamily(
            "mirrorscope_flows_started",
            "Flows the flow table created, by transport protocol.",
            labels=["node", "protocol"],
        )
        active = GaugeMetricFamily(
            "mirrorscope_flows_active",
            "Flows in the flow table now, by transport protocol.",
            labels=["node", "protocol"],
        )
        for i, proto in enumerate(PROTOCOLS):
            self._count(started, [node, proto], self._ended_by_proto[i] + active_by_proto[i])
            active.add_metric([node, proto], float(active_by_proto[i]))
        yield started
        yield active
        table = GaugeMetricFamily(
            "mirrorscope_flow_table_flows", "Flows held in the flow table.", labels=["node"]
        )
        table.add_metric([node], float(size))
        yield table
        evicted = CounterMetricFamily(
            "mirrorscope_flow_table_evictions",
            "Flows ended early because the flow table was full.",
            labels=["node"],
        )
        self._count(evicted, [node], evictions)
        yield evicted

    def _health_families(self) -> Iterator[Metric]:
        health = self._health() if self._health is not None else None
        mirrored = self._mirror_tx() if self._mirror_tx is not None else None
        coverage = None
        if not self._scrape_coverage:
            coverage = self._coverage.ratio()
        elif health is not None and mirrored is not None:
            coverage = self._coverage.update(health.received, mirrored)
        yield from health_families(self._config.node, health, mirrored, coverage)

    def _series_families(self) -> Iterator[Metric]:
        node = self._config.node
        used = GaugeMetricFamily(
            "mirrorscope_metric_series",
            "Worst-case series of the pods and remotes admitted (counted against the bound).",
            labels=["node"],
        )
        used.add_metric([node], float(self._guard.series_used))
        bound = GaugeMetricFamily(
            "mirrorscope_metric_series_limit", "The configured series bound.", labels=["node"]
        )
        bound.add_metric([node], float(self._config.cardinality.max_series))
        dropped = CounterMetricFamily(
            "mirrorscope_metric_series_dropped",
            "Series not exported because the series bound was reached.",
            labels=["node"],
        )
        self._count(dropped, [node], self._guard.series_dropped_total)
        folded = CounterMetricFamily(
            "mirrorscope_metric_remotes_folded",
            'Remotes of a pod folded into remote_pod="other" (beyond top-K or the bound).',
            labels=["node"],
        )
        self._count(folded, [node], self._guard.remotes_folded_total)
        yield from (used, bound, dropped, folded)
