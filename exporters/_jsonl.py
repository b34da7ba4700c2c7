"""Flow records as JSON lines: to a stream (``capture read``) or to rotating files (``--records``).

Each record is one line, Zeek conn.log field names first (``FlowRecord.as_conn_log``). A file is
closed and a new one started at the top of every hour (``rotate_s``) or when it would grow past
``max_bytes``, whichever comes first. The file being written is ``<prefix>-<UTC open>.jsonl.part``;
closed, it is named by the time range of its records' ends (``exporters._recordstore``), e.g.
``flows-n1-w0-20261126T130000Z-20261126T135959Z.jsonl``, and with ``parquet`` rewritten as
``….parquet`` in a background thread. A collector that picks up completed files only ever reads
whole ones. Lines are flushed after every delivery: a crash loses at most the flows still in the
table, never half a line that was handed over. With a ``RecordsRetention``, every rotation deletes
the oldest completed files beyond the quota or the age.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Generic, Protocol, TypeVar

from exporters._errors import ExporterError
from exporters._recordstore import PART_SUFFIX, RecordsRetention, prune, range_path

log = logging.getLogger(__name__)

DEFAULT_ROTATE_S = 3600.0
DEFAULT_MAX_BYTES = 256 << 20


class JsonRecord(Protocol):
    """What a writer needs of a flow record (``analyzers.FlowRecord`` is one)."""

    @property
    def ts(self) -> float: ...

    @property
    def duration(self) -> float: ...

    def to_json_line(self) -> str: ...


R = TypeVar("R", bound=JsonRecord)


def each_line(records: Sequence[JsonRecord]) -> str:
    """The JSON lines of *records* one by one (a record type may format a whole list faster)."""
    return "".join(r.to_json_line() + "\n" for r in records)


class RecordsError(ExporterError):
    """The records directory cannot be created or written."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(
            f"cannot write flow records to {path}: {reason} (check --records and free space)"
        )
        self.path = path
        self.reason = reason


class JsonLinesWriter(Generic[R]):
    """A ``FlowSink`` writing one JSON object per line to an open text stream it does not own.

    ``lines`` formats a delivery (``analyzers.json_lines`` for flow records: column-wise).
    """

    def __init__(self, stream: IO[str], lines: Callable[[Sequence[R]], str] = each_line) -> None:
        self._stream = stream
        self._lines = lines
        self._lock = threading.Lock()
        self.written = 0

    def on_flows_ended(self, records: Sequence[R]) -> None:
        if not records:
            return
        text = self._lines(records)
        with self._lock:
            self._stream.write(text)
            self._stream.flush()
            self.written += len(records)

    def close(self) -> None:
        """Flush the stream (it stays open: the caller owns it)."""
        with self._lock:
            self._stream.flush()


class RotatingJsonLinesWriter(Generic[R]):
    """A ``FlowSink`` writing JSON lines into ``directory``, one file per hour or ``max_bytes``.

    ``lines`` formats a delivery, as for ``JsonLinesWriter``.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        prefix: str = "flows",
        rotate_s: float = DEFAULT_ROTATE_S,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.time,
        retention: RecordsRetention | None = None,
        parquet: bool = False,
        lines: Callable[[Sequence[R]], str] = each_line,
    ) -> None:
        if rotate_s <= 0 or max_bytes <= 0:
            raise ValueError("rotate_s and max_bytes must be positive")
        self.directory = Path(directory)
        self.prefix = prefix
        self.rotate_s = rotate_s
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._path: Path | None = None
        self._size = 0
        self._until = 0.0
        self._first = float("inf")  # earliest and latest record end in the open file
        self._last = float("-inf")
        self._retention = retention or RecordsRetention()
        self._parquet = parquet
        self._lines = lines
        self._converting: list[threading.Thread] = []
        self.written = 0
        self.files: list[Path] = []  # completed files, oldest first
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RecordsError(str(self.directory), e.strerror or str(e)) from e
        self._prune()  # a restart after a long stop may find files past their age

    @property
    def current(self) -> Path | None:
        """The file being written (``….jsonl.part``), if any."""
        return self._path

    def on_flows_ended(self, records: Sequence[R]) -> None:
        if not records:
            return
        text = self._lines(records)
        size = len(text.encode())
        ends = [r.ts + r.duration for r in records]
        with self._lock:
            now = self._clock()
            if self._file is not None and (
                now >= self._until or (self._size > 0 and self._size + size > self.max_bytes)
            ):
                self._close_current()
            out = self._file if self._file is not None else self._open(now)
            try:
                out.write(text)
                out.flush()
            except OSError as e:
                # Disk full or gone: keep capturing (metrics still work), say so loudly.
                log.error("dropping %d flow records: %s", len(records), e)
                return
            self._size += size
            self._first = min(self._first, *ends)
            self._last = max(self._last, *ends)
            self.written += len(records)

    def rotate_if_due(self) -> None:
        """Close the current file if its hour is over (call it from the service's tick)."""
        with self._lock:
            if self._file is not None and self._clock() >= self._until:
                self._close_current()

    def close(self) -> None:
        """Close the current file, give it its final name and wait for its Parquet rewrite."""
        with self._lock:
            self._close_current()
            pending, self._converting = self._converting, []
        for thread in pending:
            thread.join()

    def _open(self, now: float) -> IO[str]:
        start = datetime.fromtimestamp(now, UTC)
        stamp = start.strftime("%Y%m%dT%H%M%SZ")
        base = self.directory / f"{self.prefix}-{stamp}.jsonl"
        n = 1
        while base.exists() or base.with_name(base.name + PART_SUFFIX).exists():
            base = self.directory / f"{self.prefix}-{stamp}-{n}.jsonl"
            n += 1
        path = base.with_name(base.name + PART_SUFFIX)
        try:
            out = path.open("w", encoding="utf-8")
        except OSError as e:
            raise RecordsError(str(path), e.strerror or str(e)) from e
        self._file = out
        self._path = path
        self._size = 0
        self._first, self._last = float("inf"), float("-inf")
        # rotate at the next multiple of rotate_s (the top of the hour for the default)
        self._until = (now // self.rotate_s + 1) * self.rotate_s
        return out

    def _close_current(self) -> None:
        if self._file is None or self._path is None:
            return
        self._file.close()
        final = range_path(self.directory, self.prefix, self._first, self._last, ".jsonl")
        self._path.replace(final)
        self._file = None
        self._path = None
        if not self._parquet:
            self.files.append(final)
            self._prune()
            return
        dst = range_path(self.directory, self.prefix, self._first, self._last, ".parquet")
        # The capture thread holds the lock here: a rewrite of an hour of records takes seconds,
        # which the ring cannot wait for.
        thread = threading.Thread(
            target=self._convert, args=(final, dst), name=f"records-parquet-{final.name}"
        )
        self._converting = [t for t in self._converting if t.is_alive()]
        self._converting.append(thread)
        thread.start()

    def _convert(self, src: Path, dst: Path) -> None:
        # Imported here: pyarrow is a large import that only the rotating service needs.
        from exporters._recordparquet import jsonl_to_parquet  # noqa: PLC0415

        try:
            done = jsonl_to_parquet(src, dst)
        except Exception:  # the JSON lines stay: reports read them too
            log.exception("records: could not rewrite %s as Parquet", src)
            done = src
        with self._lock:
            self.files.append(done)
            self._prune()

    def _prune(self) -> None:
        try:
            prune(self.directory, self._retention, self._clock())
        except OSError as e:
            log.error("records: quota/retention pass failed: %s", e)
