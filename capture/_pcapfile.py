"""Reading pcap and pcapng files as a ``FrameSource``.

The file is memory-mapped and every batch's ``data`` is a read-only view of the whole mapping:
frames are never copied, ``offsets`` point straight into the file. The pcap record walk is one
compiled loop (``_recwalk``) writing each batch's offsets, lengths and times as it goes; a consumer
can hand in a ``RecordWalker`` of its own that does its first per-frame work in the same loop,
while the frame is in cache (the analyzers decode there).

Damage (a bad magic, a record running past the end of the file, an absurd length) ends the
stream: every frame before it is yielded first, then ``CorruptCaptureFileError`` names the file
and the byte offset, so a caller can still flush what it decoded.
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from capture import _pcapng
from capture._batch import FrameBatch
from capture._errors import CaptureError
from capture._protocols import SourceStats

I64 = npt.NDArray[np.int64]

__all__ = [
    "CorruptCaptureFileError",
    "PcapFileSource",
    "PcapLayout",
    "RecordWalker",
    "open_capture_file",
]

_log = logging.getLogger(__name__)

PCAP_MAGIC_USEC = 0xA1B2C3D4
PCAP_MAGIC_NSEC = 0xA1B23C4D
#: Alexey Kuznetzov's patched format: 8 extra bytes (ifindex, protocol, pkt_type) per record.
PCAP_MAGIC_KUZNETZOV = 0xA1B2CD34
PCAPNG_SHB = 0x0A0D0D0A

#: libpcap's largest snapshot length for any link type but D-Bus/USB; a record claiming more is
#: damage, not a frame (libpcap refuses it with "invalid packet capture length").
MAX_CAPLEN = 262_144 * 4

#: Frames per batch when reading files. A file never waits for frames, so batches are large: the
#: analysis pays a fixed cost per batch (tens of numpy calls), and 64 k frames took 12-15 % less
#: CPU end to end than 8 k on the bench pcap, for ~6 MB of per-batch temporaries.
DEFAULT_BATCH_SIZE = 65536
#: Linux's MADV_POPULATE_READ (5.14+; Python 3.11's mmap does not name it).
_MADV_POPULATE_READ = 22
_POPULATE_MIN = 16 << 20  # bytes mapped ahead of the walk at least


class CorruptCaptureFileError(CaptureError):
    """The file is truncated or not a valid capture past ``offset`` (frames before it were read)."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(
            f"{path}: damaged capture file at byte offset {offset}: {reason} "
            "(frames before that offset were read; re-capture or cut the file there)",
            source=path,
        )
        self.path = path
        self.offset = offset
        self.reason = reason


def open_capture_file(
    path: str | os.PathLike[str],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    walker: RecordWalker | None = None,
) -> PcapFileSource:
    """Open a pcap or pcapng file (detected by its magic) as a frame source; a pcap file's
    records are walked by *walker* when given (pcapng's blocks by their own walk)."""
    return PcapFileSource(path, batch_size=batch_size, walker=walker)


class PcapFileSource:
    """A pcap or pcapng file as a ``FrameSource``; batches are views of the memory-mapped file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        walker: RecordWalker | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        self.path = os.fspath(path)
        self._batch_size = batch_size
        self._walker = walker if walker is not None else _walk_plain
        self._received = 0
        self._mmap: mmap.mmap | None = None
        self._buf: bytes | mmap.mmap = b""
        try:
            with Path(self.path).open("rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size > 0:
                    try:
                        self._mmap = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                    except (OSError, ValueError):
                        self._mmap = None  # a pipe or special file: fall back to reading it
                if self._mmap is not None:
                    self._buf = self._mmap
                else:
                    self._buf = f.read()
        except OSError as e:
            raise CaptureError(
                f"cannot open capture file {self.path}: {e.strerror or e}",
                source=self.path,
                errno=e.errno,
            ) from e
        self._data: npt.NDArray[np.uint8] = np.frombuffer(self._buf, dtype=np.uint8)
        if len(self._buf) < 4:
            self.close()
            raise CorruptCaptureFileError(
                self.path, 0, f"file is {len(self._data)} bytes, too short for any capture header"
            )
        magic_le = struct.unpack_from("<I", self._buf, 0)[0]
        self.format = "pcapng" if magic_le == PCAPNG_SHB else "pcap"
        if self.format == "pcap":
            try:
                _pcap_header(self.path, self._buf)  # a wrong magic fails at open, not mid-run
            except CaptureError:
                self.close()
                raise

    def __enter__(self) -> PcapFileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def batches(self) -> Iterator[FrameBatch]:
        """Yield batches of up to ``batch_size`` frames, each of one link type."""
        if self.format == "pcapng":
            walker = _pcapng.walk(self._buf, self._data, self._batch_size)
        else:
            walker = _walk_pcap(self.path, self._buf, self._data, self._batch_size, self._walker)
        try:
            for batch in walker:
                self._received += len(batch)
                yield batch
        except _pcapng.BlockDamageError as d:
            raise CorruptCaptureFileError(self.path, d.offset, d.reason) from None

    def stats(self) -> SourceStats:
        """Frames yielded so far; a file drops nothing."""
        return SourceStats(received=self._received, dropped=0)

    def close(self) -> None:
        """Drop the mapping; batches still referenced keep it alive until they go."""
        self._data = np.empty(0, dtype=np.uint8)
        self._buf = b""
        if self._mmap is not None:
            try:
                self._mmap.close()
            except BufferError:
                # A consumer still holds a batch view: the mapping is unmapped when it is freed.
                _log.debug("capture file %s still referenced at close", self.path)
            self._mmap = None


class PcapLayout(NamedTuple):
    """How a pcap file's records are laid out, from its file header (a named tuple: the
    compiled walks take it as it is)."""

    hdrlen: int  # record header bytes (16; 24 in Kuznetzov's patched format)
    big: bool  # big-endian record headers
    ts_mult: int  # nanoseconds per unit of the timestamp's fraction
    max_caplen: int  # a record claiming more captured bytes is damage
    linktype: int


#: Walks a pcap file's records from a position into a batch's columns (offsets, caplens,
#: wirelens, ts_ns) and returns ``(frames, position after them, status)``: capture's own
#: ``_recwalk.walk_records``, or a consumer's (``open_capture_file(walker=...)``) that does its
#: first per-frame work while the walk has the frame in cache. Any walker reads every record
#: through ``_recwalk.read_record``, so that damage is found alike.
RecordWalker = Callable[
    [npt.NDArray[np.uint8], int, PcapLayout, I64, I64, I64, I64], tuple[int, int, int]
]


def _walk_plain(  # noqa: PLR0917 - a RecordWalker
    data: npt.NDArray[np.uint8], pos: int, layout: PcapLayout, offsets: I64, caplens: I64,
    wirelens: I64, ts_ns: I64,
) -> tuple[int, int, int]:  # fmt: skip
    # compiled (``_recwalk``): each record's position depends on the previous one's length,
    # so it cannot be vectorised; numba is imported with the first file read
    from capture._recwalk import walk_records  # noqa: PLC0415

    return walk_records(data, pos, layout, offsets, caplens, wirelens, ts_ns)


def _pcap_header(path: str, buf: bytes | mmap.mmap) -> PcapLayout:
    magic = struct.unpack_from("<I", buf, 0)[0]
    for endian in ("<", ">"):
        magic = struct.unpack_from(endian + "I", buf, 0)[0]
        if magic in (PCAP_MAGIC_USEC, PCAP_MAGIC_NSEC, PCAP_MAGIC_KUZNETZOV):
            break
    else:
        raise CorruptCaptureFileError(path, 0, f"not a pcap or pcapng file (magic 0x{magic:08x})")
    if len(buf) < 24:
        raise CorruptCaptureFileError(path, 0, "truncated pcap file header")
    _, _major, _minor, _zone, _sigfigs, snaplen, network = struct.unpack_from(
        endian + "IHHiIII", buf, 0
    )
    return PcapLayout(
        hdrlen=24 if magic == PCAP_MAGIC_KUZNETZOV else 16,
        big=endian == ">",
        ts_mult=1 if magic == PCAP_MAGIC_NSEC else 1000,
        max_caplen=max(MAX_CAPLEN, snaplen),
        # The upper bits carry FCS length flags (pcap-linktype(7)); the link type is the low 26.
        linktype=network & 0x03FF_FFFF,
    )


def _walk_pcap(
    path: str,
    buf: bytes | mmap.mmap,
    data: npt.NDArray[np.uint8],
    batch_size: int,
    walker: RecordWalker,
) -> Iterator[FrameBatch]:
    from capture._recwalk import OK, TOO_BIG, TRUNCATED_HEADER  # noqa: PLC0415

    layout = _pcap_header(path, buf)
    pos = 24
    ahead = _Populate(buf)
    while True:
        ahead.cover(pos)
        offsets = np.empty(batch_size, np.int64)
        caplens = np.empty(batch_size, np.int64)
        wirelens = np.empty(batch_size, np.int64)
        ts_ns = np.empty(batch_size, np.int64)
        n, pos, status = walker(data, pos, layout, offsets, caplens, wirelens, ts_ns)
        ahead.walked(n, pos)
        if n:
            yield FrameBatch(
                data=data,
                offsets=offsets[:n],
                caplens=caplens[:n],
                wirelens=wirelens[:n],
                ts_ns=ts_ns[:n],
                linktype=layout.linktype,
            )
        if status == TRUNCATED_HEADER:
            raise CorruptCaptureFileError(
                path, pos, f"truncated record header ({len(data) - pos} of {layout.hdrlen} bytes)"
            )
        if status != OK:
            cap = int.from_bytes(buf[pos + 8 : pos + 12], "big" if layout.big else "little")
            if status == TOO_BIG:
                reason = (
                    f"record claims {cap} captured bytes, more than the maximum of "
                    f"{layout.max_caplen}"
                )
            else:
                reason = (
                    f"truncated record: {cap} captured bytes, only "
                    f"{len(data) - pos - layout.hdrlen} left"
                )
            raise CorruptCaptureFileError(path, pos, reason)
        if pos >= len(data):
            return


class _Populate:
    """Maps the file's pages ahead of the record walk, two batches' worth at a time.

    Left to page faults, the walk's first read of each 64 KiB of the file faults (the kernel maps
    16 pages a fault): ~12 k faults for the bench pcap, where the chain spent 136 ms of its CPU in
    the kernel, 71 ms with the windows populated. One MADV_POPULATE_READ per window maps the same
    pages; the window follows the walk, so a file larger than memory is never mapped whole.
    Kernels before 5.14 keep the faults.
    """

    __slots__ = ("_buf", "_mapped", "_span", "_start")

    def __init__(self, buf: bytes | mmap.mmap) -> None:
        self._buf = buf if isinstance(buf, mmap.mmap) else None
        self._mapped = 0  # populated up to here
        self._span = _POPULATE_MIN  # bytes a batch covered, at least
        self._start = 0

    def cover(self, pos: int) -> None:
        """Make sure the next batch's bytes from *pos* are mapped."""
        self._start = pos
        buf = self._buf
        if buf is None or pos + self._span <= self._mapped or self._mapped >= len(buf):
            return
        start = self._mapped & ~(mmap.PAGESIZE - 1)
        length = min(pos + 2 * self._span, len(buf)) - start
        try:
            buf.madvise(_MADV_POPULATE_READ, start, length)
        except OSError:
            self._buf = None  # not supported here: the walk faults the pages in itself
            return
        self._mapped = start + length

    def walked(self, n: int, pos: int) -> None:
        """A batch of *n* records ended at *pos*."""
        if n:
            self._span = max(self._span, pos - self._start)
