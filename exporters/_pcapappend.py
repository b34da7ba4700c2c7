"""Appending to a store file with ``O_DIRECT``: the records go to the disk, not into the page cache.

A store writes hundreds of MB/s on the capture's own core. Through the page cache, every
``write(2)`` allocates fresh pages, copies into them and leaves them dirty for the writeback
threads (more CPU, on whatever core they run); measured on the bench VM, 1.4-10 ms of CPU per 4 MiB
even with the pages dropped behind the writer (``_pcapcache``). With ``O_DIRECT`` the disk reads
the bytes straight from the writer's buffer: 0.05-0.1 ms of CPU per 2 MiB at 1.8 GB/s there.

``O_DIRECT`` wants the buffer, the length and the file offset aligned (``ALIGN``), and pcap records
are not. So the records are assembled in an aligned staging buffer (``reserve`` hands out the space,
the packer fills it in place, ``commit`` writes it): the whole aligned blocks are written direct,
and the partial block after them is written through a second, ordinary descriptor at once, so the
file always holds every committed byte (downloads read the newest records within a second; a crash
loses nothing committed). The partial block stays staged and is written again, direct and completed,
by the next commit; the kernel writes back and drops its cached copy first, so readers never see
the two disagree.

A filesystem that refuses ``O_DIRECT`` (at open, or on the first write) gets ordinary writes with
the page cache dropped behind the writer (``_pcapcache``); nothing else changes.
"""

from __future__ import annotations

import errno
import logging
import mmap
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from exporters._pcapcache import PageCacheShedder

__all__ = ["ALIGN", "DirectAppender"]

_log = logging.getLogger(__name__)

ALIGN = 4096  # a multiple of any disk's logical block size Linux accepts for O_DIRECT


def _staging(capacity: int) -> npt.NDArray[np.uint8]:
    """A page-aligned buffer (an anonymous mapping) of ``capacity`` bytes."""
    return np.frombuffer(mmap.mmap(-1, capacity), np.uint8)


def _write_at(fd: int, data: npt.NDArray[np.uint8], offset: int) -> None:
    view = data.data
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


class DirectAppender:
    """Appends to a new file at ``path`` (see the module docstring); raises ``OSError`` as
    ``os.open`` and ``os.write`` do (``FileExistsError`` when ``path`` exists)."""

    def __init__(self, path: Path, *, mode: int = 0o640, direct: bool = True) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        self._direct: int | None = None
        if direct:
            try:
                self._direct = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_DIRECT)
            except OSError as e:  # EINVAL: a filesystem without O_DIRECT
                _log.info("%s: no O_DIRECT here (%s), writing through the page cache", path, e)
        self._shedder = PageCacheShedder(self._fd)
        self._buf = _staging(2 * ALIGN)
        self._base = 0  # the file offset of the staging buffer's first byte (aligned)
        self._staged = 0  # bytes at the buffer's start already in the file, to rewrite direct
        self._reserved = 0

    @property
    def direct(self) -> bool:
        """Whether the aligned blocks bypass the page cache."""
        return self._direct is not None

    @property
    def size(self) -> int:
        """Bytes in the file: everything committed."""
        return self._base + self._staged

    def reserve(self, n: int) -> npt.NDArray[np.uint8]:
        """Space for the next ``n`` bytes, to fill before ``commit(n)``."""
        need = self._staged + n
        if need > self._buf.shape[0]:
            grown = _staging(max(1 << (need - 1).bit_length(), 2 * ALIGN))
            grown[: self._staged] = self._buf[: self._staged]
            self._buf = grown
        self._reserved = n
        return self._buf[self._staged : need]

    def commit(self, n: int) -> None:
        """Write the ``n`` bytes filled in since ``reserve``."""
        if n > self._reserved:
            raise ValueError(f"commit of {n} bytes after a reserve of {self._reserved}")
        self._reserved = 0
        end = self._staged + n
        whole = end
        if self._direct is not None:
            whole = end - end % ALIGN
            try:
                if whole:
                    _write_at(self._direct, self._buf[:whole], self._base)
            except OSError as e:
                if e.errno != errno.EINVAL:
                    raise
                _log.info("%s: O_DIRECT refused (%s), writing through the page cache", self.path, e)
                self._close_direct()
        if self._direct is None:  # rewriting what a refused direct write did write is harmless
            _write_at(self._fd, self._buf[:end], self._base)
            self._shedder.written(self._base + end)
            whole = end
        tail = end - whole
        if tail and whole:
            self._buf[:tail] = self._buf[whole:end]
        self._base += whole
        if tail:
            _write_at(self._fd, self._buf[:tail], self._base)
        self._staged = tail

    def append(self, data: bytes | npt.NDArray[np.uint8]) -> None:
        """Write ``data`` after what is in the file."""
        src = np.frombuffer(data, np.uint8) if isinstance(data, bytes) else data
        self.reserve(src.shape[0])[:] = src
        self.commit(src.shape[0])

    def close(self) -> None:
        """Close the file (every committed byte is in it already)."""
        self._close_direct()
        os.close(self._fd)

    def _close_direct(self) -> None:
        fd, self._direct = self._direct, None
        if fd is not None:
            os.close(fd)
