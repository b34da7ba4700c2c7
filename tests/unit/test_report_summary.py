"""Reports from the summaries stored beside record files equal reports from the raw records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench._reportgen import T0, generate, write_hourly
from exporters import (
    POD_COLUMNS,
    LogHistogram,
    RecordsRetention,
    Report,
    Window,
    build_report,
    load_records,
    prune,
    records_summary,
    report_of,
)
from exporters._recordsummaryhist import PRECISION
from mirrorctl.cli import main

HOURS = 4
N = 40_000


@pytest.fixture(scope="module")
def records_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("records")
    write_hourly(generate(N, span=HOURS * 3600.0), directory)
    return directory


def _fresh(records_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "records"
    copy.mkdir()
    for p in records_dir.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    return copy


def _exact(values: pd.Series, q: float) -> float:
    return float(values.dropna().quantile(q))


def _assert_same(from_summaries: Report, raw: Report, df: pd.DataFrame) -> None:
    for name in ("pods", "namespaces", "pairs", "protocols", "ports", "series"):
        pd.testing.assert_frame_equal(getattr(from_summaries, name), getattr(raw, name))
    assert from_summaries.records == raw.records == len(df)
    assert from_summaries.window == raw.window
    assert from_summaries.tcp == raw.tcp
    assert from_summaries.dns == raw.dns
    # the percentiles, against pandas' exact ones: within the histogram's precision, plus the
    # rounding to a microsecond the report applies
    tcp = df[df["proto"] == "tcp"]
    for key, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        rtt = _exact(tcp["tcp_rtt_client"], q) * 1000
        assert abs(raw.tcp[f"rtt_{key}_ms"] - rtt) <= PRECISION * rtt + 0.0005
        dns = _exact(df["dns_latency"], q) * 1000
        assert abs(raw.dns[f"latency_{key}_ms"] - dns) <= PRECISION * dns + 0.0005


@pytest.mark.parametrize(
    "window",
    [
        Window(T0, T0 + HOURS * 3600.0),  # every file whole: summaries only
        Window(T0 + 1800.0, T0 + 3 * 3600.0 + 600.0),  # the edges cut two files: read raw
    ],
    ids=["whole-files", "cut-files"],
)
def test_report_from_summaries_equals_report_from_records(
    records_dir: Path, window: Window
) -> None:
    """Every table, count and series of a report from stored summaries equals the one from the
    raw records; percentiles are within 0.5 % of pandas' exact ones."""
    df, _ = load_records(records_dir, window)
    raw = build_report(df, window, "x")
    summary, files = records_summary(records_dir, window)
    assert files == HOURS
    _assert_same(report_of(summary, window, "x"), raw, df)


def test_whole_files_are_read_from_their_summaries_only(records_dir: Path, tmp_path: Path) -> None:
    """A report over whole files never opens their records: it holds even with them damaged."""
    directory = _fresh(records_dir, tmp_path)
    window = Window(T0, T0 + HOURS * 3600.0)
    df, _ = load_records(directory, window)
    raw = build_report(df, window, "x")
    for p in directory.glob("*.parquet"):
        p.write_bytes(b"not parquet")
    summary, _ = records_summary(directory, window)
    _assert_same(report_of(summary, window, "x"), raw, df)


def test_a_missing_or_damaged_summary_is_rebuilt(records_dir: Path, tmp_path: Path) -> None:
    """Summaries deleted or damaged are rebuilt from the records by the next report, which is
    unchanged."""
    directory = _fresh(records_dir, tmp_path)
    window = Window(T0, T0 + HOURS * 3600.0)
    summaries = sorted(directory.glob("*.summary.json"))
    assert len(summaries) == HOURS
    before = {p.name: p.read_bytes() for p in summaries}
    summaries[0].unlink()
    summaries[1].write_text("{not json")
    df, _ = load_records(directory, window)
    summary, _ = records_summary(directory, window)
    _assert_same(report_of(summary, window, "x"), build_report(df, window, "x"), df)
    assert {p.name: p.read_bytes() for p in directory.glob("*.summary.json")} == before


def test_short_windows_read_records_for_their_ten_second_series(records_dir: Path) -> None:
    """A window of 20 minutes or less has 10 s buckets, finer than the stored minutes: the report
    is made from the records and equals the raw one."""
    window = Window(T0 + 3600.0, T0 + 3600.0 + 900.0)
    df, _ = load_records(records_dir, window)
    raw = build_report(df, window, "x")
    summary, _ = records_summary(records_dir, window)
    assert raw.interval_s == 10.0
    _assert_same(report_of(summary, window, "x"), raw, df)


def test_open_window_is_closed_by_the_records(records_dir: Path) -> None:
    """Without a start or end the report's window runs from the first to the last record end,
    from summaries as from records."""
    window = Window(None, None)
    df, _ = load_records(records_dir, window)
    summary, _ = records_summary(records_dir, window)
    _assert_same(report_of(summary, window, "x"), build_report(df, window, "x"), df)


def test_prune_deletes_a_files_summary_with_it(records_dir: Path, tmp_path: Path) -> None:
    """Retention deletes a completed file's summary together with the file."""
    directory = _fresh(records_dir, tmp_path)
    deleted = prune(directory, RecordsRetention(retention_s=2.5 * 3600), T0 + HOURS * 3600.0)
    assert len(deleted) == 1
    left = sorted(p.name for p in directory.iterdir())
    assert len(left) == 2 * (HOURS - 1)
    assert all(not n.startswith(deleted[0].name) for n in left)


def test_log_histogram_quantiles_and_merge() -> None:
    """Percentiles of a log histogram are within 0.5 % of pandas' (zeros included), and the
    histograms of parts merge into the histogram of the whole."""
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.lognormal(-7.0, 1.5, 100_001), np.zeros(50)])
    whole = LogHistogram.of(values)
    parts = LogHistogram.merge([LogHistogram.of(v) for v in np.array_split(values, 7)])
    np.testing.assert_array_equal(parts.index, whole.index)
    np.testing.assert_array_equal(parts.count, whole.count)
    qs = (0.0001, 0.25, 0.5, 0.95, 0.99, 1.0)
    for q, est in zip(qs, whole.quantiles(qs), strict=True):
        exact = float(pd.Series(values).quantile(q))
        assert est is not None
        assert abs(est - exact) <= PRECISION * exact
    assert LogHistogram.of(np.array([np.nan])).quantiles((0.5,)) == [None]


def test_cli_report_over_whole_files_reads_their_summaries(
    records_dir: Path, tmp_path: Path
) -> None:
    """`mirrorctl report --records` over whole files answers from the summaries: its per-pod CSV
    equals the raw records' table with the records themselves unreadable."""
    directory = _fresh(records_dir, tmp_path)
    window = Window(T0, T0 + HOURS * 3600.0)
    df, _ = load_records(directory, window)
    raw = build_report(df, window, "x")
    for p in directory.glob("*.parquet"):
        p.write_bytes(b"not parquet")
    out = tmp_path / "pods.csv"
    args = ["report", "--records", str(directory), "--start", str(T0)]
    args += ["--end", str(T0 + HOURS * 3600.0), "--format", "csv", "-o", str(out)]
    assert main(args) == 0
    csv = pd.read_csv(out, keep_default_na=False)
    assert tuple(csv.columns[: len(POD_COLUMNS)]) == POD_COLUMNS
    expected = raw.pods.astype({"namespace": object, "pod": object})
    pd.testing.assert_frame_equal(csv.astype(expected.dtypes.to_dict()), expected)
