"""The pcap record walk, compiled: each record's position depends on the previous one's length.

One plain loop per batch reads every record header, checks it against the end of the file and
the largest caplen, and writes the frame's offset, lengths and time straight into the batch's
columns. Every length is bounds-checked before it is used, so damage (a truncated header, a
record running past the end, an absurd caplen) stops the walk at that record with a status and
never reads outside the file. Compiled by numba on first use and cached on disk (``_jit``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from capture._bytes import u32
from capture._jit import njit
from capture._pcapfile import PcapLayout
from capture._prefetch import prefetch

__all__ = [
    "OK",
    "TOO_BIG",
    "TRUNCATED_HEADER",
    "TRUNCATED_RECORD",
    "read_record",
    "stream_ahead",
    "walk_records",
]

#: Why a walk stopped: the batch is full or the file ended cleanly (``OK``, 0), or the record at the
#: returned position is damaged.
OK, TRUNCATED_HEADER, TRUNCATED_RECORD, TOO_BIG = 0, 1, 2, 3
#: Bytes ahead of the record being read up to which every cache line is prefetched. The next
#: header's place is known only from this record's length, so the walk is a chain of dependent
#: loads, each a miss; but the file is read front to back, and streaming every line ahead turns
#: the chain into reads of lines already on their way (a single line a page ahead: 196 -> 160 ms
#: over the bench pcap; every line 2 KiB ahead, with the decode in the loop: 285 -> 214 ms).
AHEAD = 2048


@njit
def stream_ahead(data: npt.NDArray[np.uint8], done: int, pos: int) -> int:
    """Prefetch every cache line from *done* up to ``AHEAD`` bytes past the record at *pos*;
    returns where the next call goes on from (start a walk with *done* = its position)."""
    stop = min(pos + AHEAD, data.shape[0])
    while done < stop:
        prefetch(data, done)
        done += 64
    return done


@njit
def read_record(
    data: npt.NDArray[np.uint8], pos: int, layout: PcapLayout
) -> tuple[int, int, int, int]:
    """The record at *pos*: ``(status, captured length, length on the wire, time in ns)``, the
    lengths and time meaningful where the status is ``OK``.

    Every walk over a pcap file's records reads them through this one function: the plain walk
    below and the analyzers' walk that decodes each frame as it is reached.
    """
    end = data.shape[0]
    if end - pos < layout.hdrlen:
        return TRUNCATED_HEADER, 0, 0, 0
    big = layout.big
    cap = u32(data, pos + 8, big)
    if cap > layout.max_caplen:
        return TOO_BIG, 0, 0, 0
    if cap > end - pos - layout.hdrlen:
        return TRUNCATED_RECORD, 0, 0, 0
    ts = u32(data, pos, big) * 1_000_000_000 + u32(data, pos + 4, big) * layout.ts_mult
    return OK, cap, u32(data, pos + 12, big), ts


@njit
def walk_records(  # noqa: PLR0917 - a compiled kernel takes its columns positionally
    data: npt.NDArray[np.uint8],
    pos: int,
    layout: PcapLayout,
    offsets: npt.NDArray[np.int64],
    caplens: npt.NDArray[np.int64],
    wirelens: npt.NDArray[np.int64],
    ts_ns: npt.NDArray[np.int64],
) -> tuple[int, int, int]:
    """Walk records from *pos* into the columns (as many as they hold): ``RecordWalker``.

    Returns ``(frames, position after them, status)``; a damaged record's status leaves the
    position at its start.
    """
    end = data.shape[0]
    n = 0
    ahead = pos
    while n < offsets.shape[0] and pos < end:
        ahead = stream_ahead(data, ahead, pos)
        status, cap, wire, ts = read_record(data, pos, layout)
        if status != OK:
            return n, pos, status
        offsets[n], caplens[n], wirelens[n], ts_ns[n] = pos + layout.hdrlen, cap, wire, ts
        pos += layout.hdrlen + cap
        n += 1
    return n, pos, OK
