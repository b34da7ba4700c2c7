"""JSON lines in, arrow tables out: reading record files, and a completed file rewritten as Parquet.

Why Parquet on rotation: a report over a day of records (8.6 M at 100 flows/s) must return in
seconds, and parsing JSON text is what it cannot afford (README, "Record storage", has the
measurement). The open file stays JSON lines: appendable, flushed per delivery, readable by any
tool; the writer converts it when it closes it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.json as pajson
import pyarrow.parquet as pq

from exporters._recordschema import CATEGORY_COLUMNS, RECORD_FIELDS, record_schema

log = logging.getLogger(__name__)

_BLOCK = 16 << 20  # big blocks: fewer, longer batches for the multithreaded parser


def read_jsonl(path: Path, columns: tuple[str, ...] | None = None) -> pa.Table:
    """A JSON-lines records file as a table of ``columns`` (every record field when None).

    Fields missing from a record are null; unknown fields are dropped when ``columns`` is given.
    A ``.part`` file may end in half a line only if its writer died mid-write: that is an error.
    """
    names = columns if columns is not None else tuple(RECORD_FIELDS)
    parse = pajson.ParseOptions(
        explicit_schema=record_schema(names),
        unexpected_field_behavior="ignore" if columns is not None else "infer",
    )
    table = pajson.read_json(
        path, read_options=pajson.ReadOptions(block_size=_BLOCK), parse_options=parse
    )
    missing = [n for n in names if n not in table.column_names]
    for name in missing:  # a file of records with no such field at all
        table = table.append_column(name, pa.nulls(table.num_rows, RECORD_FIELDS[name]))
    return table.select(list(names))


def read_parquet(path: Path, columns: tuple[str, ...]) -> pa.Table:
    """``columns`` of a Parquet records file; text columns come dictionary-encoded."""
    present = set(pq.read_schema(path).names)
    wanted = [c for c in columns if c in present]
    # one thread per file: callers read several files at once (arrow's per-column threads cost
    # twice the CPU for the same file on a 2-core node, more when the cores are busy)
    table = pq.read_table(
        path,
        columns=wanted,
        read_dictionary=[c for c in CATEGORY_COLUMNS if c in wanted],
        use_threads=False,
    )
    for name in columns:
        if name not in present:
            table = table.append_column(name, pa.nulls(table.num_rows, RECORD_FIELDS[name]))
    return table.select(list(columns))


def jsonl_to_parquet(src: Path, dst: Path) -> Path:
    """Rewrite the JSON-lines file ``src`` as ``dst`` (Parquet, zstd), then delete ``src``, and
    store ``dst``'s summary beside it.

    Written under a temporary name and renamed, so a reader never sees half a Parquet file.
    """
    table = read_jsonl(src)
    tmp = dst.with_name(dst.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd", use_dictionary=True)
    tmp.replace(dst)
    src.unlink()
    # a cycle at import time: the report's loader reads files through this module
    from exporters._reportload import store_summary  # noqa: PLC0415

    store_summary(dst, table)  # a report over whole files reads only their summaries
    return dst
