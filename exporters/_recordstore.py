"""The records directory: file names carrying their time range, window selection, quota, retention.

A completed file is named ``<prefix>-<first>-<last>.<ext>``, where ``first`` and ``last`` are the
earliest and latest *end* (``ts + duration``) of its records in UTC, to the second (first rounded
down, last up), e.g. ``flows-node1-w0-20261126T120000Z-20261126T125959Z.parquet``. A report for a
window counts the records that ended in it, so the names alone say which files can hold any: the
others are never opened. Files without a range in the name (the ``.part`` being written, files of
an older version) are always read.

Quota and retention delete completed files only, oldest ``last`` first; the ``.part`` files of the
running writers count towards the quota but are never deleted. A completed file's summary (``<name>
.summary.json``, ``exporters._recordsummaryfile``) goes with it; summaries (~1 MB an hour) do not
count towards the quota.
"""

from __future__ import annotations

import calendar
import logging
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
SUMMARY_SUFFIX = ".summary.json"
RECORD_EXTS = (".jsonl", ".parquet")
_STAMP = "%Y%m%dT%H%M%SZ"
_RANGE = re.compile(r"-(\d{8}T\d{6}Z)-(\d{8}T\d{6}Z)(?:-\d+)?\.(?:jsonl|parquet)$")


def stamp(t: float, *, up: bool = False) -> str:
    """``t`` (epoch seconds) as a UTC name stamp, rounded down (or up) to the second."""
    whole = math.ceil(t) if up else math.floor(t)
    return time.strftime(_STAMP, time.gmtime(whole))


def _parse_stamp(text: str) -> float:
    return float(calendar.timegm(time.strptime(text, _STAMP)))


def range_of(path: Path) -> tuple[float, float] | None:
    """The ``(first, last)`` end times a completed file's name carries, None for other names."""
    m = _RANGE.search(path.name)
    if m is None:
        return None
    return _parse_stamp(m.group(1)), _parse_stamp(m.group(2))


def range_path(directory: Path, prefix: str, first: float, last: float, ext: str) -> Path:
    """A free name for a completed file of records ending in ``[first, last]``."""
    base = f"{prefix}-{stamp(first)}-{stamp(last, up=True)}"
    path = directory / f"{base}{ext}"
    n = 1
    while path.exists():
        path = directory / f"{base}-{n}{ext}"
        n += 1
    return path


def summary_path(records: Path) -> Path:
    """Where the summary of the records file ``records`` is kept."""
    return records.with_name(records.name + SUMMARY_SUFFIX)


def record_files(directory: Path) -> list[Path]:
    """Every records file in ``directory``: completed ones and those being written."""
    if not directory.is_dir():
        return []
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and p.name.removesuffix(PART_SUFFIX).endswith(RECORD_EXTS)
    )


def files_for_window(directory: Path, start: float | None, end: float | None) -> list[Path]:
    """The files that can hold records ending in ``[start, end)`` (None: unbounded)."""
    chosen = []
    for path in record_files(directory):
        span = range_of(path)
        if span is not None:
            first, last = span
            if (end is not None and first >= end) or (start is not None and last < start):
                continue
        chosen.append(path)
    return chosen


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``500M``, ``10G``, ``1.5T`` (powers of 1024) or plain bytes; ``ValueError`` otherwise."""
    m = _SIZE.match(text)
    if m is None:
        raise ValueError(f"{text!r} is not a size like 500M, 10G or 1T")
    power = " KMGT".index(m.group(2).upper() or " ")
    return int(float(m.group(1)) * 1024**power)


@dataclass(frozen=True, slots=True)
class RecordsRetention:
    """How much of the records directory to keep: total bytes and age, None for no bound."""

    quota_bytes: int | None = None
    retention_s: float | None = None

    def __post_init__(self) -> None:
        if self.quota_bytes is not None and self.quota_bytes <= 0:
            raise ValueError(f"records quota must be positive, not {self.quota_bytes}")
        if self.retention_s is not None and self.retention_s <= 0:
            raise ValueError(f"records retention must be positive, not {self.retention_s}")

    @property
    def bounded(self) -> bool:
        return self.quota_bytes is not None or self.retention_s is not None


def prune(directory: Path, policy: RecordsRetention, now: float) -> list[Path]:
    """Delete completed files past the retention age, then the oldest until within the quota."""
    if not policy.bounded:
        return []
    sizes: dict[Path, int] = {}
    for p in record_files(directory):
        try:
            sizes[p] = p.stat().st_size
        except FileNotFoundError:  # another worker pruned or renamed it
            continue
    completed = sorted(
        ((span[1], p) for p in sizes if (span := range_of(p)) is not None),
        key=lambda item: (item[0], item[1].name),
    )
    total = sum(sizes.values())
    deleted: list[Path] = []
    for last, path in completed:
        too_old = policy.retention_s is not None and last < now - policy.retention_s
        over = policy.quota_bytes is not None and total > policy.quota_bytes
        if not (too_old or over):
            continue
        path.unlink(missing_ok=True)  # workers share the directory and may race here
        summary_path(path).unlink(missing_ok=True)
        total -= sizes[path]
        deleted.append(path)
    if deleted:
        log.info("records: deleted %d old file(s) for quota/retention", len(deleted))
    return deleted
