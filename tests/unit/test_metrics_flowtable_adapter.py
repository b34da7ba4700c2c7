"""Adapting the flow table's read API (active view, conn.log records) to the exporter's input."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from analyzers import EXTERNAL, IdentityMap
from exporters import FlowMetricsCollector, MetricsConfig
from exporters._ended import EndedFlows, proto_number, stats_from_record
from exporters._tablesource import FlowTableSource
from tests.unit._metrics_doubles import NODE, FakeClock, pod

A = pod("shop", "frontend")
B = pod("shop", "backend")


@dataclass(frozen=True)
class Record:
    """The conn.log-shaped fields the metrics read, as the flow table's FlowRecord names them."""

    proto: str = "tcp"
    ip_version: int = 4
    orig_pkts: int = 0
    resp_pkts: int = 0
    orig_l2_bytes: int = 0
    resp_l2_bytes: int = 0
    orig_kind: str = "pod"
    orig_namespace: str = "shop"
    orig_pod: str = "frontend"
    orig_node: str = NODE
    resp_kind: str = "external"
    resp_namespace: str = ""
    resp_pod: str = ""
    resp_node: str = ""
    tcp_retrans_orig: int = 0
    tcp_retrans_resp: int = 0
    tcp_rst_orig: int = 0
    tcp_rst_resp: int = 0
    tcp_zero_win_orig: int = 0
    tcp_zero_win_resp: int = 0
    tcp_rtt_client: float | None = None
    tcp_rtt_server: float | None = None
    dns_rcode: int | None = None
    dns_latency: float | None = None
    dns_queries: int = 0
    dns_responses: int = 0
    end_reason: str = "end"


@dataclass(frozen=True)
class View:
    proto: np.ndarray
    orig_pkts: np.ndarray
    resp_pkts: np.ndarray
    orig_l2_bytes: np.ndarray
    resp_l2_bytes: np.ndarray
    orig: np.ndarray
    resp: np.ndarray
    retrans_orig: np.ndarray | None = None  # None: zeros (or -1 where -1 means unknown)
    retrans_resp: np.ndarray | None = None
    rst_orig: np.ndarray | None = None
    rst_resp: np.ndarray | None = None
    zero_win_orig: np.ndarray | None = None
    zero_win_resp: np.ndarray | None = None
    handshake_rtt_ns: np.ndarray | None = None
    dns_queries: np.ndarray | None = None
    dns_responses: np.ndarray | None = None
    dns_rcode: np.ndarray | None = None
    dns_latency_ns: np.ndarray | None = None

    def __post_init__(self) -> None:
        unknown = ("handshake_rtt_ns", "dns_rcode", "dns_latency_ns")
        for name in self.__dataclass_fields__:
            if getattr(self, name) is None:
                fill = -1 if name in unknown else 0
                object.__setattr__(self, name, np.full(len(self), fill, dtype=np.int64))

    def __len__(self) -> int:
        return int(self.proto.shape[0])


@dataclass(frozen=True)
class Counters:
    flows_evicted: int


class Table:
    def __init__(self, view: View, evicted: int = 0) -> None:
        self.view, self.evicted = view, evicted

    def active_view(self) -> View:
        return self.view

    def counters(self) -> Counters:
        return Counters(self.evicted)


def objs(*eps: object) -> np.ndarray:
    out = np.empty(len(eps), dtype=object)
    out[:] = eps
    return out


def test_record_maps_l2_bytes_identities_and_full_handshake() -> None:
    """Bytes are L2 (tshark's frame.len), RTT is SYN to final ACK, ICMPv6 keeps its number."""
    s = stats_from_record(
        Record(
            orig_pkts=3,
            orig_l2_bytes=300,
            resp_l2_bytes=120,
            tcp_rtt_client=0.001,
            tcp_rtt_server=0.0005,
            dns_rcode=None,
        )
    )
    assert s.orig == A
    assert s.resp == EXTERNAL
    assert (s.orig_bytes, s.resp_bytes, s.orig_packets) == (300, 120, 3)
    assert s.handshake_rtt_s == pytest.approx(0.0015)
    assert s.dns_rcode == -1
    assert math.isnan(s.dns_latency_s)
    assert proto_number("icmp", 6) == 58
    assert proto_number("icmp", 4) == 1
    assert proto_number("47", 4) == 47


def test_resets_are_charged_to_the_side_that_sent_them() -> None:
    """The record's per-side RST counts become per-side resets, unsplit and unguessed."""
    s = stats_from_record(Record(tcp_rst_orig=2, tcp_rst_resp=3))
    assert (s.orig_resets, s.resp_resets) == (2, 3)


def test_table_source_and_record_sink_feed_the_collector() -> None:
    """View flows plus ended records sum per pod; equal Endpoint instances count as one pod."""
    view = View(
        proto=np.array([6, 17], dtype=np.uint8),
        orig_pkts=np.array([2, 1], dtype=np.int64),
        resp_pkts=np.array([1, 0], dtype=np.int64),
        orig_l2_bytes=np.array([200, 90], dtype=np.int64),
        resp_l2_bytes=np.array([70, 0], dtype=np.int64),
        orig=objs(A, B),
        resp=objs(pod("shop", "backend"), EXTERNAL),  # equal to B, another instance
    )
    ids = IdentityMap()
    ids.replace("t", [("10.0.0.1", A), ("10.0.0.2", B)])
    ended = EndedFlows()
    collector = FlowMetricsCollector(
        FlowTableSource(Table(view, evicted=4)),
        ids,
        MetricsConfig(node=NODE),
        ended=ended,
        clock=FakeClock(),
    )
    registry = CollectorRegistry()
    registry.register(collector)
    ended.on_flows_ended([Record(orig_l2_bytes=1000, orig_pkts=10)])
    labels = {"node": NODE, "namespace": "shop", "pod": "frontend", "direction": "tx"}
    assert registry.get_sample_value("mirrorscope_pod_bytes_total", labels) == 1200
    assert registry.get_sample_value("mirrorscope_pod_packets_total", labels) == 12
    assert (
        registry.get_sample_value("mirrorscope_pod_bytes_total", {**labels, "pod": "backend"})
        == 70 + 90
    )
    assert registry.get_sample_value("mirrorscope_flow_table_evictions_total", {"node": NODE}) == 4
    assert len(ended) == 0


def test_active_timeout_slices_add_totals_but_no_new_flow() -> None:
    """A slice of a long flow (end_reason active) adds its bytes; flows started does not grow."""
    view = View(*(np.zeros(0, dtype=t) for t in (np.uint8, *[np.int64] * 4)), objs(), objs())
    ids = IdentityMap()
    ids.replace("t", [("10.0.0.1", A)])
    ended = EndedFlows()
    collector = FlowMetricsCollector(
        FlowTableSource(Table(view)), ids, MetricsConfig(node=NODE), ended=ended, clock=FakeClock()
    )
    registry = CollectorRegistry()
    registry.register(collector)
    ended.on_flows_ended(
        [Record(orig_l2_bytes=10, end_reason="active"), Record(orig_l2_bytes=5, end_reason="idle")]
    )
    started = {"node": NODE, "protocol": "tcp"}
    assert registry.get_sample_value("mirrorscope_flows_started_total", started) == 1
    labels = {"node": NODE, "namespace": "shop", "pod": "frontend", "direction": "tx"}
    assert registry.get_sample_value("mirrorscope_pod_bytes_total", labels) == 15
