"""End to end on the lab: mirror0 -> ring -> decoder -> flow table -> exporter -> real Prometheus.

The capture service does not exist yet, so this test wires the same pieces in a thread; tshark
captures the same mirror independently and its byte count is the reference.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from analyzers import Endpoint, EndpointKind, FlowTable, IdentityMap, decode
from capture import AfPacketSource
from exporters import (
    CaptureHealth,
    EndedFlows,
    FlowMetricsCollector,
    FlowTableSource,
    MetricsConfig,
    MetricsServer,
)
from mirrorctl import LabPod, LabState, ServiceKind, pod_exec
from tests.functional._prometheus import StartPrometheus
from tests.functional.conftest import LabFactory


def identities(state: LabState) -> IdentityMap:
    node = state.node_port.node_name
    ids = IdentityMap()
    entries: list[tuple[str, Endpoint]] = []
    for p in state.pods:
        ep = Endpoint(EndpointKind.POD, namespace=p.namespace, pod=p.name, node=node)
        entries += [(p.ipv4, ep), (p.ipv6, ep)]
    entries.append((state.node_port.ipv4, Endpoint(EndpointKind.NODE, node=node)))
    ids.replace("lab", entries)
    return ids


@dataclass
class Pipeline:
    """What the capture service will do: ring -> decode -> flow table, metrics over HTTP."""

    source: AfPacketSource
    table: FlowTable
    server: MetricsServer
    thread: threading.Thread

    @property
    def target(self) -> str:
        host, port = self.server.address
        return f"{host}:{port}"


@pytest.fixture
def pipeline(lab_factory: LabFactory) -> Iterator[tuple[LabState, Pipeline]]:
    state = lab_factory(pods=4, kube_ovn_mirror="global")
    node = state.node_port.node_name
    ids = identities(state)
    ended = EndedFlows()
    table = FlowTable(ids, on_ended=[ended], node=node)
    source = AfPacketSource("mirror0", netns=state.node_netns, block_size=1 << 20, block_count=64)

    def health() -> CaptureHealth:
        stats = source.stats()
        return CaptureHealth(received=stats.received, kernel_dropped=stats.dropped)

    def mirror_tx_packets() -> int | None:
        """What OVS says it sent to mirror0, read with ovs-vsctl (the control plane's job)."""
        out = subprocess.run(
            ["ovs-vsctl", f"--db={state.ovsdb}", "--timeout=5", "get", "Mirror", "m0",
             "statistics:tx_packets"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return int(out.stdout) if out.returncode == 0 and out.stdout.strip().isdigit() else None

    collector = FlowMetricsCollector(
        FlowTableSource(table),
        ids,
        MetricsConfig(node=node),
        ended=ended,
        health=health,
        mirror_tx_packets=mirror_tx_packets,
    )
    registry = CollectorRegistry()
    registry.register(collector)

    def run() -> None:
        for batch in source.batches():
            table.process(batch, decode(batch))

    thread = threading.Thread(target=run, name="capture", daemon=True)
    thread.start()
    server = MetricsServer(registry, listen="127.0.0.1:0").start()
    try:
        yield state, Pipeline(source, table, server, thread)
    finally:
        server.stop()
        source.close()
        thread.join(timeout=10)


def client(state: LabState) -> LabPod:
    serving = {s.pod for s in state.services}
    return next(p for p in state.pods if p not in serving)


def start_tshark(state: LabState, pcap: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", state.node_netns, "tshark", "-i", "mirror0", "-B", "64",
         "-F", "pcap", "-w", str(pcap)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    deadline = time.monotonic() + 20
    while b"Capturing on" not in proc.stderr.readline():
        assert proc.poll() is None, "tshark exited before capturing"
        assert time.monotonic() < deadline, "tshark did not start capturing within 20 s"
    # "Capturing on" comes before dumpcap's ring is live: traffic sent at once is partly missed.
    time.sleep(2.0)
    return proc


def tshark_tx_bytes(pcap: Path, pod: LabPod) -> int:
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-T", "fields", "-e", "frame.len",
         "-Y", f"ip.src == {pod.ipv4} || ipv6.src == {pod.ipv6}"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return sum(int(x) for x in out.split())


def test_promql_pod_tx_bytes_agree_with_tshark_within_1_percent(
    pipeline: tuple[LabState, Pipeline], prometheus: StartPrometheus, tmp_path: Path
) -> None:
    """iperf3 + curl from one pod: PromQL tx bytes match tshark within 1 %; coverage is 1 ± 1 %."""
    state, pipe = pipeline
    prom = prometheus([pipe.target])
    prom.wait_for(f'up{{instance="{pipe.target}"}}', lambda v: v == 1)
    pcap = tmp_path / "mirror0.pcap"
    tshark = start_tshark(state, pcap)
    try:
        src = client(state)
        iperf = state.service(ServiceKind.IPERF3)
        http = state.service(ServiceKind.HTTP)
        pod_exec(
            src,
            ["iperf3", "-c", iperf.pod.ipv4, "-p", str(iperf.port), "-t", "2", "-b", "100M"],
            capture_output=True, check=True, timeout=30,
        )  # fmt: skip
        for _ in range(5):
            pod_exec(
                src, ["curl", "-sS", "-o", "/dev/null", f"http://{http.pod.ipv4}:{http.port}/"],
                capture_output=True, check=True, timeout=10,
            )  # fmt: skip
        time.sleep(1.0)  # last ACKs and FINs reach both captures
    finally:
        tshark.send_signal(signal.SIGINT)
        _, tshark_err = tshark.communicate(timeout=20)
    assert b" dropped" not in tshark_err or b"0 packets dropped" in tshark_err, tshark_err
    expected = tshark_tx_bytes(pcap, src)
    assert expected > 10_000_000  # 2 s at 100 Mbit/s is ~25 MB: the test measured real traffic
    assert pipe.source.stats().dropped == 0, "the ring dropped frames: the comparison is void"
    query = (
        f'mirrorscope_pod_bytes_total{{namespace="{src.namespace}",pod="{src.name}",'
        'direction="tx"}'
    )
    try:
        got = prom.wait_for(
            query, lambda v: v is not None and abs(v - expected) <= 0.01 * expected, timeout=30
        )
    except AssertionError as err:
        raise AssertionError(f"tshark counted {expected} B ({tshark_err!r}): {err}") from None
    assert got is not None
    print(tshark_err.decode().strip())
    print(
        f"tshark {expected} B, PromQL {got:.0f} B, diff {100 * (got - expected) / expected:+.3f} %"
    )
    # OVS refreshes Mirror statistics every 5 s; once it has, nothing mirrored was missed.
    coverage = prom.wait_for(
        "mirrorscope_capture_coverage_ratio",
        lambda v: v is not None and abs(v - 1) <= 0.01,
        timeout=30,
    )
    print(f"coverage ratio {coverage}")
