"""Keeping the page cache a store file occupies small: written pages are dropped behind a lag.

A store writes hundreds of MB/s for as long as it runs. Left to the kernel, every write lands on
a freshly allocated page-cache page and the written pages pile up as dirty until the writeback
thresholds (gigabytes on a large node), then as clean cache that evicts what the node's other
workloads had cached. Allocating a fresh page is what makes ``write(2)`` expensive: measured on the
bench VM, appending 4 MiB cost 6-10 ms of CPU and 22-30 ms of wall time, against 1.4 ms and 4-5
ms when the file's pages were dropped behind the writer (the freed pages come straight back to
the next write). So behind the last ``keep`` bytes of the file (where the newest packets are read
from by downloads), every ``step`` bytes ``POSIX_FADV_DONTNEED`` starts the writeback of the
range written since the previous call and drops the range before it, which that call started
writing back; pages still under writeback stay cached and are reclaimed like any clean page.
Advice only: a filesystem that ignores it, or refuses it, changes nothing else.
"""

from __future__ import annotations

import logging
import os

__all__ = ["KEEP_BYTES", "STEP_BYTES", "PageCacheShedder"]

_log = logging.getLogger(__name__)

KEEP_BYTES = 32 << 20  # the newest part of the file stays cached, for downloads
STEP_BYTES = 8 << 20


class PageCacheShedder:
    """Drops the page cache of the file ``fd`` behind its writer (see the module docstring)."""

    def __init__(self, fd: int, *, keep: int = KEEP_BYTES, step: int = STEP_BYTES) -> None:
        self._fd = fd
        self._keep = keep
        self._step = step
        self._start = 0  # the range the previous call started writing back: dropped next
        self._end = 0

    def written(self, size: int) -> None:
        """The file has grown to ``size`` bytes; may block while writeback is submitted."""
        end = size - self._keep
        if end - self._end < self._step:
            return
        start, self._start, self._end = self._start, self._end, end
        try:
            os.posix_fadvise(self._fd, start, end - start, os.POSIX_FADV_DONTNEED)
        except OSError as e:
            _log.debug("posix_fadvise on a store file: %s", e)
            self._step = 1 << 62  # refused once, refused always: stop asking
