"""A real Prometheus server scrapes the exporter over HTTP and stores what the collector served."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from analyzers import EXTERNAL, IdentityMap
from exporters import (
    CaptureHealth,
    FlowMetricsCollector,
    FlowStats,
    HttpServer,
    MetricsConfig,
    build_app,
)
from tests.functional._prometheus import StartPrometheus
from tests.unit._metrics_doubles import NODE, FakeFlowTable, pod

A = pod("shop", "frontend")
B = pod("shop", "backend")
TX = 'mirrorscope_pod_bytes_total{job="mirrorscope",namespace="shop",pod="frontend",direction="tx"}'


class Exporter:
    def __init__(self) -> None:
        self.table = FakeFlowTable()
        self.ids = IdentityMap()
        self.ids.replace("test", [("10.0.0.1", A), ("10.0.0.2", B)])
        self.received = 0
        self.collector = FlowMetricsCollector(
            self.table,
            self.ids,
            MetricsConfig(node=NODE),
            health=lambda: CaptureHealth(received=self.received),
            mirror_tx_packets=lambda: self.received,
        )
        self.table.sinks.append(self.collector.on_flow_end)
        self.registry = CollectorRegistry()
        self.registry.register(self.collector)
        self.server = HttpServer(build_app(self.registry, token=None), "127.0.0.1:0")

    @property
    def target(self) -> str:
        host, port = self.server.address
        return f"{host}:{port}"

    def body(self) -> bytes:
        with urllib.request.urlopen(f"http://{self.target}/metrics", timeout=5) as resp:
            return bytes(resp.read())


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    exp = Exporter()
    exp.server.start()
    try:
        yield exp
    finally:
        exp.server.stop()


def test_prometheus_stores_the_pod_counters_the_exporter_serves(
    exporter: Exporter, prometheus: StartPrometheus
) -> None:
    """PromQL returns the collector's values, and a flow ending causes no counter reset."""
    t = exporter.table
    fid = t.start(FlowStats(A, B, 6, orig_packets=10, orig_bytes=15_000, resp_bytes=600))
    t.start(FlowStats(EXTERNAL, A, 17, resp_packets=3, resp_bytes=1_200))
    exporter.received = 13
    prom = prometheus([exporter.target])
    prom.wait_for(f'up{{job="mirrorscope",instance="{exporter.target}"}}', lambda v: v == 1)
    assert prom.wait_for(TX, lambda v: v is not None) == 16_200

    t.end(fid)
    t.start(FlowStats(A, B, 6, orig_packets=1, orig_bytes=800))
    assert prom.wait_for(TX, lambda v: v == 17_000) == 17_000
    assert prom.value(f"resets({TX}[1m])") == 0
    remote = (
        'mirrorscope_pod_remote_bytes_total{namespace="shop",pod="frontend",direction="tx",'
        'remote_kind="pod",remote_namespace="shop",remote_pod="backend"}'
    )
    assert prom.value(remote) == 15_800
    assert prom.value('mirrorscope_flows_started_total{protocol="tcp"}') == 2
    assert prom.value(f'count(mirrorscope_pod_bytes_total{{node="{NODE}"}})') == 4


def test_every_served_series_reaches_prometheus(
    exporter: Exporter, prometheus: StartPrometheus
) -> None:
    """The number of mirrorscope series Prometheus holds equals the number served in one scrape."""
    exporter.table.start(FlowStats(A, B, 6, orig_bytes=1, handshake_rtt_s=0.001))
    exporter.table.start(FlowStats(A, B, 17, dns_queries=1, dns_responses=1, dns_rcode=0,
                                   dns_latency_s=0.002))  # fmt: skip
    prom = prometheus([exporter.target])
    prom.wait_for(f'up{{instance="{exporter.target}"}}', lambda v: v == 1)
    served = sum(len(f.samples) for f in text_string_to_metric_families(exporter.body().decode()))
    stored = prom.wait_for(
        'count({__name__=~"mirrorscope_.+"})', lambda v: v is not None and v >= served
    )
    assert stored == served


def test_promtool_finds_nothing_on_the_served_exposition(exporter: Exporter) -> None:
    """`promtool check metrics` on the /metrics body fetched over HTTP reports nothing."""
    exporter.table.start(FlowStats(A, B, 6, orig_bytes=5, orig_resets=1, handshake_rtt_s=0.01))
    exporter.table.start(FlowStats(A, B, 17, dns_queries=2, dns_responses=1, dns_rcode=2))
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: install Debian's prometheus package"
    out = subprocess.run(
        [promtool, "check", "metrics"],
        input=exporter.body(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert (out.returncode, out.stdout, out.stderr) == (0, b"", b"")
