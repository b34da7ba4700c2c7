"""The store's O_DIRECT appender: the file holds every committed byte, at once and in order."""

from __future__ import annotations

import ctypes
import mmap
import os
from pathlib import Path

import numpy as np
import pytest

from exporters._pcapappend import ALIGN, DirectAppender


def _chunks(seed: int, count: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 3 * ALIGN, count)
    sizes[::7] = 5 * ALIGN  # some commits of whole blocks and more
    return [rng.integers(0, 256, int(n), dtype=np.uint8).tobytes() for n in sizes]


@pytest.mark.parametrize("direct", [True, False])
def test_file_holds_every_committed_byte_after_each_commit(tmp_path: Path, direct: bool) -> None:
    """After every append the file, read as any reader reads it, equals everything appended so
    far: the partial block is in the file at once, and rewriting it direct changes nothing."""
    path = tmp_path / "f.pcap"
    app = DirectAppender(path, direct=direct)
    expected = b""
    for chunk in _chunks(1, 120):
        app.append(chunk)
        expected += chunk
        assert app.size == len(expected)
        assert path.read_bytes() == expected
    app.close()
    assert path.read_bytes() == expected


def test_a_mapped_reader_keeps_seeing_the_bytes_it_mapped(tmp_path: Path) -> None:
    """A reader that mapped the file while its last block was partial reads the same bytes
    after the writer rewrote that block direct (the kernel drops its cached copy first)."""
    path = tmp_path / "f.pcap"
    app = DirectAppender(path)
    first = b"".join(_chunks(2, 3))
    app.append(first)
    assert len(first) % ALIGN  # the mapping ends in a partial block
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        more = b"".join(_chunks(3, 20))
        app.append(more)
        assert m[: len(first)] == first
    assert path.read_bytes() == first + more
    app.close()


def test_reserve_fills_in_place(tmp_path: Path) -> None:
    """Bytes filled into the reserved space are what commit writes; the space grows past the
    staging buffer's first size; a commit larger than the reserve is refused."""
    path = tmp_path / "f.pcap"
    app = DirectAppender(path)
    app.append(b"hdr")
    out = app.reserve(10 * ALIGN + 5)
    out[:] = np.arange(out.shape[0]) % 251
    app.commit(out.shape[0])
    with pytest.raises(ValueError, match="reserve"):
        app.commit(1)
    app.close()
    data = path.read_bytes()
    assert data[:3] == b"hdr"
    assert np.array_equal(np.frombuffer(data[3:], np.uint8), np.arange(10 * ALIGN + 5) % 251)


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    """The appender only creates: a name taken raises FileExistsError and leaves it alone."""
    path = tmp_path / "f.pcap"
    path.write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        DirectAppender(path)
    assert path.read_bytes() == b"keep"


def test_direct_writes_bypass_the_page_cache(tmp_path: Path) -> None:
    """With O_DIRECT the store does not fill the page cache: after appending 64 MiB, at most the
    partial last block is cached (mincore(2) on a mapping of the file)."""
    path = tmp_path / "f.pcap"
    app = DirectAppender(path)
    if not app.direct:
        pytest.fail(f"{tmp_path} refuses O_DIRECT: this test needs a filesystem that takes it")
    block = np.full(4 << 20, 7, np.uint8)
    for _ in range(16):
        app.append(block)
    app.append(b"tail")
    app.close()
    cached = _cached_pages(path)
    assert cached <= 2, f"{cached} pages of the file are in the page cache"


def _cached_pages(path: Path) -> int:
    """Pages of ``path`` in the page cache, by mincore(2) on a shared mapping of it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    size = path.stat().st_size
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in {None, ctypes.c_void_p(-1).value}:
            raise OSError(ctypes.get_errno(), "mmap")
        try:
            vec = (ctypes.c_ubyte * pages)()
            if libc.mincore(ctypes.c_void_p(addr), ctypes.c_size_t(size), vec) != 0:
                raise OSError(ctypes.get_errno(), "mincore")
            return sum(v & 1 for v in vec)
        finally:
            libc.munmap(ctypes.c_void_p(addr), ctypes.c_size_t(size))
    finally:
        os.close(fd)
