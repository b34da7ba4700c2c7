"""Notices read back from real notice logs (``NoticeLog`` over the rotating records writer):
the window, newest first, counts by note and source, the file still being written, and
``GET /api/v1/notices`` behind the token with the flows API's window parameters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from analyzers import Endpoint, EndpointKind, Notice
from exporters import HttpServer, NoticeLog, RotatingJsonLinesWriter, Window, build_app
from exporters._noticeread import load_notices, notice_counts
from exporters._webnotices import notices_router
from mirrorctl.cli import main
from tests.unit._noticekit import scan_frames, write_pcap
from tests.unit.test_exporter_http_api import TOKEN, get
from tests.unit.test_notice_outputs import SCANNER as SCAN_SRC
from tests.unit.test_notice_outputs import VICTIM

T = 1_800_000_000.0
SCANNER = Endpoint(EndpointKind.POD, "shop", "scanner", "n1")
OUTSIDE = Endpoint(EndpointKind.EXTERNAL, "", "", "")


def _notice(ts: float, note: str, src: str, ep: Endpoint, target: str) -> Notice:
    return Notice(ts, note, src, ep, target, 40, f"{note} of {target}", ("22", "80"), "n1")


NOTICES = [
    _notice(T, "port_scan", "10.16.0.9", SCANNER, "10.16.0.5"),
    _notice(T + 10, "port_scan", "10.16.0.9", SCANNER, "10.16.0.6"),
    _notice(T + 20, "address_scan", "10.16.0.9", SCANNER, "port 22/tcp"),
    _notice(T + 30, "syn_flood", "203.0.113.7", OUTSIDE, "10.16.0.5"),
]


def _log(directory: Path, notices: list[Notice], *, close: bool) -> NoticeLog:
    """Write ``notices`` as the service does (a line flushed per delivery); ``close=False``
    leaves the ``.part`` file open for the read, as a running service does."""
    log = NoticeLog(RotatingJsonLinesWriter(directory, prefix="notices-n1-w0", clock=lambda: T))
    log.on_notices(notices)
    if close:
        log.close()
    return log


def test_window_newest_first_and_counts(tmp_path: Path) -> None:
    """The notices of [start, end) from a closed log and one being written, newest first;
    counted by note and source pod (an external source by its address)."""
    _log(tmp_path, NOTICES[:2], close=True)
    open_log = _log(tmp_path, NOTICES[2:], close=False)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".jsonl", ".part"]
    got = load_notices(tmp_path, Window(T + 5, T + 30))
    assert [(n["note"], n["ts"]) for n in got] == [("address_scan", T + 20), ("port_scan", T + 10)]
    everything = load_notices(tmp_path, Window())
    assert [n["ts"] for n in everything] == [T + 30, T + 20, T + 10, T]
    assert everything[0]["src_pod"] == ""
    assert everything[-1]["src_pod"] == "scanner"
    assert notice_counts(everything) == [
        {"note": "port_scan", "source": "shop/scanner", "notices": 2},
        {"note": "address_scan", "source": "shop/scanner", "notices": 1},
        {"note": "syn_flood", "source": "203.0.113.7", "notices": 1},
    ]
    assert load_notices(tmp_path, Window(), limit=1) == everything[:1]
    open_log.close()


def test_a_half_written_line_is_skipped(tmp_path: Path) -> None:
    """The writer's last line cut mid-way is not a notice and not an error."""
    _log(tmp_path, NOTICES[:1], close=True)
    (log,) = tmp_path.glob("notices-*.jsonl")
    with log.open("a", encoding="utf-8") as f:
        f.write('{"ts": 1800000050.0, "note": "port_')
    assert [n["ts"] for n in load_notices(tmp_path, Window())] == [T]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[HttpServer]:
    _log(tmp_path, NOTICES, close=True)
    app = build_app(
        CollectorRegistry(), token=TOKEN, routers=[notices_router(tmp_path, lambda: T + 60)]
    )
    with HttpServer(app, "127.0.0.1:0") as srv:
        yield srv


def test_notices_endpoint_window_pod_limit_and_token(service: HttpServer) -> None:
    """/api/v1/notices: 401 without the token; since= counts back from now; pod= keeps that
    source's; limit= cuts the list, not the counts; a bad window is a 400 naming it."""
    assert get(service, "/api/v1/notices").code == 401
    doc = get(service, "/api/v1/notices?since=50s", TOKEN).json()
    assert doc["total"] == 3
    assert [n["note"] for n in doc["notices"]] == ["syn_flood", "address_scan", "port_scan"]  # type: ignore[union-attr]
    doc = get(service, "/api/v1/notices?start=0&pod=shop/scanner&limit=1", TOKEN).json()
    assert doc["total"] == 3
    assert len(doc["notices"]) == 1  # type: ignore[arg-type]
    assert doc["counts"][0] == {"note": "port_scan", "source": "shop/scanner", "notices": 2}  # type: ignore[index]
    bad = get(service, "/api/v1/notices?since=soon", TOKEN)
    assert bad.code == 400
    assert b"since" in bad.body


def test_report_from_records_lists_the_windows_notices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mirrorctl report --records DIR`: the notices of the window beside the flows, counted by
    note and source, in the JSON, the table and the HTML."""
    _log(tmp_path, NOTICES, close=True)
    window = ["--start", str(T + 5), "--end", str(T + 100)]
    assert main(["report", "--records", str(tmp_path), *window, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [n["note"] for n in doc["notices"]] == ["syn_flood", "address_scan", "port_scan"]
    assert doc["notices"][0]["source"] == "203.0.113.7"
    assert {"note": "port_scan", "source": "shop/scanner", "notices": 1} in doc["notice_counts"]
    assert main(["report", "--records", str(tmp_path), *window]) == 0
    assert "notices by note and source:" in capsys.readouterr().out
    assert main(["report", "--records", str(tmp_path), *window, "--format", "html"]) == 0
    assert "<h2>Notices (newest first)</h2>" in capsys.readouterr().out


def test_report_from_a_pcap_runs_the_detectors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mirrorctl report --pcap FILE`: the port scan in the capture is a notice of the report,
    named by the scanning pod."""
    pcap, ids = tmp_path / "scan.pcap", tmp_path / "ids.json"
    frames = scan_frames(SCAN_SRC, VICTIM, range(1, 41))
    write_pcap(str(pcap), frames, [i * 1e-3 for i in range(len(frames))])
    ids.write_text(json.dumps({SCAN_SRC: "attack/scanner", VICTIM: "prod/db"}))
    argv = ["report", "--pcap", str(pcap), "--identity", str(ids), "--format", "json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["notice_counts"] == [{"note": "port_scan", "source": "attack/scanner", "notices": 1}]
