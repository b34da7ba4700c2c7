"""The exposition passes Prometheus' linter, `promtool check metrics`, with nothing to report."""

from __future__ import annotations

import shutil
import subprocess

from prometheus_client import CollectorRegistry, generate_latest

from analyzers import EXTERNAL, IdentityMap
from exporters import CaptureHealth, FlowMetricsCollector, FlowStats, MetricsConfig
from tests.unit._metrics_doubles import NODE, FakeClock, FakeFlowTable, node, pod


def full_exposition() -> bytes:
    a, b = pod("shop", "frontend"), pod("kube-system", "coredns")
    ids = IdentityMap()
    ids.replace("test", [("10.0.0.1", a), ("10.0.0.2", b)])
    table = FakeFlowTable()
    clock = FakeClock()
    collector = FlowMetricsCollector(
        table,
        ids,
        MetricsConfig(node=NODE),
        health=lambda: CaptureHealth(10, 1, {"truncated_l4": 2, "bad_ip_version": 1}, 3),
        mirror_tx_packets=lambda: int(clock.now),
        clock=clock,
    )
    table.sinks.append(collector.on_flow_end)
    registry = CollectorRegistry()
    registry.register(collector)
    table.start(FlowStats(a, b, 17, 1, 80, 1, 120, dns_queries=1, dns_responses=1, dns_rcode=3,
                          dns_latency_s=0.001))  # fmt: skip
    table.end(table.start(FlowStats(a, EXTERNAL, 6, 5, 500, 4, 4000, orig_retransmits=1,
                                    handshake_rtt_s=0.01)))  # fmt: skip
    table.start(FlowStats(node("node-a"), a, 6, 2, 120))
    for _ in range(2):  # coverage needs two changes of OVS's counter after the first reading
        generate_latest(registry)
        clock.now += 15
    return generate_latest(registry)


def test_promtool_check_metrics_reports_nothing() -> None:
    """Every family of a full exposition follows the naming and format rules promtool enforces."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: install Debian's prometheus package (scripts/bootstrap.sh)"
    body = full_exposition()
    for family in (
        b"mirrorscope_pod_bytes_total",
        b"mirrorscope_tcp_handshake_rtt_seconds_bucket",
        b"mirrorscope_dns_responses_total",
        b"mirrorscope_pod_remote_packets_total",
        b"mirrorscope_capture_coverage_ratio",
    ):
        assert family in body
    out = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=30, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == b""
    assert out.stderr.strip() == b""
