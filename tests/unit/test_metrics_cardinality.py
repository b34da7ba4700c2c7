"""Series bounds: a scan or a pod flood cannot push the exposition past the configured bound."""

from __future__ import annotations

import ipaddress
import random

import pytest
from prometheus_client import CollectorRegistry

from analyzers import IdentityMap
from exporters import CardinalityConfig, FlowMetricsCollector, MetricsConfig
from exporters._cardinality import GLOBAL_SERIES, POD_SERIES
from tests.unit._metrics_doubles import NODE, FakeClock, FakeFlowTable, pod, record


def series(registry: CollectorRegistry) -> int:
    return sum(len(m.samples) for m in registry.collect())


def build(ids: IdentityMap, table: FakeFlowTable, **cfg: int) -> CollectorRegistry:
    registry = CollectorRegistry()
    collector = FlowMetricsCollector(
        table,
        ids,
        MetricsConfig(node=NODE, cardinality=CardinalityConfig(**cfg)),
        clock=FakeClock(),
    )
    table.sinks.append(collector.on_flows_ended)
    registry.register(collector)
    return registry


def test_scan_of_thousands_of_external_addresses_and_ports_adds_no_series() -> None:
    """5000 scan flows from external addresses to many ports export as many series as one flow."""
    victims = [pod("shop", f"web-{i}") for i in range(3)]
    ids = IdentityMap()
    ids.replace("test", [(f"10.244.0.{i + 10}", p) for i, p in enumerate(victims)])
    table = FakeFlowTable()
    registry = build(ids, table, top_k=5, max_series=2000)
    table.start(record(ids.lookup("198.51.100.1"), victims[0], orig_pkts=1, orig_l2_bytes=60))
    for v in victims[1:]:
        table.start(record(ids.lookup("198.51.100.1"), v, orig_pkts=1, orig_l2_bytes=60))
    before = series(registry)

    rng = random.Random(7)
    base = int(ipaddress.ip_address("203.0.113.0"))
    for i in range(5000):
        src = str(ipaddress.ip_address(base + rng.randrange(1 << 16)))
        dst = f"10.244.0.{10 + i % 3}"
        flow = record(ids.lookup(src), ids.lookup(dst), orig_pkts=1, orig_l2_bytes=60)
        fid = table.start(flow)
        if i % 2:
            table.end(fid)  # half the probes time out, half stay in the table
    after = series(registry)
    assert after == before
    assert after <= 2000
    assert registry.get_sample_value(
        "mirrorscope_pod_packets_total",
        {"node": NODE, "namespace": "shop", "pod": "web-0", "direction": "rx"},
    ) == 1 + len(range(0, 5000, 3))


def test_flood_of_pods_and_remotes_stays_under_the_hard_bound() -> None:
    """2000 pods talking to each other cannot exceed max_series; refusals are counted."""
    pods = [pod(f"ns{i % 20}", f"pod-{i}") for i in range(2000)]
    ids = IdentityMap()
    ids.replace(
        "test", [(str(ipaddress.ip_address(0x0AF40000 + i)), p) for i, p in enumerate(pods)]
    )
    table = FakeFlowTable()
    bound = 3000
    registry = build(ids, table, top_k=3, max_series=bound)
    rng = random.Random(11)
    for _ in range(8000):
        a, b = rng.sample(pods, 2)
        table.start(record(a, b, orig_pkts=2, orig_l2_bytes=rng.randrange(1, 10_000)))
    for _ in range(3):
        assert series(registry) <= bound
    dropped = registry.get_sample_value("mirrorscope_metric_series_dropped_total", {"node": NODE})
    assert dropped is not None
    assert dropped > 0
    assert registry.get_sample_value("mirrorscope_metric_series", {"node": NODE}) <= bound


def test_expiry_frees_room_for_new_pods() -> None:
    """Series of deleted pods leave the budget after the grace period, so new pods get series."""
    old, new = pod("a", "old"), pod("a", "new")
    ids = IdentityMap()
    ids.replace("test", [("10.0.0.1", old)])
    table = FakeFlowTable()
    clock = FakeClock()
    registry = CollectorRegistry()
    config = MetricsConfig(
        node=NODE, cardinality=CardinalityConfig(max_series=GLOBAL_SERIES + POD_SERIES, grace_s=60)
    )
    collector = FlowMetricsCollector(table, ids, config, clock=clock)
    registry.register(collector)
    table.start(record(old, ids.lookup("192.0.2.1"), "udp", orig_l2_bytes=1))
    labels = {"node": NODE, "namespace": "a", "direction": "tx"}
    assert registry.get_sample_value("mirrorscope_pod_bytes_total", {**labels, "pod": "old"}) == 1
    ids.replace("test", [("10.0.0.2", new)])
    table.start(record(new, ids.lookup("192.0.2.1"), "udp", orig_l2_bytes=2))
    assert (
        registry.get_sample_value("mirrorscope_pod_bytes_total", {**labels, "pod": "new"}) is None
    )
    clock.now += 61
    assert (
        registry.get_sample_value("mirrorscope_pod_bytes_total", {**labels, "pod": "old"}) is None
    )
    assert registry.get_sample_value("mirrorscope_pod_bytes_total", {**labels, "pod": "new"}) == 2


def test_config_rejects_a_bound_too_small_for_one_pod() -> None:
    """A bound that cannot hold one pod is refused with the minimum in the message."""
    with pytest.raises(ValueError, match=str(GLOBAL_SERIES + POD_SERIES)):
        CardinalityConfig(max_series=10)


def test_pod_churn_does_not_grow_the_endpoint_index_forever() -> None:
    """3000 short-lived pods come and go: ids are reclaimed, a long-lived pod keeps its totals."""
    keeper = pod("a", "keeper")
    ids = IdentityMap()
    table = FakeFlowTable()
    clock = FakeClock()
    config = MetricsConfig(node=NODE, cardinality=CardinalityConfig(grace_s=0))
    collector = FlowMetricsCollector(table, ids, config, clock=clock)
    table.sinks.append(collector.on_flows_ended)
    registry = CollectorRegistry()
    registry.register(collector)
    labels = {"node": NODE, "namespace": "a", "pod": "keeper", "direction": "tx"}
    for wave in range(10):
        short = [pod("batch", f"job-{wave}-{i}") for i in range(300)]
        ids.replace("test", [("10.0.0.1", keeper)] + [(f"10.1.{i // 250}.{i % 250}", p)
                                                       for i, p in enumerate(short)])  # fmt: skip
        for p in short:
            table.end(table.start(record(keeper, p, orig_l2_bytes=1)))
        assert registry.get_sample_value("mirrorscope_pod_bytes_total", labels) == 300 * (wave + 1)
        ids.replace("test", [("10.0.0.1", keeper)])
        clock.now += 1
        registry.collect()  # first scrape without them starts the (zero) grace period
        clock.now += 1
        registry.collect()
    # without compaction the index would hold all 3001 pods ever seen
    assert len(collector._index) < 2 * 300 + 1024 + 2
    assert registry.get_sample_value("mirrorscope_pod_bytes_total", labels) == 3000
