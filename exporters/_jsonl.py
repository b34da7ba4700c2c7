"""Flow records as JSON lines: to a stream (``capture read``) or to rotating files (``--records``).

Each record is one line, Zeek conn.log field names first (``FlowRecord.as_conn_log``). Files are
named ``<prefix>-<UTC start>.jsonl`` in the records directory, e.g.
``flows-w0-20261126T130000Z.jsonl``; a file is closed and a new one started at the top of every
hour (``rotate_s``) or when it would grow past ``max_bytes``, whichever comes first. The file being
written carries the suffix ``.jsonl.part`` until it is closed, so a collector that picks up
``*.jsonl`` only ever reads complete files. Lines are flushed after every delivery: a crash loses
at most the flows still in the table, never half a line that was handed over.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol

from exporters._errors import ExporterError

log = logging.getLogger(__name__)

DEFAULT_ROTATE_S = 3600.0
DEFAULT_MAX_BYTES = 256 << 20
PART_SUFFIX = ".part"


class JsonRecord(Protocol):
    """What a writer needs of a flow record (``analyzers.FlowRecord`` is one)."""

    def to_json_line(self) -> str: ...


class RecordsError(ExporterError):
    """The records directory cannot be created or written."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(
            f"cannot write flow records to {path}: {reason} (check --records and free space)"
        )
        self.path = path
        self.reason = reason


class JsonLinesWriter:
    """A ``FlowSink`` writing one JSON object per line to an open text stream it does not own."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self.written = 0

    def on_flows_ended(self, records: Sequence[JsonRecord]) -> None:
        if not records:
            return
        text = "".join(r.to_json_line() + "\n" for r in records)
        with self._lock:
            self._stream.write(text)
            self._stream.flush()
            self.written += len(records)

    def close(self) -> None:
        """Flush the stream (it stays open: the caller owns it)."""
        with self._lock:
            self._stream.flush()


class RotatingJsonLinesWriter:
    """A ``FlowSink`` writing JSON lines into ``directory``, one file per hour or ``max_bytes``."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        prefix: str = "flows",
        rotate_s: float = DEFAULT_ROTATE_S,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.time,
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
        self.written = 0
        self.files: list[Path] = []  # completed files, oldest first
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RecordsError(str(self.directory), e.strerror or str(e)) from e

    @property
    def current(self) -> Path | None:
        """The file being written (``….jsonl.part``), if any."""
        return self._path

    def on_flows_ended(self, records: Sequence[JsonRecord]) -> None:
        if not records:
            return
        text = "".join(r.to_json_line() + "\n" for r in records)
        size = len(text.encode())
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
            self.written += len(records)

    def rotate_if_due(self) -> None:
        """Close the current file if its hour is over (call it from the service's tick)."""
        with self._lock:
            if self._file is not None and self._clock() >= self._until:
                self._close_current()

    def close(self) -> None:
        """Close the current file and give it its final ``.jsonl`` name."""
        with self._lock:
            self._close_current()

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
        # rotate at the next multiple of rotate_s (the top of the hour for the default)
        self._until = (now // self.rotate_s + 1) * self.rotate_s
        return out

    def _close_current(self) -> None:
        if self._file is None or self._path is None:
            return
        self._file.close()
        final = self._path.with_name(self._path.name.removesuffix(PART_SUFFIX))
        self._path.replace(final)
        self.files.append(final)
        self._file = None
        self._path = None
