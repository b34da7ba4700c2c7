"""One TPACKET_V3 ring block's frames, compiled: the ``tp_next_offset`` chain walked in one loop.

Each frame's ``tpacket3_hdr`` says where the next one starts, so the walk is a chain, one frame at a
time (it was a Python loop, one interpreter step per frame). The loop reads every header field the
batch needs (where the frame starts, its captured and wire lengths, its time) and, for the rare
frame whose VLAN tag the kernel moved into the header, the tag, so that ``_ringblock`` can put it
back. Every header is checked to lie inside the block before it is read: a chain that leaves the
block (never from a kernel) ends the walk there. Compiled by numba on first use, cached on disk.
"""

from __future__ import annotations

import sys

import numpy as np
import numpy.typing as npt

from capture._bytes import u16, u32
from capture._jit import njit
from capture._prefetch import prefetch
from capture._recwalk import stream_ahead
from capture._ringlayout import TP_STATUS_VLAN_VALID, TPACKET3_HDR

__all__ = ["TAGGED", "ring_ahead", "ring_frame", "walk_block"]

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]

# tpacket3_hdr's field offsets (numba freezes these module globals into the loop)
_AT: dict[str, int] = {n: f[1] for n, f in (TPACKET3_HDR.fields or {}).items()}
_NEXT, _SEC, _NSEC = _AT["next_offset"], _AT["sec"], _AT["nsec"]
_SNAPLEN, _LEN, _STATUS, _MAC = _AT["snaplen"], _AT["len"], _AT["status"], _AT["mac"]
_TCI, _TPID = _AT["vlan_tci"], _AT["vlan_tpid"]
_HDR = TPACKET3_HDR.itemsize
_BIG = sys.byteorder == "big"
#: a frame's ``tags`` word: the tag's TCI (bits 0-15), TPID (16-31), the header's status low
#: byte (32-39), and this bit, so that every tagged frame's word is non-zero
TAGGED = 1 << 40


@njit
def ring_frame(data: U8, pos: int) -> tuple[bool, int, int, int, int, int, int]:
    """The frame whose ``tpacket3_hdr`` is at *pos*: ``(inside, frame offset, captured length,
    wire length, time in ns, VLAN word, next header's position)``. ``inside`` is False (and the
    rest 0) when the header does not lie inside the block: the chain ends there.

    The VLAN word is the frame's VLAN header from the kernel (``TAGGED``'s layout) where the
    kernel says it took a tag out, else 0.
    """
    if pos < 0 or pos + _HDR > data.shape[0]:
        return False, 0, 0, 0, 0, 0, 0
    status = u32(data, pos + _STATUS, _BIG)
    tci = u32(data, pos + _TCI, _BIG)
    tag = 0
    if (status & TP_STATUS_VLAN_VALID) != 0 or tci != 0:
        tag = (
            TAGGED | ((status & 0xFF) << 32) | (u16(data, pos + _TPID, _BIG) << 16) | (tci & 0xFFFF)
        )
    return (
        True,
        pos + u16(data, pos + _MAC, _BIG),
        u32(data, pos + _SNAPLEN, _BIG),
        u32(data, pos + _LEN, _BIG),
        u32(data, pos + _SEC, _BIG) * 1_000_000_000 + u32(data, pos + _NSEC, _BIG),
        tag,
        pos + u32(data, pos + _NEXT, _BIG),
    )


#: A frame slot longer than this is not streamed whole: only its head is fetched ahead.
_STREAM_MAX = 256
_HEAD = 192  # the bytes of a frame slot a walk and a decode read: header, L2-L4, payload start
_FRAMES_AHEAD = 3  # how far ahead, in frames of this one's size, a head is fetched


@njit
def ring_ahead(data: U8, done: int, pos: int, nxt: int) -> int:
    """Prefetch for a walk at the frame at *pos* whose successor is at *nxt*; returns where
    streaming goes on from (start a walk with *done* = its first position).

    Small frames are streamed (``stream_ahead``: every line up to 2 KiB ahead, all of which
    the walk reads). Of a large frame's slot the walk and the decode read only the head (the
    ``tpacket3_hdr``, the headers, the first payload bytes), so only heads are fetched: the
    next frame's, whose place is known, and the one three frames on if they are this one's
    size (a guess: wrong, it only costs a fetch). At 512 B frames, live, walk and decode fell
    from 95-98 to 81-84 ns a frame; with 64 B and 1400 B frames mixed, 122 -> 114-118.
    """
    stride = nxt - pos
    if stride <= _STREAM_MAX:
        return stream_ahead(data, max(done, pos), pos)
    size = data.shape[0]
    for q in (nxt, nxt + _FRAMES_AHEAD * stride):
        if 0 <= q <= size - _HEAD:
            prefetch(data, q)
            prefetch(data, q + 64)
            prefetch(data, q + 128)
    return done


@njit
def walk_block(  # noqa: PLR0917 - a compiled kernel takes its columns positionally
    data: U8,
    first: int,
    offsets: I64,
    caplens: I64,
    wirelens: I64,
    ts_ns: I64,
    tags: I64,
) -> tuple[int, int]:
    """Walk the block's frames from *first* into the columns (as many as they hold).

    ``tags[i]`` is the frame's VLAN word (``ring_frame``). Returns ``(frames walked, frames
    with a tag)``; fewer frames than the columns hold means the chain left the block. A
    ``capture.BlockWalker``: the plain one.
    """
    pos = first
    ahead = pos
    tagged = 0
    for i in range(offsets.shape[0]):
        inside, offsets[i], caplens[i], wirelens[i], ts_ns[i], tags[i], nxt = ring_frame(data, pos)
        if not inside:
            return i, tagged
        ahead = ring_ahead(data, ahead, pos, nxt)
        tagged += tags[i] != 0
        pos = nxt
    return offsets.shape[0], tagged
