"""The pcap store of one capture worker: every frame, in rotating files under a shared quota.

Each worker appends whole batches to its own classic pcap file (nanosecond timestamps, frames cut
to the *stored* snaplen, wire lengths kept) and keeps that file's index in memory; the file is
closed, and its index written beside it, when it reaches ``max_file_bytes`` (the pcap and its
sidecar together) or ``max_file_age_s`` (the clock is a parameter).

The quota covers the whole directory, every worker's files; ``_pcapquota`` makes room for each
new file (oldest first, and a free-space floor), and while a file is written the free space is
checked again every ``retry_s``.

The capture thread never touches the files: ``write`` hands the batch to the store's writer
thread (``_pcapqueue``), which packs its pcap records straight into the file's staging buffer
(``_pcapjob``; the capture thread packs them when the batch's buffer may be reused), writes them
with O_DIRECT (``_pcapappend``) and does everything else in order: rotation, quota, the
free-space floor, the index. The hand-off is bounded by ``queue_bytes``; when the writer falls
behind (the disk is slower than the link) the batch is dropped and counted as not stored ("queue
full"), never waited for. Frames still queued are not yet in the open file, so a query does not
see them yet; ``flush`` waits for them.

Running out of room never raises into the capture path: the store stops storing, counts the
frames it drops, says why in ``counters()``, and tries again every ``retry_s``. A failed write
(ENOSPC, EDQUOT, EIO) closes the file as it is: its index covers the complete records, and
readers stop at the partial one (truncating it instead could crash a reader that maps the file).
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from analyzers import DecodedBatch
from capture import FrameBatch, pcap_file_header
from exporters._errors import PcapStoreError
from exporters._pcapappend import DirectAppender
from exporters._pcapfiles import file_name, sidecar_path
from exporters._pcapindex import FileIndex, IndexBuilder, index_left_open, write_sidecar
from exporters._pcapjob import Job, immutable, pack, records_into
from exporters._pcapqueue import WriterQueue
from exporters._pcapquota import DirectoryLock, free_bytes_of, make_room
from exporters._pcapstoreconfig import (
    FILE_HEADER,
    RECORD_HEADER,
    SIDECAR_BASE,
    SIDECAR_PER_KEY,
    OpenFile,
    StoreConfig,
    StoreCounters,
)

__all__ = ["OpenFile", "PcapStore", "StoreConfig", "StoreCounters"]

_log = logging.getLogger(__name__)

# The writer yields part of the core to the capture thread (``_pcapqueue``): a frame the capture
# thread misses is lost to the analysis too. Nice 4 weighs 0.4 of nice 0; +19 measured better at
# the bench's extreme rates but left the writer seconds behind on a loaded machine, and the
# newest packets must be downloadable within about a second (README: the trade-off).
WRITER_NICE = 4


class PcapStore:
    """Stores every frame a capture worker sees (``write``); see the module docstring."""

    def __init__(
        self,
        config: StoreConfig,
        *,
        clock: Callable[[], float] = time.time,
        free_bytes: Callable[[Path], int] = free_bytes_of,
    ) -> None:
        config.check()
        self.config = config
        self._dir = config.directory
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            free_bytes(self._dir)
        except OSError as e:
            raise PcapStoreError(str(self._dir), e.strerror or str(e)) from e
        self._clock = clock
        self._free = free_bytes
        self._lock = threading.Lock()
        self._file: DirectAppender | None = None
        self._path = Path()
        self._builder = IndexBuilder()
        self._linktype = 0
        self._size = 0
        self._records = 0
        self._opened_at = 0.0
        self._check_at = 0.0
        self._names: dict[int, str] = {}  # address texts for the sidecars (to_json)
        self._pending: dict[Path, FileIndex] = {}  # closed files whose sidecar could not be written
        self._full_reason = ""
        self._retry_at = 0.0
        self._scan_bytes = 0
        self._scan_files = 0
        self._stored = 0
        self._written = 0
        self._evictions = 0
        self._errors = 0
        self._not_stored = 0
        # Counted by the capture thread only (one at a time: the pipeline's lock), read by others.
        self._skipped_full = 0
        self._queue_full = 0
        self._queue: WriterQueue[Job] = WriterQueue(
            f"pcapstore-w{config.worker}", self._handle, config.queue_bytes, nice=WRITER_NICE
        )
        # the files an earlier run of this worker left without an index (a crash)
        self._pending.update(index_left_open(self._dir, config.node, config.worker))

    # --- the capture path ------------------------------------------------------------------------
    def write(self, batch: FrameBatch, decoded: DecodedBatch) -> None:
        """Store every frame of ``batch`` (``decoded`` is its decode, for the index); never
        raises for lack of space: frames that cannot be stored are counted."""
        n = len(batch)
        if n == 0:
            return
        now = self._clock()
        # Read without the lock (the writer thread sets both): a stale value only means one
        # batch prepared in vain, which the writer then counts, or skipped a moment too long.
        if self._full_reason and now < self._retry_at:
            self._skipped_full += n
            return
        if immutable(batch.data):
            # Frames in a buffer nobody changes: the writer thread packs them (the copy runs
            # there, without the GIL), so the capture thread only queues a reference.
            job, size = Job(now, batch, decoded), batch.data.nbytes
        else:  # a buffer its source may reuse: copied out now
            packed = pack(batch, self.config.snaplen)
            job, size = Job(now, packed, decoded, packed=True), packed.data.nbytes
        if not self._queue.offer(job, size):
            self._queue_full += n

    def on_frames(self, batch: FrameBatch, decoded: DecodedBatch) -> None:
        """The store as the pipeline's ``FrameSink``: ``write``."""
        self.write(batch, decoded)

    def tick(self) -> None:
        """Close the file once it is older than ``max_file_age_s`` even if no frame comes
        (in the writer thread, after the batches queued before; this call does not wait)."""
        self._queue.offer(Job(self._clock()), 0)

    def flush(self) -> None:
        """Wait until every batch written so far is in the file (or counted as not stored)."""
        self._queue.flush()

    def catch_up(self, timeout_s: float = 1.0) -> bool:
        """Wait, at most ``timeout_s``, until the batches written before this call are in the
        file (a download's first step: on a loaded host the low-priority writer may be behind)."""
        return self._queue.catch_up(timeout_s)

    def close(self) -> None:
        """Write what is queued, close the file being written (its index is written beside
        it) and end the writer thread; writing again later starts a new file."""
        self._queue.offer(Job(self._clock(), close=True), 0)
        self._queue.stop()

    # --- readers ---------------------------------------------------------------------------------
    def open_file(self) -> OpenFile | None:
        """The file being written, for queries from the same process (None between files)."""
        with self._lock:
            if self._file is None:
                return None
            return OpenFile(self._path, self._builder.snapshot(), self._size)

    def counters(self) -> StoreCounters:
        with self._lock:
            own = self._size if self._file is not None else 0
            queue_full = self._queue_full
            return StoreCounters(
                bytes=self._scan_bytes + own,
                files=self._scan_files + (self._file is not None),
                frames_stored=self._stored,
                bytes_written=self._written,
                evictions=self._evictions,
                write_errors=self._errors,
                frames_not_stored=self._not_stored + self._skipped_full + queue_full,
                frames_queue_full=queue_full,
                queued_bytes=self._queue.queued_bytes,
                full=bool(self._full_reason),
                full_reason=self._full_reason,
            )

    # --- the writer thread -----------------------------------------------------------------------
    def _handle(self, job: Job) -> None:
        """One job, in the writer thread: the only thread that changes the store's state."""
        batch, now = job.batch, job.now
        with self._lock:
            if job.close:
                self._close_file()
            elif batch is None or job.decoded is None:
                if self._file is not None and now - self._opened_at >= self.config.max_file_age_s:
                    self._close_file()
            elif self._full_reason and now < self._retry_at:
                self._not_stored += len(batch)
            else:
                self._write(batch, job.decoded, now, packed=job.packed)

    def _write(self, batch: FrameBatch, dec: DecodedBatch, now: float, *, packed: bool) -> None:
        cfg = self.config
        n = len(batch)
        if self._file is not None and (
            now - self._opened_at >= cfg.max_file_age_s or batch.linktype != self._linktype
        ):
            self._close_file()
        if self._file is not None and now >= self._check_at:
            self._check_at = now + cfg.retry_s
            free = self._free(self._dir)
            if free < cfg.min_free_bytes:
                self._close_file()
                self._set_full(f"free space {free} bytes is below the floor", now)
                self._not_stored += n
                return
        ends = np.cumsum(np.minimum(batch.caplens, cfg.snaplen) + RECORD_HEADER)
        i = 0
        while i < n:
            if self._file is None and not self._open_file(int(batch.ts_ns[i]), batch.linktype, now):
                self._not_stored += n - i
                return
            rows = slice(i, n)
            delta = IndexBuilder()
            delta.add(batch, dec, rows)
            # The records of rows i..j-1 and what their new index keys can add to the sidecar:
            # at most all of the batch's new keys, at most four per frame. Both only grow with j.
            avail = cfg.max_file_bytes - self._size - SIDECAR_BASE
            avail -= SIDECAR_PER_KEY * self._builder.sizes
            base = int(ends[i - 1]) if i else 0
            per_frame = np.minimum(delta.sizes, 4 * np.arange(1, n - i + 1))
            cost = ends[i:] - base + SIDECAR_PER_KEY * per_frame
            j = i + int(np.searchsorted(cost, avail, side="right"))
            if j <= i:
                if self._records:
                    self._close_file()
                    continue
                j = i + 1  # unreachable with checked settings: an empty file holds any frame
            if j < n:
                rows = slice(i, j)
                delta = IndexBuilder()
                delta.add(batch, dec, rows)
            size = int(ends[rows.stop - 1]) - base
            if not self._append(batch, rows, delta, now, size=size, packed=packed):
                self._not_stored += n - i
                return
            i = j
            if i < n:
                self._close_file()

    def _append(
        self,
        batch: FrameBatch,
        rows: slice,
        delta: IndexBuilder,
        now: float,
        *,
        size: int,
        packed: bool,
    ) -> bool:
        """Write the records of ``rows``, ``size`` bytes (``packed``: ``batch.data`` holds them
        already; else they are packed straight into the file's staging buffer)."""
        snaplen = self.config.snaplen

        def put(file: DirectAppender) -> None:
            records_into(batch, rows, snaplen, file.reserve(size), packed=packed)
            file.commit(size)

        if not self._write_all(put, now):
            return False
        self._builder.merge(delta)
        self._size += size
        self._records += rows.stop - rows.start
        self._stored += rows.stop - rows.start
        self._written += size
        return True

    def _write_all(self, put: Callable[[DirectAppender], None], now: float) -> bool:
        file = self._file
        if file is None:
            return False
        try:
            with self._unlocked():
                put(file)
        except OSError as e:
            # What part of the payload did get written stays: cutting the file back could
            # SIGBUS a reader that has it mapped, and every reader stops at a partial record.
            self._errors += 1
            reason = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded"}.get(
                e.errno or 0, f"write error: {e.strerror or e}"
            )
            _log.warning("pcap store stops writing %s: %s", self._path, reason)
            self._close_file()
            self._set_full(reason, now)
            return False
        return True

    def _set_full(self, reason: str, now: float) -> None:
        if not self._full_reason:
            _log.warning("pcap store full: %s (frames are counted, not stored)", reason)
        self._full_reason = reason
        self._retry_at = now + self.config.retry_s

    @contextmanager
    def _unlocked(self) -> Iterator[None]:
        """Let readers in while the writer thread waits for the disk: it alone changes the
        state, and what they see meanwhile is the state before this write (the file's size up
        to its last complete record)."""
        self._lock.release()
        try:
            yield
        finally:
            self._lock.acquire()

    # --- files -----------------------------------------------------------------------------------
    def _open_file(self, first_ns: int, linktype: int, now: float) -> bool:
        cfg = self.config
        problem = self._make_room()
        if problem:
            self._set_full(problem, now)
            return False
        for seq in range(1000):
            path = self._dir / file_name(cfg.node, cfg.worker, first_ns, seq)
            try:
                file = DirectAppender(path)
                break
            except FileExistsError:
                continue
            except OSError as e:
                self._errors += 1
                self._set_full(f"cannot create a file: {e.strerror or e}", now)
                return False
        else:
            self._set_full("no free file name", now)
            return False
        self._file, self._path, self._linktype = file, path, linktype
        self._size = self._records = 0
        self._builder = IndexBuilder()
        self._opened_at = now
        self._check_at = now + cfg.retry_s
        header = pcap_file_header(snaplen=cfg.snaplen, linktype=linktype)
        if not self._write_all(lambda f: f.append(header), now):
            return False
        self._size = FILE_HEADER
        self._written += FILE_HEADER
        if self._full_reason:
            _log.info("pcap store resumes: %s", path.name)
        self._full_reason = ""
        return True

    def _close_file(self) -> None:
        if self._file is None:
            return
        file, self._file = self._file, None
        try:
            file.close()
        except OSError:
            _log.exception("closing %s", self._path)
        if self._records == 0:  # only a header: not worth a file
            self._path.unlink(missing_ok=True)
            return
        index = self._builder.snapshot()
        try:
            write_sidecar(sidecar_path(self._path), index, self._names)
        except OSError as e:
            _log.warning("cannot write the index of %s yet: %s", self._path, e)
            self._pending[self._path] = index

    def _make_room(self) -> str:
        """Evict what must go for a new file, write late indexes; why no file fits, or ''."""
        cfg = self.config
        with self._unlocked(), DirectoryLock(self._dir):
            room = make_room(
                self._dir,
                quota_bytes=cfg.quota_bytes,
                max_file_bytes=cfg.max_file_bytes,
                min_free_bytes=cfg.min_free_bytes,
                free_bytes=self._free,
                also_closed=set(self._pending),
            )
        self._evictions += len(room.evicted)
        for path in room.evicted:
            self._pending.pop(path, None)
        for path, index in list(self._pending.items()):
            try:
                write_sidecar(sidecar_path(path), index)
                del self._pending[path]
            except OSError:
                break
        self._scan_bytes, self._scan_files = room.bytes, room.files
        return room.problem
