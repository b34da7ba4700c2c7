"""The exposition passes Prometheus' linter, `promtool check metrics`, with nothing to report."""

from __future__ import annotations

import shutil
import subprocess

from prometheus_client import CollectorRegistry, generate_latest

from analyzers import EXTERNAL, DnsStats, IdentityMap
from exporters import CaptureHealth, FlowMetricsCollector, MetricsConfig
from tests.unit._metrics_doubles import NODE, FakeClock, FakeFlowTable, handshake, node, pod, record


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
    table.sinks.append(collector.on_flows_ended)
    registry = CollectorRegistry()
    registry.register(collector)
    table.start(
        record(
            a,
            b,
            "udp",
            orig_pkts=1,
            orig_l2_bytes=80,
            resp_pkts=1,
            resp_l2_bytes=120,
            dns=DnsStats(queries=1, responses=1, rcode=3, latency=0.001),
        )
    )
    table.end(
        table.start(
            record(
                a,
                EXTERNAL,
                orig_pkts=5,
                orig_l2_bytes=500,
                resp_pkts=4,
                resp_l2_bytes=4000,
                tcp=handshake(0.01, retrans_orig=1),
            )
        )
    )
    table.start(record(node("node-a"), a, orig_pkts=2, orig_l2_bytes=120))
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
