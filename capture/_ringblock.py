"""TPACKET_V3 ring blocks: how big the ring may be set up, and one filled block as a FrameBatch.

``_afpacket`` hands over a block's used bytes (a copy, or a view of the ring itself); here the frame
columns are read from them by one compiled walk of the ``tp_next_offset`` chain (``_ringwalk``),
and the VLAN tag the kernel moved into the frame header is put back into the frame (in a new
buffer: the block's bytes are never written). A consumer can hand in a ``BlockWalker`` of its own
that does its first per-frame work in the same loop, while the walk has the frame in cache.
"""

from __future__ import annotations

import logging
import mmap
import struct
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from capture import _ringlayout as rl
from capture._batch import LINKTYPE_ETHERNET, FrameBatch
from capture._errors import CaptureError

_log = logging.getLogger(__name__)

I64 = npt.NDArray[np.int64]

#: Walks one ring block's ``tp_next_offset`` chain from the first frame's header into a batch's
#: columns (offsets, caplens, wirelens, ts_ns, VLAN words) and returns ``(frames, frames with a
#: tag)``: capture's own ``_ringwalk.walk_block``, or a consumer's (``AfPacketSource(walker=...)``)
#: that does its first per-frame work while the walk has the frame in cache. Any walker reads
#: every header through ``_ringwalk.ring_frame``, so that a chain leaving the block ends alike.
BlockWalker = Callable[[npt.NDArray[np.uint8], int, I64, I64, I64, I64, I64], tuple[int, int]]

__all__ = [
    "DEFAULT_BLOCK_COUNT",
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_BLOCK_TIMEOUT_MS",
    "DEFAULT_FRAME_SIZE",
    "DEFAULT_SNAPLEN",
    "MAX_SNAPLEN",
    "BlockWalker",
    "block_to_batch",
    "check_geometry",
    "filled",
    "give_back",
    "take_block",
]

#: 4 MiB blocks: one block holds ~30 000 minimum-size frames or ~2 700 full-size ones, so the
#: per-batch Python cost is spread over thousands of frames, while copying a block out (where it is
#: copied: ``AfPacketSource``'s ``copy_blocks``) stays a single ~1 ms memcpy.
DEFAULT_BLOCK_SIZE = 4 << 20
#: 64 blocks = 256 MiB of ring: ~2 s of a 1 Gb/s mirror at line rate, ~4 s of 0.5 M minimum-size
#: frames/s, enough to ride out a garbage-collection pause or a burst of flow-table evictions.
#: libpcap's default (2 MiB) covers ~16 ms of 1 Gb/s.
DEFAULT_BLOCK_COUNT = 64
DEFAULT_FRAME_SIZE = 2048
#: A partly filled block is handed over after this long. The kernel retires blocks on this timer
#: even while nobody reads, so while the consumer stalls the ring buffers at most
#: block_count x timeout of traffic: 100 ms x 64 blocks = 6.4 s. (At 20 ms, measured here, a
#: stalled 256 MiB ring filled after 1.3 s, its blocks 15-35 % used.) 100 ms is still far below
#: any metrics or flow-report latency that matters.
DEFAULT_BLOCK_TIMEOUT_MS = 100
DEFAULT_SNAPLEN = 65535
MAX_SNAPLEN = 262_144


def check_geometry(
    block_size: int, block_count: int, frame_size: int, snaplen: int, block_timeout_ms: int
) -> None:
    page = mmap.PAGESIZE
    problems = []
    if block_size <= 0 or block_size % page:
        problems.append(f"block_size {block_size} must be a positive multiple of {page}")
    if frame_size < 64 or frame_size % 16 or (block_size > 0 and block_size % frame_size):
        problems.append(
            f"frame_size {frame_size} must be >= 64, a multiple of 16 and divide block_size"
        )
    if block_count < 1:
        problems.append(f"block_count {block_count} must be >= 1")
    if not 1 <= snaplen <= MAX_SNAPLEN:
        problems.append(f"snaplen {snaplen} must be in 1..{MAX_SNAPLEN}")
    if block_timeout_ms < 1:
        problems.append(f"block_timeout_ms {block_timeout_ms} must be >= 1")
    if problems:
        raise CaptureError("invalid ring settings: " + "; ".join(problems))


_STATUS = struct.Struct("=I")  # a block's status word


def filled(ring: mmap.mmap, base: int) -> bool:
    """Whether the kernel handed the block at ``base`` over to us (TP_STATUS_USER)."""
    return bool(_STATUS.unpack_from(ring, base + rl.BLOCK_STATUS_OFFSET)[0] & rl.TP_STATUS_USER)


def give_back(ring: mmap.mmap, base: int) -> None:
    """Hand the block at ``base`` back to the kernel to fill again."""
    _STATUS.pack_into(ring, base + rl.BLOCK_STATUS_OFFSET, rl.TP_STATUS_KERNEL)


def take_block(
    ring: mmap.mmap, base: int, block_size: int, *, copy: bool, walker: BlockWalker | None = None
) -> FrameBatch | None:
    """The filled block at ``base`` as a batch (None if it holds no frame): over a copy of its
    used bytes, the block given back at once; or, without ``copy``, over the ring itself, the
    block left to the caller to give back when the batch is done with."""
    num_pkts, first, blk_len = rl.BLOCK_COUNTS.unpack_from(ring, base + rl.BLOCK_COUNTS_OFFSET)
    blk_len = min(blk_len, block_size)
    if copy:
        data = np.frombuffer(ring[base : base + blk_len], dtype=np.uint8)
        give_back(ring, base)
    else:
        data = np.frombuffer(ring, dtype=np.uint8, count=blk_len, offset=base)
        data.flags.writeable = False  # a batch's data is read-only, whatever it views
    if num_pkts == 0:
        return None
    return block_to_batch(data, num_pkts, first, walker)


def block_to_batch(
    data: npt.NDArray[np.uint8], num_pkts: int, first: int, walker: BlockWalker | None = None
) -> FrameBatch:
    """The frames of one ring block (its used bytes, ``data``: read-only) as a batch over them,
    walked by *walker* (by default ``_ringwalk.walk_block``).

    The batch's columns are views of the ones the walker filled (``offsets[:n]``): a walker
    that kept its own per-frame results knows its batch by them.
    """
    if walker is None:
        # compiled (``_ringwalk``): numba is imported with the first block, not with ``capture``
        from capture._ringwalk import walk_block  # noqa: PLC0415

        walker = walk_block
    offsets, caplens, wirelens, ts_ns, tags = (np.empty(num_pkts, np.int64) for _ in range(5))
    n, tagged = walker(data, first, offsets, caplens, wirelens, ts_ns, tags)
    if n < num_pkts:  # never from a kernel: keep what the chain reached, say where it broke
        _log.error(
            "ring block: frame %d of %d lies outside the block; dropped the rest", n, num_pkts
        )
    batch = FrameBatch(
        data=data,
        offsets=offsets[:n],
        caplens=caplens[:n],
        wirelens=wirelens[:n],
        ts_ns=ts_ns[:n],
        linktype=LINKTYPE_ETHERNET,
    )
    if tagged:
        return _reinsert_vlan_tags(batch, tags[:n])
    return batch


def _reinsert_vlan_tags(batch: FrameBatch, tags: npt.NDArray[np.int64]) -> FrameBatch:
    """Put back the outer 802.1Q/802.1ad tag the kernel moved into tp_vlan_tci, as libpcap
    does: the decoders and the flow key must see the frame as it was on the wire."""
    offsets, caplens = batch.offsets, batch.caplens
    tagged = (tags != 0) & (caplens >= 12)
    status = tags >> 32 & 0xFF
    tpid = np.where(
        (status & rl.TP_STATUS_VLAN_TPID_VALID) != 0, tags >> 16 & 0xFFFF, rl.ETH_P_8021Q
    )
    tags_out = np.empty((len(offsets), 4), dtype=np.uint8)
    tags_out[:, 0:2] = tpid.astype(">u2").view(np.uint8).reshape(-1, 2)
    tags_out[:, 2:4] = (tags & 0xFFFF).astype(">u2").view(np.uint8).reshape(-1, 2)
    src = batch.data.data.cast("B")
    tag_bytes = tags_out.tobytes()
    parts: list[bytes | memoryview] = []
    new_caplens = caplens + 4 * tagged
    new_offsets = np.zeros(len(offsets), dtype=np.int64)
    if len(offsets) > 1:
        np.cumsum(new_caplens[:-1], out=new_offsets[1:])
    for i, (off, cap, tag) in enumerate(
        zip(offsets.tolist(), caplens.tolist(), tagged.tolist(), strict=True)
    ):
        if tag:
            parts += (src[off : off + 12], tag_bytes[4 * i : 4 * i + 4], src[off + 12 : off + cap])
        else:
            parts.append(src[off : off + cap])
    return FrameBatch(
        data=np.frombuffer(b"".join(parts), dtype=np.uint8),
        offsets=new_offsets,
        caplens=new_caplens,
        wirelens=batch.wirelens + 4 * tagged,
        ts_ns=batch.ts_ns,
        linktype=LINKTYPE_ETHERNET,
    )
