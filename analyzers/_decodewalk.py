"""The walks that decode: a pcap file's records or a ring block's frames, each frame decoded as
the walk reaches it (``_decode``'s kernel with the walk inside), while the walk has it in cache.

Over the bench pcap a walk and then a decode of 64 k frames (49 MB, far beyond the caches) read
every frame from memory twice; live, the ring walk streams a 4 MiB block through the cache and
the decode after it finds the frames evicted again.
"""

from __future__ import annotations

import threading

import numpy as np

from analyzers._deccolumns import SharedZeros, finish, new_columns
from analyzers._decode import decode_rows
from analyzers._decoded import I64, U8, DecodedBatch
from analyzers._decrow import ROW
from capture import LINKTYPE_ETHERNET, FrameBatch, PcapLayout

__all__ = ["DecodingWalker"]

_NO_TAGS = np.zeros(0, np.int64)  # a pcap walk has no VLAN words

_KEEP = 8  # decodes a walker holds for batches not yet taken
_RING_LAYOUT = PcapLayout(0, False, 0, 0, LINKTYPE_ETHERNET)  # a ring block's frames


class DecodingWalker:
    """A pcap file's record walk (``capture.RecordWalker``), and with ``walk_block`` a ring
    block's (``capture.BlockWalker``), that decodes each frame as it is reached, while the walk
    has it in cache; ``take`` gives the pipeline that decode.

    Over the bench pcap a walk and then a decode of 64 k frames (49 MB, far beyond the caches)
    read every frame from memory twice: 110 + 250 ns a frame; in one pass 285 ns, 214 ns with
    the walk streaming the file in (``capture.stream_ahead``).
    """

    def __init__(self) -> None:
        self._scratch = np.zeros(1, ROW)
        self._zeros = SharedZeros()  # the sparse groups' columns where no frame has them
        # the decodes of the last walks not yet taken, by their offsets column (a read-ahead
        # thread walks the next batches while the pipeline takes the current one's)
        self._made: dict[int, tuple[I64, DecodedBatch]] = {}
        self._lock = threading.Lock()

    def __call__(  # noqa: PLR0917 - a capture.RecordWalker
        self, data: U8, pos: int, layout: PcapLayout, offsets: I64, caplens: I64, wirelens: I64,
        ts_ns: I64,
    ) -> tuple[int, int, int]:  # fmt: skip
        decoded, n, pos, status, _ = self._walk(
            data, offsets, caplens, wirelens, ts_ns, pos, layout, ring=False, tags=_NO_TAGS
        )
        self._keep(offsets, decoded)
        return n, pos, status

    def walk_block(  # noqa: PLR0917 - a capture.BlockWalker
        self, data: U8, first: int, offsets: I64, caplens: I64, wirelens: I64, ts_ns: I64,
        tags: I64,
    ) -> tuple[int, int]:  # fmt: skip
        """A live ring block's walk (``capture.BlockWalker``) that decodes each frame as it is
        reached. A block with a frame whose VLAN tag the kernel took out keeps no decode: the
        ring source puts the tags back into a new batch, which the pipeline decodes itself."""
        decoded, n, _, _, tagged = self._walk(
            data, offsets, caplens, wirelens, ts_ns, first, _RING_LAYOUT, ring=True, tags=tags
        )
        if not tagged:
            self._keep(offsets, decoded)
        return n, tagged

    def _walk(  # noqa: PLR0917 - the walk's columns, passed on to the kernel
        self, data: U8, offsets: I64, caplens: I64, wirelens: I64, ts_ns: I64, pos: int,
        layout: PcapLayout, *, ring: bool, tags: I64,
    ) -> tuple[DecodedBatch, int, int, int, int]:  # fmt: skip
        """The kernel's walk from *pos*, of a ring block's frames (*tags* getting their VLAN
        words) or a pcap file's records: (its decode, frames, position after them, the walk's
        status, the frames with a tag taken out)."""
        columns = new_columns(offsets.shape[0], zeroed=False)
        n, pos, status, written, tagged = decode_rows(
            data,
            offsets,
            caplens,
            wirelens,
            ts_ns,
            pos,
            layout,
            ring,
            tags,
            self._scratch,
            True,
            *columns,
        )
        return finish(columns, written, self._zeros, n), n, pos, status, tagged

    def _keep(self, offsets: I64, decoded: DecodedBatch) -> None:
        with self._lock:
            self._made[id(offsets)] = (offsets, decoded)
            while len(self._made) > _KEEP:  # walked for a consumer that never took them
                del self._made[next(iter(self._made))]

    def take(self, batch: FrameBatch) -> DecodedBatch | None:
        """The decode of *batch* if one of this walker's walks made it (once), else None."""
        base = batch.offsets.base
        with self._lock:
            made = self._made.pop(id(base), None)
        if made is None or made[0] is not base or len(batch) != len(made[1]):
            return None
        return made[1]
