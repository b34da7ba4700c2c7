"""--workers N: the parent's merge of worker reports into one metrics view."""

from __future__ import annotations

import numpy as np

from analyzers import Endpoint, EndpointKind
from exporters import CaptureHealth, EndedFlows, FlowColumns, FlowSnapshot, FlowStats
from mirrorctl.service._worker import WorkerReport as _WorkerReport
from mirrorctl.service._workers import _Merged

A = Endpoint(EndpointKind.POD, "shop", "a", "n1")
B = Endpoint(EndpointKind.POD, "shop", "b", "n1")
C = Endpoint(EndpointKind.POD, "shop", "c", "n1")


def snapshot(rows: list[FlowStats], evictions: int = 0) -> FlowSnapshot:
    return FlowSnapshot(active=FlowColumns.from_rows(rows), evictions=evictions)


def test_active_flows_of_all_workers_are_merged_with_their_own_endpoints() -> None:
    """Worker 1's endpoint indices are offset past worker 0's: every flow keeps its pods."""
    merged = _Merged(2, EndedFlows())
    h0 = CaptureHealth(received=10, malformed={"truncated_l3": 1})
    h1 = CaptureHealth(
        received=7, kernel_dropped=2, duplicates=1, malformed={"truncated_l3": 2, "bad_tunnel": 1}
    )
    merged.take(_WorkerReport(0, snapshot([FlowStats(A, B, 6, orig_packets=3)], 1), [], h0))
    merged.take(_WorkerReport(1, snapshot([FlowStats(C, A, 17, orig_packets=5)], 2), [], h1))
    snap = merged.flow_snapshot()
    cols = snap.active
    pairs = [
        (cols.endpoints[o], cols.endpoints[r]) for o, r in zip(cols.orig, cols.resp, strict=True)
    ]
    assert pairs == [(A, B), (C, A)]
    assert cols.proto.tolist() == [6, 17]
    assert cols.counts[:, 0].tolist() == [3, 5]
    assert snap.evictions == 3
    h = merged.health()
    assert (h.received, h.kernel_dropped, h.duplicates) == (17, 2, 1)
    assert h.malformed == {"truncated_l3": 3, "bad_tunnel": 1}


def test_a_newer_report_replaces_the_workers_active_flows_and_ended_ones_accumulate() -> None:
    """Each report replaces that worker's active snapshot; ended flows go to the exporter once."""
    ended = EndedFlows()
    merged = _Merged(1, ended)
    merged.take(_WorkerReport(0, snapshot([FlowStats(A, B, 6)]), [], CaptureHealth()))
    merged.take(_WorkerReport(0, snapshot([]), [FlowStats(A, B, 6, orig_packets=4)],
                              CaptureHealth(), final=True))  # fmt: skip
    assert len(merged.flow_snapshot().active) == 0
    assert [f.orig_packets for f in ended.drain()] == [4]
    assert merged.finished == {0}


def test_no_reports_yet_is_an_empty_snapshot() -> None:
    """Before the first tick the parent serves no flows rather than failing the scrape."""
    snap = _Merged(3, EndedFlows()).flow_snapshot()
    assert len(snap.active) == 0
    assert np.asarray(snap.active.counts).shape[0] == 0
