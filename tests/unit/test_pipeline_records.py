"""JSON-lines record writers: one line per record, hourly/size rotation, .part while open."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from exporters import JsonLinesWriter, RecordsError, RotatingJsonLinesWriter

HOUR = 3600.0
T = 1_795_694_400.0  # 2026-11-26T12:00:00Z, the top of an hour


@dataclass(frozen=True)
class Rec:
    n: int

    def to_json_line(self) -> str:
        return json.dumps({"n": self.n, "pad": "x" * 50})


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def lines(path: Path) -> list[int]:
    return [json.loads(line)["n"] for line in path.read_text().splitlines()]


def test_stream_writer_writes_one_json_object_per_line() -> None:
    """Each record is one complete line; the count is kept."""
    out = io.StringIO()
    w = JsonLinesWriter(out)
    w.on_flows_ended([Rec(1), Rec(2)])
    w.on_flows_ended([])
    w.on_flows_ended([Rec(3)])
    assert [json.loads(x)["n"] for x in out.getvalue().splitlines()] == [1, 2, 3]
    assert w.written == 3


def test_rotates_at_the_top_of_the_hour_and_names_files_by_utc_start(tmp_path: Path) -> None:
    """A record after the hour boundary starts a new file; the closed one loses .part."""
    clock = Clock(T + HOUR - 1)
    w = RotatingJsonLinesWriter(tmp_path, prefix="flows-n1-w0", clock=clock)
    w.on_flows_ended([Rec(1)])
    assert w.current == tmp_path / "flows-n1-w0-20261126T125959Z.jsonl.part"
    clock.t = T + HOUR
    w.on_flows_ended([Rec(2)])
    assert w.files == [tmp_path / "flows-n1-w0-20261126T125959Z.jsonl"]
    assert lines(w.files[0]) == [1]
    w.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "flows-n1-w0-20261126T125959Z.jsonl",
        "flows-n1-w0-20261126T130000Z.jsonl",
    ]
    assert lines(tmp_path / "flows-n1-w0-20261126T130000Z.jsonl") == [2]


def test_rotate_if_due_closes_an_idle_file_after_its_hour(tmp_path: Path) -> None:
    """With no new records, the tick's rotate_if_due still completes the hour's file."""
    clock = Clock(T)
    w = RotatingJsonLinesWriter(tmp_path, clock=clock)
    w.on_flows_ended([Rec(1)])
    w.rotate_if_due()
    assert w.files == []
    clock.t = T + HOUR
    w.rotate_if_due()
    assert [p.suffix for p in w.files] == [".jsonl"]
    assert w.current is None


def test_rotates_by_size_without_splitting_a_delivery(tmp_path: Path) -> None:
    """Past max_bytes a new file starts; every line stays whole and nothing is lost."""
    w = RotatingJsonLinesWriter(tmp_path, max_bytes=200, clock=Clock(T))
    for i in range(10):
        w.on_flows_ended([Rec(i)])
    w.close()
    files = sorted(tmp_path.glob("*.jsonl"))
    assert len(files) >= 4
    assert sorted(n for f in files for n in lines(f)) == list(range(10))


def test_unwritable_directory_is_a_records_error(tmp_path: Path) -> None:
    """A --records path below a regular file fails with RecordsError naming it."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(RecordsError, match="cannot write flow records"):
        RotatingJsonLinesWriter(blocker / "records")
