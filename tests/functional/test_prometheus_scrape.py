"""A real Prometheus server scrapes the exporter over HTTP and stores what the collector served."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from analyzers import EXTERNAL, DnsStats, IdentityMap
from exporters import (
    CaptureHealth,
    FlowMetricsCollector,
    HttpServer,
    MetricsConfig,
    build_app,
)
from tests.functional._prometheus import StartPrometheus
from tests.unit._metrics_doubles import NODE, FakeFlowTable, handshake, pod, record

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
        self.table.sinks.append(self.collector.on_flows_ended)
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
    fid = t.start(record(A, B, orig_pkts=10, orig_l2_bytes=15_000, resp_l2_bytes=600))
    t.start(record(EXTERNAL, A, "udp", resp_pkts=3, resp_l2_bytes=1_200))
    exporter.received = 13
    prom = prometheus([exporter.target])
    prom.wait_for(f'up{{job="mirrorscope",instance="{exporter.target}"}}', lambda v: v == 1)
    assert prom.wait_for(TX, lambda v: v is not None) == 16_200

    t.end(fid)
    t.start(record(A, B, orig_pkts=1, orig_l2_bytes=800))
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
    exporter.table.start(record(A, B, orig_l2_bytes=1, tcp=handshake(0.001)))
    exporter.table.start(
        record(A, B, "udp", dns=DnsStats(queries=1, responses=1, rcode=0, latency=0.002))
    )
    prom = prometheus([exporter.target])
    prom.wait_for(f'up{{instance="{exporter.target}"}}', lambda v: v == 1)
    served = sum(len(f.samples) for f in text_string_to_metric_families(exporter.body().decode()))
    stored = prom.wait_for(
        'count({__name__=~"mirrorscope_.+"})', lambda v: v is not None and v >= served
    )
    assert stored == served


def test_promtool_finds_nothing_on_the_served_exposition(exporter: Exporter) -> None:
    """`promtool check metrics` on the /metrics body fetched over HTTP reports nothing."""
    exporter.table.start(record(A, B, orig_l2_bytes=5, tcp=handshake(0.01, rst_orig=1)))
    exporter.table.start(record(A, B, "udp", dns=DnsStats(queries=2, responses=1, rcode=2)))
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
