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

from analyzers import Endpoint, EndpointKind
from exporters._aggregate import (
    DNS0,
    DNS_BUCKETS,
    DNS_COUNT,
    DNS_QUERIES,
    F64,
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
    Key,
    add_into,
    add_vec,
    aggregate,
    protocol_counts,
)
from exporters._cardinality import CardinalityConfig, CardinalityGuard, EndpointDirectory
from exporters._coverage import CoverageWindow
from exporters._ended import EndedFlows, FlowRecordLike
from exporters._flowstats import FlowColumns, FlowStats, FlowStatsSource
from exporters._health import CaptureHealth, health_families

log = logging.getLogger(__name__)

#: Stand-in remote for everything folded: deleted pods and remotes beyond the top-K.
OTHER = Endpoint(EndpointKind.EXTERNAL, pod="other")


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

    Register it on a registry you own: ``registry.register(collector)``; give ``on_flow_end`` to the
    flow table. ``health`` and ``mirror_tx_packets`` are read at scrape time; either may be None
    (its families are then left out). ``mirror_tx_packets`` returns None when OVSDB is unreachable.
    """

    def __init__(
        self,
        source: FlowStatsSource,
        directory: EndpointDirectory,
        config: MetricsConfig,
        *,
        ended: EndedFlows | None = None,
        health: Callable[[], CaptureHealth] | None = None,
        mirror_tx_packets: Callable[[], int | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._directory = directory
        self._config = config
        self._health = health
        self._mirror_tx = mirror_tx_packets
        self._guard = CardinalityGuard(config.cardinality, clock)
        self._coverage = CoverageWindow(clock, config.coverage_window_s)
        self._lock = threading.Lock()
        self.ended = ended if ended is not None else EndedFlows()
        self._last: dict[tuple[str, tuple[str, ...]], float] = {}
        self._next: dict[tuple[str, tuple[str, ...]], float] = {}
        self._shown: dict[Endpoint, set[Endpoint]] = {}
        self._cumulative: dict[Key, F64] = {}
        self._ended_by_proto = np.zeros(len(PROTOCOLS), dtype=np.int64)

    def on_flow_end(self, flow: FlowStats) -> None:
        """Take one ended flow (the flow table calls it once per flow)."""
        self.ended.on_flow_end(flow)

    def on_flows_ended(self, records: Sequence[FlowRecordLike]) -> None:
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

    def _fold(self, agg: dict[Key, F64]) -> dict[Key, F64]:
        """Drop expired local pods; send expired remotes to ``other``."""
        out: dict[Key, F64] = {}
        for (local, remote, proto), vec in agg.items():
            if self._guard.is_expired(local):
                continue
            shown = OTHER if self._guard.is_expired(remote) else remote
            add_vec(out, (local, shown, proto), vec)
        return out

    def _collect(self) -> Iterator[Metric]:
        ended = FlowColumns.from_rows(self.ended.drain())
        snap = self._source.flow_snapshot()
        self._ended_by_proto += protocol_counts(ended)
        ended_agg = aggregate(ended)
        active_agg = aggregate(snap.active)
        seen = {
            e
            for agg in (self._cumulative, ended_agg, active_agg)
            for key in agg
            for e in key[:2]
            if isinstance(e, Endpoint) and e.kind is EndpointKind.POD
        }
        if self._guard.refresh(self._directory, seen):
            self._cumulative = self._fold(self._cumulative)
        add_into(self._cumulative, self._fold(ended_agg))
        merged = {k: v.copy() for k, v in self._cumulative.items()}
        add_into(merged, self._fold(active_agg))

        yield from self._pod_families(merged)
        active_by_proto = protocol_counts(snap.active)
        yield from self._flow_families(active_by_proto, snap.evictions, len(snap.active))
        yield from self._health_families()
        yield from self._series_families()

    def _pod_families(self, merged: dict[Key, F64]) -> Iterator[Metric]:
        node = self._config.node
        per_pod: dict[Endpoint, F64] = {}
        per_pair: dict[Endpoint, dict[Endpoint, F64]] = {}
        for (local, remote, _), vec in merged.items():
            add_vec(per_pod, local, vec)
            add_vec(per_pair.setdefault(local, {}), remote, vec)
        # A series exported last time must not vanish because its flow is between the table and
        # the ended queue at this instant: give it a zero vector and let _mono keep its value.
        zero = np.zeros(WIDTH)
        for pod, last_remotes in self._shown.items():
            if self._guard.is_expired(pod):
                continue
            per_pod.setdefault(pod, zero)
            pairs = per_pair.setdefault(pod, {})
            for remote in last_remotes:
                if not self._guard.is_expired(remote):
                    pairs.setdefault(remote, zero)
        self._shown = {}

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

        for pod in sorted(per_pod, key=lambda e: (e.namespace, e.pod)):
            if not self._guard.admit_pod(pod):
                continue
            v = per_pod[pod]
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

            remotes = per_pair[pod]
            own = self._guard.assign_remotes(
                pod, {r: float(x[TX_BYTES] + x[RX_BYTES]) for r, x in remotes.items() if r != OTHER}
            )
            shown: dict[Endpoint, F64] = {}
            for remote, x in remotes.items():
                add_vec(shown, remote if remote in own else OTHER, x)
            self._shown[pod] = set(shown)
            for remote, x in shown.items():
                rl = remote_labels(remote)
                for direction, p, b in (("tx", TX_PACKETS, TX_BYTES), ("rx", RX_PACKETS, RX_BYTES)):
                    self._count(pair_packets, [*base, *rl, direction], x[p])
                    self._count(pair_bytes, [*base, *rl, direction], x[b])

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
        if health is not None and mirrored is not None:
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
