"""Records into a report: the records directory's summaries by window, or a DataFrame of records.

Only the files whose names can hold records ending in the window are opened
(``exporters._recordstore``). A completed file wholly inside the window is represented by its
stored summary (``exporters._recordsummaryfile``, rebuilt when missing); the files the window's
edges cut and the ``.part`` files being written are read: only ``REPORT_COLUMNS``, the window
applied in arrow before pandas sees a row, text columns as categoricals (a day of records names
the same few hundred pods millions of times).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analyzers import FlowRecord
from exporters._recordparquet import read_jsonl, read_parquet
from exporters._recordschema import CATEGORY_COLUMNS, REPORT_COLUMNS, record_schema
from exporters._recordstore import files_for_window, range_of
from exporters._recordsummary import Summary, merge, summarize
from exporters._recordsummaryfile import read_summary, write_summary
from exporters._reportagg import SUMMARY_STEP, closed, report_interval
from exporters._reportwindow import Window

log = logging.getLogger(__name__)

#: Called as ``progress(done, total, file)`` after each file is read.
Progress = Callable[[int, int, Path], None]


def encoded(table: pa.Table) -> pa.Table:
    """Text columns the report groups by as dictionaries, as Parquet files give them."""
    for name in CATEGORY_COLUMNS:
        i = table.schema.get_field_index(name)
        if i < 0:
            continue
        if not pa.types.is_dictionary(table.schema.field(i).type):
            table = table.set_column(i, name, pc.dictionary_encode(table.column(i)))
    return table


def _read(path: Path, columns: tuple[str, ...]) -> pa.Table:
    if path.name.endswith(".parquet"):
        return encoded(read_parquet(path, columns))
    return encoded(read_jsonl(path, columns))


def ended_in(table: pa.Table, window: Window) -> pa.Table:
    if window.start is None and window.end is None:
        return table
    end = pc.add(table.column("ts"), table.column("duration"))
    mask = None
    if window.start is not None:
        mask = pc.greater_equal(end, window.start)
    if window.end is not None:
        before = pc.less(end, window.end)
        mask = before if mask is None else pc.and_(mask, before)
    if pc.all(mask).as_py():  # a file wholly inside the window: no copy
        return table
    return table.filter(mask)


def report_frame(table: pa.Table) -> pd.DataFrame:
    """A table of ``REPORT_COLUMNS`` as the DataFrame ``build_report`` takes.

    Column by column, not ``Table.to_pandas``: the same Series (dictionary columns become
    categoricals) for a third of the CPU on a day of records, and no consolidation copy.
    """
    columns = {name: table.column(name).to_pandas() for name in table.column_names}
    return pd.DataFrame(columns, copy=False)


def load_table(
    directory: Path,
    window: Window,
    columns: tuple[str, ...] = REPORT_COLUMNS,
    progress: Progress | None = None,
) -> tuple[pa.Table, int]:
    """``columns`` of the records in ``directory`` that ended in ``window``, and the files read."""
    files = files_for_window(directory, window.start, window.end)

    def read(path: Path) -> pa.Table | None:
        try:
            return ended_in(_read(path, columns), window)
        except FileNotFoundError:
            return None  # rotated to Parquet or pruned between the listing and the read

    tables = []
    # a file per core at a time: arrow decodes with the GIL released
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for n, (path, table) in enumerate(zip(files, pool.map(read, files), strict=True), 1):
            if table is not None:
                tables.append(table)
            if progress is not None:
                progress(n, len(files), path)
    if not tables:
        tables.append(encoded(record_schema(columns).empty_table()))
    return pa.concat_tables(tables), len(files)


def load_records(
    directory: Path, window: Window, progress: Progress | None = None
) -> tuple[pd.DataFrame, int]:
    """The records in ``directory`` that ended in ``window``, and how many files were read."""
    table, files = load_table(directory, window, REPORT_COLUMNS, progress)
    return report_frame(table), files


def store_summary(records: Path, table: pa.Table | None = None) -> None:
    """Store the summary of the completed records file ``records`` beside it, from ``table`` (its
    records, every column) when the caller has them in memory.

    Never raises: it runs after the records are safely stored, and a summary that is missing is
    rebuilt by the next report over the file.
    """
    try:
        if table is None:
            table = _read(records, REPORT_COLUMNS)
        else:
            table = encoded(table.select(list(REPORT_COLUMNS)))
        write_summary(records, summarize(report_frame(table), SUMMARY_STEP))
    except Exception:
        log.exception("records: could not summarise %s; the next report will", records)


def _inside(summary: Summary, window: Window) -> bool:
    if summary.first_end is None or summary.last_end is None:
        return True  # no records: nothing to cut
    after = window.start is None or summary.first_end >= window.start
    return after and (window.end is None or summary.last_end < window.end)


def _summary_of(path: Path, window: Window, step: float) -> Summary | None:
    """The summary of ``path``'s records that ended in ``window``; None if it went meanwhile."""
    try:
        table = None
        if step == SUMMARY_STEP and range_of(path) is not None:  # completed: it has a summary
            stored = read_summary(path, step)
            if stored is None:
                table = _read(path, REPORT_COLUMNS)
                stored = summarize(report_frame(table), step)
                write_summary(path, stored)
            if _inside(stored, window):
                return stored
        if table is None:
            table = _read(path, REPORT_COLUMNS)
        return summarize(report_frame(ended_in(table, window)), step)
    except FileNotFoundError:
        return None  # rotated to Parquet or pruned between the listing and the read


def load_summary(
    directory: Path, window: Window, step: float, progress: Progress | None = None
) -> tuple[Summary, int]:
    """The summary (series by ``step`` s) of the records in ``directory`` that ended in
    ``window``, and the files it covers. Stored summaries serve when ``step`` is theirs."""
    files = files_for_window(directory, window.start, window.end)
    parts = []
    # a file per core at a time: arrow decodes with the GIL released
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        work = pool.map(lambda p: _summary_of(p, window, step), files)
        for n, (path, part) in enumerate(zip(files, work, strict=True), 1):
            if part is not None:
                parts.append(part)
            if progress is not None:
                progress(n, len(files), path)
    return merge(parts, step), len(files)


def records_summary(
    directory: Path,
    window: Window,
    interval_s: float | None = None,
    progress: Progress | None = None,
) -> tuple[Summary, int]:
    """What ``report_of`` takes for the records of ``directory`` ending in ``window``.

    A report's series interval is a whole number of minutes, so the stored summaries (series by
    the minute) serve, unless the window is 20 minutes or less (10 s buckets) or ``interval_s`` is
    not whole minutes: then every file is read and summarised by that interval.
    """
    step = SUMMARY_STEP
    if interval_s is None and window.start is not None and window.end is not None:
        interval_s = report_interval(window)
    if interval_s is not None and (interval_s / SUMMARY_STEP) % 1:
        step = interval_s
    summary, files = load_summary(directory, window, step, progress)
    needed = interval_s or report_interval(closed(window, summary))
    if (needed / summary.step) % 1:  # an open window whose records span 20 minutes or less
        summary, files = load_summary(directory, window, needed, progress)
    return summary, files


def _flat(r: FlowRecord) -> tuple[object, ...]:
    return (
        r.ts,
        r.duration,
        r.proto,
        r.resp_p,
        r.conn_state,
        r.orig_pkts,
        r.resp_pkts,
        r.orig_l2_bytes,
        r.resp_l2_bytes,
        r.orig_kind,
        r.orig_namespace,
        r.orig_pod,
        r.orig_node,
        r.resp_kind,
        r.resp_namespace,
        r.resp_pod,
        r.resp_node,
        r.tcp_retrans_orig if r.tcp else None,
        r.tcp_retrans_resp if r.tcp else None,
        r.tcp_rst if r.tcp else None,
        r.tcp_rtt_client,
        r.dns_queries if r.dns else None,
        r.dns_rcode,
        r.dns_latency,
    )


def records_frame(records: Iterable[FlowRecord], window: Window | None = None) -> pd.DataFrame:
    """FlowRecords (``analyse_pcap``'s, an embedding's) as a report's DataFrame."""
    rows = [_flat(r) for r in records]
    columns: list[Sequence[object]] = (
        list(zip(*rows, strict=True)) if rows else [[] for _ in REPORT_COLUMNS]
    )
    schema = record_schema(REPORT_COLUMNS)
    table = pa.Table.from_arrays(
        [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)],
        schema=schema,
    )
    return report_frame(encoded(ended_in(table, window or Window())))
