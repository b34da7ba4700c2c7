"""Writing frames to a classic pcap file (nanosecond magic), a whole batch per write.

A batch's records are packed by a compiled loop (``_recpack``) into one buffer, so each frame
byte is copied once.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from capture._batch import LINKTYPE_ETHERNET, FrameBatch
from capture._errors import CaptureError

__all__ = ["PcapWriter", "pcap_file_header", "pcap_records", "pcap_records_into"]

_PCAP_MAGIC_NSEC = 0xA1B23C4D
_RECORD_SIZE = 16  # seconds, nanoseconds, caplen, wirelen: four little-endian u32


def pcap_file_header(*, snaplen: int = 262_144, linktype: int = LINKTYPE_ETHERNET) -> bytes:
    """The 24-byte header of a little-endian, nanosecond pcap file."""
    return struct.pack("<IHHiIII", _PCAP_MAGIC_NSEC, 2, 4, 0, 0, snaplen, linktype)


def pcap_records(batch: FrameBatch, snaplen: int) -> npt.NDArray[np.uint8]:
    """Every frame of ``batch`` as nanosecond pcap records, cut to ``snaplen`` (wirelen kept):
    a new buffer, the one copy of the frame bytes (``batch`` may then go back to the ring)."""
    n = len(batch)
    if n == 0:
        return np.empty(0, np.uint8)
    caplens = np.minimum(batch.caplens, snaplen)
    out = np.empty(int(caplens.sum()) + _RECORD_SIZE * n, np.uint8)
    pcap_records_into(batch, slice(0, n), snaplen, out)
    return out


def pcap_records_into(
    batch: FrameBatch, rows: slice, snaplen: int, out: npt.NDArray[np.uint8]
) -> int:
    """The records of ``batch``'s ``rows`` (as ``pcap_records``) written into ``out`` from its
    start, which must hold them; returns their size."""
    from capture._recpack import pack_records  # noqa: PLC0415 - numba loads with the first batch

    return int(
        pack_records(
            batch.data,
            batch.offsets[rows],
            batch.caplens[rows],
            batch.wirelens[rows],
            batch.ts_ns[rows],
            snaplen,
            out,
        )
    )


class PcapWriter:
    """Append frames to a new pcap file: little-endian, nanosecond timestamps, one link type."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        linktype: int = LINKTYPE_ETHERNET,
        snaplen: int = 262_144,
    ) -> None:
        self.path = os.fspath(path)
        self.linktype = linktype
        self.snaplen = snaplen
        self.frames_written = 0
        try:
            self._file: BinaryIO = Path(self.path).open("wb")  # noqa: SIM115 (closed in close())
        except OSError as e:
            raise CaptureError(
                f"cannot create pcap file {self.path}: {e.strerror or e}",
                source=self.path,
                errno=e.errno,
            ) from e
        self._file.write(pcap_file_header(snaplen=snaplen, linktype=linktype))

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def write(self, frame: bytes, ts_ns: int, wirelen: int | None = None) -> None:
        """Append one frame (slow path: tests, single packets)."""
        cap = min(len(frame), self.snaplen)
        sec, nsec = divmod(ts_ns, 1_000_000_000)
        wire = len(frame) if wirelen is None else wirelen
        self._file.write(struct.pack("<IIII", sec, nsec, cap, wire))
        self._file.write(frame[:cap])
        self.frames_written += 1

    def write_batch(self, batch: FrameBatch) -> None:
        """Append every frame of ``batch`` (its link type must be this file's)."""
        n = len(batch)
        if n == 0:
            return
        if batch.linktype != self.linktype:
            raise CaptureError(
                f"{self.path}: batch of link type {batch.linktype} in a file of link type "
                f"{self.linktype} (open one file per link type)",
                source=self.path,
            )
        self._file.write(pcap_records(batch, self.snaplen).data)
        self.frames_written += n

    def close(self) -> None:
        """Flush and close the file."""
        if not self._file.closed:
            self._file.close()
