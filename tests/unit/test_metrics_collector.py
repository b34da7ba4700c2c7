"""The flow-metrics collector: per-pod families computed at scrape time from the flow table."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry

from analyzers import EXTERNAL, DnsStats, Endpoint, EndpointKind, IdentityMap, TcpStats
from exporters import (
    CaptureHealth,
    CardinalityConfig,
    FlowMetricsCollector,
    FlowSnapshot,
    MetricsConfig,
)
from tests.unit._metrics_doubles import NODE, FakeClock, FakeFlowTable, handshake, node, pod, record

A = pod("shop", "frontend")
B = pod("shop", "backend")
C = pod("kube-system", "coredns")


def identities(*pods: object) -> IdentityMap:
    ids = IdentityMap()
    ids.replace("test", [(f"10.0.0.{i + 1}", p) for i, p in enumerate(pods)])  # type: ignore[misc]
    return ids


class Harness:
    def __init__(
        self, *pods: object, top_k: int = 10, max_series: int = 20_000, **kw: object
    ) -> None:
        self.table = FakeFlowTable()
        self.ids = identities(*pods)
        self.clock = FakeClock()
        self.registry = CollectorRegistry()
        self.collector = FlowMetricsCollector(
            self.table,
            self.ids,
            MetricsConfig(
                node=NODE, cardinality=CardinalityConfig(top_k=top_k, max_series=max_series)
            ),
            clock=self.clock,
            **kw,  # type: ignore[arg-type]
        )
        self.table.sinks.append(self.collector.on_flows_ended)
        self.registry.register(self.collector)

    def value(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, {"node": NODE, **labels})

    def pod_bytes(self, p: object, direction: str) -> float | None:
        return self.value(
            "mirrorscope_pod_bytes_total",
            namespace=p.namespace,  # type: ignore[attr-defined]
            pod=p.pod,  # type: ignore[attr-defined]
            direction=direction,
        )


def test_pod_to_pod_flow_counts_tx_and_rx_for_both_pods() -> None:
    """Each pod side of a flow sees its own sent bytes as tx and the peer's as rx."""
    h = Harness(A, B)
    h.table.start(record(A, B, orig_pkts=10, orig_l2_bytes=1000, resp_pkts=5, resp_l2_bytes=500))
    assert h.pod_bytes(A, "tx") == 1000
    assert h.pod_bytes(A, "rx") == 500
    assert h.pod_bytes(B, "tx") == 500
    assert h.pod_bytes(B, "rx") == 1000
    assert (
        h.value("mirrorscope_pod_packets_total", namespace="shop", pod="backend", direction="rx")
        == 10
    )


def test_counter_keeps_its_value_when_flow_moves_from_active_to_ended() -> None:
    """Ending a flow moves its totals to the cumulative store: no drop, no double count."""
    h = Harness(A, B)
    fid = h.table.start(record(A, B, orig_l2_bytes=1000))
    assert h.pod_bytes(A, "tx") == 1000
    h.table.end(fid)
    assert h.pod_bytes(A, "tx") == 1000
    h.table.start(record(A, B, orig_l2_bytes=7))
    assert h.pod_bytes(A, "tx") == 1007


def test_flow_ending_between_drain_and_snapshot_never_shows_as_a_decrease() -> None:
    """A flow gone from the table but not yet delivered leaves the counter at its last value."""
    h = Harness(A, B)
    fid = h.table.start(record(A, B, "udp", orig_l2_bytes=300))
    assert h.pod_bytes(A, "tx") == 300
    late = h.table.active.pop(fid)  # ended under the table's lock, delivery still pending
    assert h.pod_bytes(A, "tx") == 300
    h.collector.on_flows_ended([late])
    h.table.start(record(A, B, "udp", orig_l2_bytes=1))
    assert h.pod_bytes(A, "tx") == 301


def test_flows_started_and_active_by_protocol() -> None:
    """Started = active + ended flows; active counts the snapshot; odd protocols are other."""
    h = Harness(A, B)
    f1 = h.table.start(record(A, B))
    h.table.start(record(A, B))
    h.table.start(record(A, EXTERNAL, "udp"))
    h.table.start(record(A, EXTERNAL, "250"))
    h.table.end(f1)
    assert h.value("mirrorscope_flows_started_total", protocol="tcp") == 2
    assert h.value("mirrorscope_flows_active", protocol="tcp") == 1
    assert h.value("mirrorscope_flows_active", protocol="udp") == 1
    assert h.value("mirrorscope_flows_active", protocol="other") == 1
    assert h.value("mirrorscope_flow_table_flows") == 3


def test_tcp_counters_belong_to_the_sending_pod() -> None:
    """Retransmits, resets and zero windows are charged to the pod that sent those segments."""
    h = Harness(A, B)
    h.table.start(
        record(A, B, tcp=TcpStats(retrans_orig=3, retrans_resp=1, rst_resp=1, zero_win_orig=2))
    )
    lb = {"namespace": "shop", "pod": "frontend"}
    assert h.value("mirrorscope_tcp_retransmits_total", **lb) == 3
    assert h.value("mirrorscope_tcp_resets_total", **lb) == 0
    assert h.value("mirrorscope_tcp_zero_windows_total", **lb) == 2
    assert h.value("mirrorscope_tcp_resets_total", namespace="shop", pod="backend") == 1


def test_handshake_rtt_histogram_is_charged_to_the_client_in_seconds() -> None:
    """Each completed handshake is one observation of the originating pod's RTT histogram."""
    h = Harness(A, B)
    h.table.start(record(A, B, tcp=handshake(0.0003)))
    h.table.start(record(A, B, tcp=handshake(0.002)))
    h.table.start(record(A, B))  # handshake not seen: no observation
    lb = {"namespace": "shop", "pod": "frontend"}
    name = "mirrorscope_tcp_handshake_rtt_seconds"
    assert h.value(f"{name}_count", **lb) == 2
    assert h.value(f"{name}_sum", **lb) == pytest.approx(0.0023)
    assert h.value(f"{name}_bucket", le="0.00025", **lb) == 0
    assert h.value(f"{name}_bucket", le="0.0005", **lb) == 1
    assert h.value(f"{name}_bucket", le="0.0025", **lb) == 2
    assert h.value(f"{name}_bucket", le="+Inf", **lb) == 2
    assert h.value(f"{name}_count", namespace="shop", pod="backend") is None


def test_dns_queries_responses_by_rcode_and_latency() -> None:
    """DNS counts go to the querying pod, responses by rcode mnemonic, unknown codes as other."""
    h = Harness(A, C)
    h.table.start(record(A, C, "udp", dns=DnsStats(queries=1, responses=1, rcode=0, latency=0.004)))
    h.table.start(record(A, C, "udp", dns=DnsStats(queries=1, responses=1, rcode=3, latency=0.02)))
    h.table.start(record(A, C, "udp", dns=DnsStats(queries=1, responses=1, rcode=23)))
    h.table.start(record(A, C, "udp", dns=DnsStats(queries=2)))  # unanswered
    lb = {"namespace": "shop", "pod": "frontend"}
    assert h.value("mirrorscope_dns_queries_total", **lb) == 5
    assert h.value("mirrorscope_dns_responses_total", rcode="NOERROR", **lb) == 1
    assert h.value("mirrorscope_dns_responses_total", rcode="NXDOMAIN", **lb) == 1
    assert h.value("mirrorscope_dns_responses_total", rcode="other", **lb) == 1
    assert h.value("mirrorscope_dns_response_latency_seconds_count", **lb) == 2
    assert h.value("mirrorscope_dns_response_latency_seconds_bucket", le="0.005", **lb) == 1
    assert h.value("mirrorscope_dns_queries_total", namespace="kube-system", pod="coredns") is None


def test_remote_labels_name_pods_nodes_and_external() -> None:
    """Pairs carry the remote's kind; nodes by name, all external addresses as one remote."""
    h = Harness(A, B)
    h.table.start(record(A, B, orig_l2_bytes=10))
    h.table.start(record(A, node("node-b"), orig_l2_bytes=20))
    h.table.start(record(EXTERNAL, A, resp_l2_bytes=30))
    h.table.start(record(EXTERNAL, A, resp_l2_bytes=40))
    name = "mirrorscope_pod_remote_bytes_total"
    base = {"namespace": "shop", "pod": "frontend", "direction": "tx"}
    rp = {"remote_namespace": "shop", "remote_pod": "backend", "remote_kind": "pod"}
    assert h.value(name, **base, **rp) == 10
    rn = {"remote_namespace": "", "remote_pod": "node-b", "remote_kind": "node"}
    assert h.value(name, **base, **rn) == 20
    rx = {"remote_namespace": "", "remote_pod": "external", "remote_kind": "external"}
    assert h.value(name, **base, **rx) == 70


def test_remotes_beyond_top_k_fold_into_other_and_stay_there() -> None:
    """Only the top-K remotes get series; a folded remote stays folded so other never decreases."""
    peers = [pod("ns", f"p{i}") for i in range(5)]
    h = Harness(A, *peers, top_k=2)
    fids = [h.table.start(record(A, p, orig_l2_bytes=100 * (i + 1))) for i, p in enumerate(peers)]
    name = "mirrorscope_pod_remote_bytes_total"
    base = {"namespace": "shop", "pod": "frontend", "direction": "tx"}
    other = {"remote_namespace": "", "remote_pod": "other", "remote_kind": "other"}

    def remote(i: int) -> float | None:
        return h.value(name, **base, remote_namespace="ns", remote_pod=f"p{i}", remote_kind="pod")

    assert remote(4) == 500
    assert remote(3) == 400
    assert remote(0) is None
    assert h.value(name, **base, **other) == 100 + 200 + 300
    assert h.value("mirrorscope_metric_remotes_folded_total") == 3
    # p0 becomes the top talker
    h.table.update(fids[0], record(A, peers[0], orig_l2_bytes=10_000))
    assert remote(0) is None
    assert h.value(name, **base, **other) == 10_000 + 200 + 300
    assert h.pod_bytes(A, "tx") == 10_000 + 200 + 300 + 400 + 500


def test_deleted_pod_series_expire_after_the_grace_period() -> None:
    """A pod gone from the identity map keeps its series for the grace period, then loses them."""
    h = Harness(A, B)
    h.table.end(h.table.start(record(A, B, orig_l2_bytes=1000)))
    assert h.pod_bytes(B, "rx") == 1000
    h.ids.replace("test", [("10.0.0.1", A)])  # backend deleted
    assert h.pod_bytes(B, "rx") == 1000  # first scrape that misses it starts the grace period
    h.clock.now += 59
    assert h.pod_bytes(B, "rx") == 1000
    h.clock.now += 2
    assert h.pod_bytes(B, "rx") is None
    # frontend's totals are unchanged; its pair with the deleted pod moved to other.
    assert h.pod_bytes(A, "tx") == 1000
    other = {"remote_namespace": "", "remote_pod": "other", "remote_kind": "other"}
    assert (
        h.value(
            "mirrorscope_pod_remote_bytes_total",
            namespace="shop",
            pod="frontend",
            direction="tx",
            **other,
        )
        == 1000
    )
    # a late flow of the deleted pod does not resurrect its series
    h.table.end(h.table.start(record(B, A, orig_l2_bytes=5)))
    assert h.pod_bytes(B, "tx") is None
    assert h.pod_bytes(A, "rx") == 5


def test_every_sample_carries_the_node_label() -> None:
    """The constant node label from configuration is on every exported sample."""
    h = Harness(A, B, health=lambda: CaptureHealth(received=5), mirror_tx_packets=lambda: 5)
    h.table.start(record(A, B, orig_l2_bytes=1, tcp=handshake(0.001), dns=DnsStats(rcode=0)))
    samples = [s for m in h.registry.collect() for s in m.samples]
    assert len(samples) > 40
    assert all(s.labels.get("node") == NODE for s in samples)


def test_capture_health_families_and_coverage() -> None:
    """Health counters mirror the capture's; coverage is received / OVS tx between changes of
    OVS's counter."""
    health = CaptureHealth(received=0, kernel_dropped=0, malformed={}, duplicates=0)
    mirrored = 0

    def read_health() -> CaptureHealth:
        return health

    h = Harness(A, health=read_health, mirror_tx_packets=lambda: mirrored)
    assert h.value("mirrorscope_capture_coverage_ratio") is None  # one reading: undefined
    h.clock.now += 5
    health = CaptureHealth(received=100)
    mirrored = 100
    assert h.value("mirrorscope_capture_coverage_ratio") is None  # one change point: undefined
    h.clock.now += 5
    health = CaptureHealth(
        received=910,
        kernel_dropped=100,
        malformed={"truncated_l4": 3},
        duplicates=4,
        encapsulated={"gre": 7, "vlan": 2},
    )
    mirrored = 1000
    assert h.value("mirrorscope_capture_coverage_ratio") == pytest.approx(0.9)
    assert h.value("mirrorscope_capture_received_packets_total") == 910
    assert h.value("mirrorscope_capture_kernel_dropped_packets_total") == 100
    assert h.value("mirrorscope_capture_malformed_packets_total", reason="truncated_l4") == 3
    assert h.value("mirrorscope_capture_duplicate_packets_total") == 4
    assert h.value("mirrorscope_capture_encapsulated_frames_total", encap="gre") == 7
    assert h.value("mirrorscope_capture_encapsulated_frames_total", encap="vlan") == 2
    assert h.value("mirrorscope_mirror_tx_packets_total") == 1000


def test_mirror_counter_unknown_leaves_its_families_out() -> None:
    """When OVSDB cannot be read the mirror counter and coverage are absent, not zero."""
    h = Harness(A, health=lambda: CaptureHealth(received=1), mirror_tx_packets=lambda: None)
    assert h.value("mirrorscope_mirror_tx_packets_total") is None
    assert h.value("mirrorscope_capture_coverage_ratio") is None
    assert h.value("mirrorscope_capture_received_packets_total") == 1


def test_nan_free_exposition_for_flows_without_tcp_or_dns() -> None:
    """A UDP-only pod exports zero TCP counters and no empty histograms."""
    h = Harness(A, B)
    h.table.start(record(A, B, "udp", orig_l2_bytes=3))
    samples = [s for m in h.registry.collect() for s in m.samples]
    assert not any(math.isnan(s.value) for s in samples)
    assert h.value("mirrorscope_tcp_retransmits_total", namespace="shop", pod="frontend") == 0
    assert not any(s.name.startswith("mirrorscope_tcp_handshake_rtt") for s in samples)


def test_pods_of_other_nodes_are_remotes_only() -> None:
    """A pod on another node gets no per-pod series here, so sums over nodes count packets once."""
    far = Endpoint(EndpointKind.POD, namespace="shop", pod="db", node="node-b")
    h = Harness(A, far)
    h.table.start(record(A, far, orig_l2_bytes=100, resp_l2_bytes=40))
    assert h.pod_bytes(A, "tx") == 100
    assert (
        h.value("mirrorscope_pod_bytes_total", namespace="shop", pod="db", direction="tx") is None
    )
    labels = {"namespace": "shop", "pod": "frontend", "direction": "rx", "remote_kind": "pod"}
    remote = {"remote_namespace": "shop", "remote_pod": "db"}
    assert h.value("mirrorscope_pod_remote_bytes_total", **labels, **remote) == 40


def test_failing_snapshot_loses_no_ended_flow() -> None:
    """If reading the active flows fails, the ended flows drained in that scrape still count."""
    h = Harness(A, B)
    h.table.end(h.table.start(record(A, B, orig_l2_bytes=70)))
    real = h.table.flow_snapshot

    def broken() -> FlowSnapshot:
        raise RuntimeError("table busy")

    h.table.flow_snapshot = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="table busy"):
        h.registry.get_sample_value("mirrorscope_pod_bytes_total", {})
    h.table.flow_snapshot = real  # type: ignore[method-assign]
    assert h.pod_bytes(A, "tx") == 70
