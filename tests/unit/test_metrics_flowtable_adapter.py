"""The collector reads the flow table's own types: ended ``FlowRecord``s and ``ActiveFlows``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from analyzers import EXTERNAL, IdentityMap, TcpStats
from exporters import EndedFlows, FlowMetricsCollector, FlowSnapshot, MetricsConfig
from exporters._scrapecolumns import COUNT_FIELDS, ScrapeColumns
from tests.unit._metrics_doubles import NODE, FakeClock, active_flows, pod, record

A = pod("shop", "frontend")
B = pod("shop", "backend")


class Snapshot:
    """A source serving one fixed snapshot."""

    def __init__(self, snapshot: FlowSnapshot) -> None:
        self.snapshot = snapshot

    def flow_snapshot(self) -> FlowSnapshot:
        return self.snapshot


def counts(cols: ScrapeColumns, row: int = 0) -> dict[str, int]:
    return dict(zip(COUNT_FIELDS, cols.counts[row].tolist(), strict=True))


def test_record_maps_l2_bytes_identities_and_full_handshake() -> None:
    """Bytes are L2 (tshark's frame.len), RTT is SYN to final ACK, no DNS answer reads -1/NaN."""
    rec = record(
        A,
        EXTERNAL,
        orig_pkts=3,
        orig_bytes=250,
        orig_l2_bytes=300,
        resp_l2_bytes=120,
        tcp=TcpStats(rtt_client=0.001, rtt_server=0.0005),
    )
    cols = ScrapeColumns.of_records([rec])
    assert (cols.endpoints[cols.orig[0]], cols.endpoints[cols.resp[0]]) == (A, EXTERNAL)
    c = counts(cols)
    assert (c["orig_bytes"], c["resp_bytes"], c["orig_packets"]) == (300, 120, 3)
    assert cols.handshake_rtt_s[0] == pytest.approx(0.0015)
    assert cols.dns_rcode[0] == -1
    assert math.isnan(cols.dns_latency_s[0])
    assert cols.proto.tolist() == [6]


def test_half_a_handshake_is_no_rtt_observation() -> None:
    """A SYN-ACK without the originator's ACK gives no handshake RTT (NaN), not half of one."""
    cols = ScrapeColumns.of_records([record(A, B, tcp=TcpStats(rtt_client=0.001))])
    assert math.isnan(cols.handshake_rtt_s[0])


def test_record_protocol_numbers_tell_icmpv6_from_icmp() -> None:
    """conn.log writes ICMPv6 as ``icmp``; the IP version makes it 58, numbers stay numbers."""
    recs = [
        record(A, B, "icmp", ip_version=6),
        record(A, B, "icmp"),
        record(A, B, "47"),
        record(A, B, "udp", ip_version=6),
    ]
    assert [r.ip_proto for r in recs] == [58, 1, 47, 17]
    assert ScrapeColumns.of_records(recs).proto.tolist() == [58, 1, 47, 17]


def test_resets_are_charged_to_the_side_that_sent_them() -> None:
    """The record's per-side RST counts become per-side resets, unsplit and unguessed."""
    c = counts(ScrapeColumns.of_records([record(A, B, tcp=TcpStats(rst_orig=2, rst_resp=3))]))
    assert (c["orig_resets"], c["resp_resets"]) == (2, 3)


def test_active_view_and_ended_records_feed_the_collector() -> None:
    """Active flows plus ended records sum per pod; equal Endpoint instances count as one pod."""
    backend = pod("shop", "backend")  # equal to B, another instance
    view = active_flows(
        [
            record(A, backend, orig_pkts=2, orig_l2_bytes=200, resp_pkts=1, resp_l2_bytes=70),
            record(B, EXTERNAL, "udp", orig_pkts=1, orig_l2_bytes=90),
        ]
    )
    ids = IdentityMap()
    ids.replace("t", [("10.0.0.1", A), ("10.0.0.2", B)])
    ended = EndedFlows()
    collector = FlowMetricsCollector(
        Snapshot(FlowSnapshot(active=view, evictions=4)),
        ids,
        MetricsConfig(node=NODE),
        ended=ended,
        clock=FakeClock(),
    )
    registry = CollectorRegistry()
    registry.register(collector)
    ended.on_flows_ended([record(A, EXTERNAL, orig_l2_bytes=1000, orig_pkts=10)])
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
    ids = IdentityMap()
    ids.replace("t", [("10.0.0.1", A)])
    ended = EndedFlows()
    collector = FlowMetricsCollector(
        Snapshot(FlowSnapshot()), ids, MetricsConfig(node=NODE), ended=ended, clock=FakeClock()
    )
    registry = CollectorRegistry()
    registry.register(collector)
    ended.on_flows_ended(
        [
            record(A, EXTERNAL, orig_l2_bytes=10, end_reason="active"),
            record(A, EXTERNAL, orig_l2_bytes=5, end_reason="idle"),
        ]
    )
    started = {"node": NODE, "protocol": "tcp"}
    assert registry.get_sample_value("mirrorscope_flows_started_total", started) == 1
    labels = {"node": NODE, "namespace": "shop", "pod": "frontend", "direction": "tx"}
    assert registry.get_sample_value("mirrorscope_pod_bytes_total", labels) == 15


def test_no_flows_at_all_is_an_empty_scrape_input() -> None:
    """An empty view and an empty drain give zero-row columns, not an error."""
    for cols in (ScrapeColumns.of_active(FlowSnapshot().active), ScrapeColumns.of_records([])):
        assert len(cols) == 0
        assert np.asarray(cols.counts).shape == (0, len(COUNT_FIELDS))
