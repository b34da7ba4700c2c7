"""Notice outputs: capture read --notices, the notice log beside the records, /metrics counts."""

from __future__ import annotations

import json
from pathlib import Path

from prometheus_client import CollectorRegistry

from analyzers import Endpoint, EndpointKind, NoticeOptions
from analyzers._notice import Notice
from exporters import NoticeCounts, NoticeMetricsCollector, merge_notice_counts
from mirrorctl.cli import main
from mirrorctl.service._assemble import Outputs, assemble
from tests.unit._noticekit import frames_batch, pods, scan_frames, write_pcap

SCANNER, VICTIM = "10.16.0.10", "10.16.0.11"


def _notice(note: str, ep: Endpoint) -> Notice:
    return Notice(1.0, note, "10.16.0.10", ep, "10.16.0.11", 16, "m")


def test_capture_read_writes_notices_to_the_file_named_by_notices(tmp_path: Path) -> None:
    """`capture read FILE --notices OUT` writes the port scan in the pcap to OUT as JSON lines."""
    pcap, out, ids = tmp_path / "scan.pcap", tmp_path / "notices.jsonl", tmp_path / "ids.json"
    frames = scan_frames(SCANNER, VICTIM, range(1, 41))
    write_pcap(str(pcap), frames, [i * 1e-3 for i in range(len(frames))])
    ids.write_text(json.dumps({SCANNER: "attack/scanner", VICTIM: "prod/db"}))
    rc = main(["capture", "read", "--no-summary", "--identity", str(ids), "--notices", str(out),
               str(pcap)])  # fmt: skip
    assert rc == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(n["note"], n["src_namespace"], n["src_pod"], n["count"]) for n in lines] == [
        ("port_scan", "attack", "scanner", 16)
    ]


def test_capture_read_thresholds_come_from_the_flags(tmp_path: Path) -> None:
    """--notice-port-scan 50 lifts the threshold above the 40 ports scanned: no notice."""
    pcap, out = tmp_path / "scan.pcap", tmp_path / "notices.jsonl"
    frames = scan_frames(SCANNER, VICTIM, range(1, 41))
    write_pcap(str(pcap), frames, [i * 1e-3 for i in range(len(frames))])
    rc = main(["capture", "read", "--no-summary", "--notice-port-scan", "50", "--notices",
               str(out), str(pcap)])  # fmt: skip
    assert rc == 0
    assert out.read_text() == ""


def test_notice_log_goes_beside_the_records_and_counts_to_metrics(tmp_path: Path) -> None:
    """With --records DIR the log is notices-*.jsonl in DIR; counts reach the notice family."""
    ident = pods({SCANNER: "attack/scanner", VICTIM: "prod/db"})
    outputs = Outputs(records_dir=tmp_path, metrics=True, notices=NoticeOptions(),
                      notices_prefix="notices-n1-w0")  # fmt: skip
    assembly = assemble(ident, outputs, node="n1")
    frames = scan_frames(SCANNER, VICTIM, range(1, 41))
    assembly.pipeline.on_batch(frames_batch(frames, [i * 1e-3 for i in range(len(frames))]))
    assembly.close()
    logs = sorted(tmp_path.glob("notices-n1-w0-*.jsonl"))
    assert len(logs) == 1
    assert json.loads(logs[0].read_text())["note"] == "port_scan"
    assert assembly.notice_counts is not None
    registry = CollectorRegistry()
    registry.register(NoticeMetricsCollector("n1", assembly.notice_counts.snapshot))
    labels = {"node": "n1", "note": "port_scan", "namespace": "attack", "pod": "scanner"}
    assert registry.get_sample_value("mirrorscope_notices_total", labels) == 1.0


def test_notice_counts_label_external_sources_and_fold_past_the_bound() -> None:
    """Sources without a pod are 'external'; past max_sources new sources fold into 'other'."""
    counts = NoticeCounts(max_sources=2)
    ext = Endpoint(EndpointKind.EXTERNAL)
    a = Endpoint(EndpointKind.POD, "ns", "a")
    b = Endpoint(EndpointKind.POD, "ns", "b")
    counts.on_notices([_notice("syn_flood", ext), _notice("port_scan", a)])
    counts.on_notices([_notice("port_scan", b), _notice("port_scan", a)])
    assert counts.snapshot() == {
        ("syn_flood", "", "external"): 1,
        ("port_scan", "ns", "a"): 2,
        ("port_scan", "", "other"): 1,
    }
    assert (
        merge_notice_counts([counts.snapshot(), {("syn_flood", "", "external"): 2}])[
            ("syn_flood", "", "external")
        ]
        == 3
    )
