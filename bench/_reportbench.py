"""Report: a day of records at 100 new flows/s (8.6 M) reported in under 10 s.

The records are written once (cached in the bench directory) as the service stores them: hourly
Parquet files named by their time range, each with its summary beside it. The figure is the wall
time of what ``mirrorctl report --records DIR --start … --end …`` does: pick the files, read and
merge their summaries, build the tables, render the table. Beside it, the same report from the
records alone (every column read and aggregated: what a report pays where no summary serves), and
over one hour of the same records stored as JSON lines, scaled to a day: the measurements behind
storing completed files as Parquet with a summary (README, "Record storage": the day from summaries
in 2.8-6.3 s at load ~10, from the records 60-85 s at that load and 20-23 s at load ~3).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd

from bench._report import Figure
from bench._reportgen import DAY, RATE, T0, generate, write_hourly
from exporters import (
    Window,
    build_report,
    load_records,
    records_summary,
    render,
    report_of,
)

SECTION = "report"
_TARGET_S = 10.0


def _report_s(directory: Path, window: Window) -> tuple[float, int]:
    """What ``mirrorctl report --records`` does: stored summaries where files are whole."""
    t0 = time.perf_counter()
    summary, _ = records_summary(directory, window)
    report = report_of(summary, window, str(directory))
    render(report, "table", "pod")
    return time.perf_counter() - t0, report.records


def _raw_report_s(directory: Path, window: Window) -> tuple[float, int]:
    """The same report from every record (what a report costs where no summary serves)."""
    t0 = time.perf_counter()
    df, _ = load_records(directory, window)
    report = build_report(df, window, str(directory))
    render(report, "table", "pod")
    return time.perf_counter() - t0, report.records


def _day(out: Path, n: int) -> Path:
    directory = out / f"report-day-{n}"
    done = directory / ".complete"
    if not done.exists():
        t0 = time.perf_counter()
        write_hourly(generate(n), directory)
        done.touch()
        print(f"bench: {n} records written in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return directory


def _hour_as_jsonl(out: Path, n: int) -> Path:
    directory = out / f"report-hour-jsonl-{n}"
    done = directory / ".complete"
    if not done.exists():
        directory.mkdir(parents=True, exist_ok=True)
        table = generate(n // 24, span=3600.0)
        path = directory / "flows-node-1-w0-20261126T000000Z-20261126T010000Z.jsonl"
        # arrow dtypes: integers with nulls stay integers in the text, as the writer prints them
        frame = table.to_pandas(types_mapper=pd.ArrowDtype)
        frame.to_json(path, orient="records", lines=True)
        done.touch()
    return directory


def measure(out: Path, records: int = DAY * RATE) -> list[Figure]:
    directory = _day(out, records)
    span = DAY * records / (DAY * RATE)
    window = Window(T0, T0 + max(span, 3600.0))
    seconds, counted = _report_s(directory, window)
    figures = [
        Figure.value_of(
            SECTION,
            f"report over a day ({counted:,} records, Parquet)",
            seconds,
            "s",
            target=f"< {_TARGET_S:g} s",
            ok=seconds < _TARGET_S,
        ),
        Figure.value_of(SECTION, "report time / target", seconds / _TARGET_S, "x"),
    ]
    raw_s, _ = _raw_report_s(directory, window)
    figures.append(
        Figure.value_of(
            SECTION,
            "same report from the records, no summaries (Parquet columns)",
            raw_s,
            "s",
        )
    )
    hour = _hour_as_jsonl(out, records)
    json_s, json_n = _raw_report_s(hour, Window(T0, T0 + 3600.0))
    figures.append(
        Figure.value_of(
            SECTION,
            f"same report, JSON lines: one hour ({json_n:,} records) x 24",
            json_s * 24,
            "s",
            note=f"measured {json_s:.2f} s for the hour",
        )
    )
    return figures
