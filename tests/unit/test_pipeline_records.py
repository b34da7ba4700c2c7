"""JSON-lines record writers: one line per record, hourly/size rotation, .part while open."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from exporters import (
    JsonLinesWriter,
    RecordsError,
    RecordsRetention,
    RotatingJsonLinesWriter,
    parse_size,
)

HOUR = 3600.0
T = 1_795_694_400.0  # 2026-11-26T12:00:00Z, the top of an hour


@dataclass(frozen=True)
class Rec:
    n: int
    ts: float = T
    duration: float = 0.5

    def to_json_line(self) -> str:
        return json.dumps({"ts": self.ts, "duration": self.duration, "n": self.n, "pad": "x" * 40})


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


def test_rotates_at_the_top_of_the_hour_and_names_files_by_record_end_range(
    tmp_path: Path,
) -> None:
    """A record after the hour starts a new file; the closed one is named by its records' ends."""
    clock = Clock(T + HOUR - 1)
    w = RotatingJsonLinesWriter(tmp_path, prefix="flows-n1-w0", clock=clock)
    w.on_flows_ended([Rec(1, ts=T + 10, duration=5.0), Rec(3, ts=T + 100, duration=0.2)])
    assert w.current == tmp_path / "flows-n1-w0-20261126T125959Z.jsonl.part"
    clock.t = T + HOUR
    w.on_flows_ended([Rec(2, ts=T + HOUR - 2, duration=1.0)])
    first = tmp_path / "flows-n1-w0-20261126T120015Z-20261126T120141Z.jsonl"
    assert w.files == [first]
    assert lines(first) == [1, 3]
    w.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        first.name,
        "flows-n1-w0-20261126T125959Z-20261126T125959Z.jsonl",
    ]


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


def test_parquet_on_rotation_keeps_every_field(tmp_path: Path) -> None:
    """With parquet=True a closed file is rewritten as Parquet holding the same records, its
    report summary beside it."""
    from exporters._recordparquet import read_parquet  # noqa: PLC0415 - pyarrow only here

    clock = Clock(T)
    w = RotatingJsonLinesWriter(tmp_path, prefix="flows-n1-w0", clock=clock, parquet=True)
    w.on_flows_ended([Rec(1, ts=T + 1), Rec(2, ts=T + 2)])
    w.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "flows-n1-w0-20261126T120001Z-20261126T120003Z.parquet",
        "flows-n1-w0-20261126T120001Z-20261126T120003Z.parquet.summary.json",
    ]
    table = read_parquet(tmp_path / names[0], ("ts", "duration"))
    assert table.column("ts").to_pylist() == [T + 1, T + 2]


def test_rotation_deletes_the_oldest_files_beyond_the_quota(tmp_path: Path) -> None:
    """With a quota, each rotation deletes completed files, oldest end first, until within it."""
    clock = Clock(T)
    size = len(Rec(0).to_json_line()) + 1
    quota = 3 * size + size // 2
    w = RotatingJsonLinesWriter(
        tmp_path, clock=clock, max_bytes=size + 1, retention=RecordsRetention(quota_bytes=quota)
    )
    for i in range(6):
        clock.t = T + i
        w.on_flows_ended([Rec(i, ts=T + 10 * i)])
    w.close()
    kept = sorted(tmp_path.glob("*.jsonl"))
    assert sum(p.stat().st_size for p in kept) <= quota
    assert sorted(n for p in kept for n in lines(p)) == [3, 4, 5]


def test_rotation_deletes_files_older_than_the_retention(tmp_path: Path) -> None:
    """Completed files whose last record ended before now - retention are deleted."""
    clock = Clock(T)
    w = RotatingJsonLinesWriter(
        tmp_path, clock=clock, retention=RecordsRetention(retention_s=2 * HOUR)
    )
    for hour in range(4):
        clock.t = T + hour * HOUR
        w.on_flows_ended([Rec(hour, ts=T + hour * HOUR)])
    clock.t = T + 4 * HOUR
    w.rotate_if_due()
    kept = sorted(tmp_path.glob("*.jsonl"))
    assert sorted(n for p in kept for n in lines(p)) == [2, 3]
    w.close()


def test_capture_run_parses_records_quota_and_retention() -> None:
    """--records-quota takes K/M/G/T sizes, --records-retention durations; bad ones exit 2."""
    from mirrorctl.cli import build_parser  # noqa: PLC0415
    from mirrorctl.ovs import UsageError  # noqa: PLC0415
    from mirrorctl.service._config import records_retention  # noqa: PLC0415

    args = build_parser().parse_args(
        ["capture", "run", "--records-quota", "1.5G", "--records-retention", "7d"]
    )
    assert records_retention(args) == RecordsRetention(int(1.5 * 2**30), 7 * 86400.0)
    assert parse_size("500M") == 500 * 2**20
    assert parse_size("123") == 123
    bad = build_parser().parse_args(["capture", "run", "--records-quota", "lots"])
    with pytest.raises(UsageError, match="--records-quota"):
        records_retention(bad)
