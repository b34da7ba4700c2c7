"""Making room for a new pcap file: the directory quota and the free-space floor, oldest first.

The quota covers every worker's files and indexes in the directory and holds without per-batch
coordination: a file never grows past ``max_file_bytes``, and a worker opens one only when the
closed files, plus a whole file for every file still being written, plus its new one, fit. To get
there it deletes the oldest closed files of any worker; the same pass keeps ``min_free_bytes``
free on the filesystem. Workers serialise this pass with an ``flock`` on the directory's lock
file (``DirectoryLock``).
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from exporters._pcapfiles import StoredFile, scan

__all__ = ["DirectoryLock", "Room", "free_bytes_of", "make_room"]

_log = logging.getLogger(__name__)

_LOCK_NAME = ".store.lock"


@dataclass(frozen=True, slots=True)
class Room:
    """What a pass found and did: ``problem`` is why no file fits ('' when one does)."""

    problem: str
    evicted: tuple[Path, ...]
    bytes: int  # the store's files and indexes left in the directory
    files: int


def free_bytes_of(directory: Path) -> int:
    """Bytes an unprivileged writer may still use on ``directory``'s filesystem."""
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


def make_room(
    directory: Path,
    *,
    quota_bytes: int,
    max_file_bytes: int,
    min_free_bytes: int,
    free_bytes: Callable[[Path], int],
    also_closed: Collection[Path] = (),
) -> Room:
    """Delete the oldest closed files until one more file of ``max_file_bytes`` fits.

    A file without an index counts as being written, unless it is in ``also_closed`` (the
    caller's own closed files whose index could not be written yet).
    """
    files = scan(directory)
    closed = [f for f in files if f.closed or f.path in also_closed]
    writing = [f for f in files if not (f.closed or f.path in also_closed)]
    used = sum(f.size + f.sidecar_size for f in closed)
    reserved = sum(max(f.size, max_file_bytes) for f in writing)
    need = max_file_bytes
    free = free_bytes(directory)
    evicted = []
    while closed and (used + reserved + need > quota_bytes or free - need < min_free_bytes):
        f = closed.pop(0)
        if _evict(f):
            evicted.append(f.path)
        used -= f.size + f.sidecar_size
        free = free_bytes(directory)
    problem = ""
    if used + reserved + need > quota_bytes:
        problem = f"quota of {quota_bytes} bytes is taken by {len(writing)} files being written"
    elif free - need < min_free_bytes:
        problem = f"free space {free} bytes leaves no room for a file above the floor"
    return Room(
        problem=problem,
        evicted=tuple(evicted),
        bytes=used + sum(f.size for f in writing),
        files=len(closed) + len(writing),
    )


def _evict(f: StoredFile) -> bool:
    try:
        f.path.unlink()
    except FileNotFoundError:
        return False  # another worker evicted it first
    except OSError as e:
        _log.warning("cannot evict %s: %s", f.path, e)
        return False
    f.sidecar.unlink(missing_ok=True)
    return True


class DirectoryLock:
    """An exclusive ``flock`` on the directory's lock file: one worker makes room at a time."""

    def __init__(self, directory: Path) -> None:
        self._path = directory / _LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> None:
        try:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError as e:  # a full disk may refuse even the lock file: go on without it
            _log.debug("no store lock %s: %s", self._path, e)

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None
