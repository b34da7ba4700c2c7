"""--workers N: the worker's report and the parent's merge of them into one metrics view."""

from __future__ import annotations

import pickle

import numpy as np

from analyzers import Endpoint, EndpointKind, IdentityMap
from exporters import CaptureHealth, EndedFlows
from mirrorctl.service._worker import WorkerReport
from mirrorctl.service._workers import _Merged
from tests.unit import flowkit
from tests.unit._metrics_doubles import active_flows, record

A = Endpoint(EndpointKind.POD, "shop", "a", "n1")
B = Endpoint(EndpointKind.POD, "shop", "b", "n1")
C = Endpoint(EndpointKind.POD, "shop", "c", "n1")


def test_active_flows_of_all_workers_are_merged_with_their_own_endpoints() -> None:
    """The parent's snapshot is every worker's flows, each with its pods; evictions add up."""
    merged = _Merged(2, EndedFlows())
    h0 = CaptureHealth(received=10, malformed={"truncated_l3": 1})
    h1 = CaptureHealth(
        received=7, kernel_dropped=2, duplicates=1, malformed={"truncated_l3": 2, "bad_tunnel": 1}
    )
    w0 = active_flows([record(A, B, orig_pkts=3)])
    w1 = active_flows([record(C, A, "udp", orig_pkts=5)])
    merged.take(WorkerReport(0, w0, [], h0, evictions=1))
    merged.take(WorkerReport(1, w1, [], h1, evictions=2))
    snap = merged.flow_snapshot()
    active = snap.active
    assert list(zip(active.orig, active.resp, strict=True)) == [(A, B), (C, A)]
    assert active.proto.tolist() == [6, 17]
    assert active.orig_pkts.tolist() == [3, 5]
    assert snap.evictions == 3
    h = merged.health()
    assert (h.received, h.kernel_dropped, h.duplicates) == (17, 2, 1)
    assert h.malformed == {"truncated_l3": 3, "bad_tunnel": 1}


def test_a_newer_report_replaces_the_workers_active_flows_and_ended_ones_accumulate() -> None:
    """Each report replaces that worker's active snapshot; ended flows go to the exporter once."""
    ended = EndedFlows()
    merged = _Merged(1, ended)
    merged.take(WorkerReport(0, active_flows([record(A, B)]), [], CaptureHealth()))
    merged.take(WorkerReport(0, active_flows([]), [record(A, B, orig_pkts=4)], CaptureHealth(),
                             final=True))  # fmt: skip
    assert len(merged.flow_snapshot().active) == 0
    assert [f.orig_pkts for f in ended.drain()] == [4]
    assert merged.finished == {0}


def test_no_reports_yet_is_an_empty_snapshot() -> None:
    """Before the first tick the parent serves no flows rather than failing the scrape."""
    snap = _Merged(3, EndedFlows()).flow_snapshot()
    assert len(snap.active) == 0
    assert snap.active.orig.shape == (0,)
    assert snap.evictions == 0


def test_a_report_crosses_the_pipe_with_the_tables_own_types() -> None:
    """A report of a real flow table (active view and records) pickles and unpickles intact."""
    ids = IdentityMap()
    ids.replace("t", [("10.0.0.1", A), ("10.0.0.2", B)])
    table, sink = flowkit.table(identity=ids)
    table.process(*flowkit.batch(flowkit.handshake()))
    table.process(*flowkit.batch(flowkit.handshake(cp=40001, t=1.0)))
    table.flush()
    table.process(*flowkit.batch(flowkit.handshake(cp=40002, t=2.0)))
    report = WorkerReport(0, table.active_view(), sink.records, CaptureHealth(received=30))
    back = pickle.loads(pickle.dumps(report, pickle.HIGHEST_PROTOCOL))  # noqa: S301 - our bytes
    assert back.ended == report.ended
    assert len(back.active) == 1
    for name in report.active.__dataclass_fields__:
        assert np.array_equal(getattr(back.active, name), getattr(report.active, name)), name
    assert (back.active.orig[0], back.active.resp[0]) == (A, B)
