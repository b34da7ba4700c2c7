"""A vectorized open-addressing hash map from 63-bit flow hashes to slot numbers.

A Python dict costs ~120 bytes and a bytecode round trip per flow; this costs 12 bytes per
bucket (at most half full) and a handful of numpy passes per batch, whatever the number of flows.
Linear probing; deleted buckets become tombstones, and the table is rebuilt when they pile up.
Keys must be distinct from ``EMPTY`` and ``TOMB``: callers pass hashes below 2**63 (``| 1`` keeps
them non-zero).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

EMPTY = np.uint64(0)
TOMB = np.uint64(0xFFFF_FFFF_FFFF_FFFF)


class SlotMap:
    """``key -> slot``; the bucket array doubles whenever it would pass half full.

    Starting small keeps the buckets of a modest table in cache, and the memory proportional to
    the live keys rather than to the largest table ever allowed.
    """

    def __init__(self, initial: int = 1 << 16) -> None:
        size = 1 << max(4, (initial - 1).bit_length())
        self._mask = np.uint64(size - 1)
        self._keys = np.zeros(size, np.uint64)
        self._vals = np.zeros(size, np.int32)
        self._live = 0
        self._tombs = 0

    def __len__(self) -> int:
        return self._live

    def _probe(self, keys: U64) -> tuple[I64, npt.NDArray[np.bool_]]:
        """Bucket of each key, and whether it was found (else the first empty bucket)."""
        pos = (keys & self._mask).astype(np.int64)
        found = np.zeros(keys.shape[0], np.bool_)
        todo = np.arange(keys.shape[0])
        mask = int(self._mask)
        while todo.size:
            p = pos[todo]
            k = self._keys[p]
            hit = k == keys[todo]
            found[todo[hit]] = True
            go_on = ~hit & (k != EMPTY)
            todo = todo[go_on]
            pos[todo] = (p[go_on] + 1) & mask
        return pos, found

    def get(self, keys: U64) -> I64:
        """Slot of each key, -1 where absent."""
        pos, found = self._probe(keys)
        return np.where(found, self._vals[pos], -1).astype(np.int64)

    def insert(self, keys: U64, slots: I64) -> None:
        """Add keys known to be absent and distinct."""
        if self._live + self._tombs + keys.shape[0] > self._keys.shape[0] // 2:
            self._rebuild(extra=keys.shape[0])
        pos = (keys & self._mask).astype(np.int64)
        todo = np.arange(keys.shape[0])
        mask = int(self._mask)
        while todo.size:
            p = pos[todo]
            k = self._keys[p]
            free = (k == EMPTY) | (k == TOMB)
            cand = todo[free]
            # two new keys may want the same free bucket: the first one takes it
            _, first = np.unique(pos[cand], return_index=True)
            win = cand[first]
            self._tombs -= int(np.count_nonzero(self._keys[pos[win]] == TOMB))
            self._keys[pos[win]] = keys[win]
            self._vals[pos[win]] = slots[win]
            placed = np.zeros(keys.shape[0], np.bool_)
            placed[win] = True
            todo = todo[~placed[todo]]
            # losers retry the same bucket (now taken) next round and move on from there
            busy = self._keys[pos[todo]] != EMPTY
            busy &= self._keys[pos[todo]] != TOMB
            pos[todo[busy]] = (pos[todo[busy]] + 1) & mask
        self._live += keys.shape[0]

    def delete(self, keys: U64) -> None:
        """Remove keys (absent ones are ignored)."""
        pos, found = self._probe(keys)
        p = pos[found]
        self._keys[p] = TOMB
        self._live -= p.shape[0]
        self._tombs += p.shape[0]

    def _rebuild(self, extra: int) -> None:
        live = (self._keys != EMPTY) & (self._keys != TOMB)
        keys = self._keys[live]
        vals = self._vals[live].astype(np.int64)
        size = self._keys.shape[0]
        while (keys.shape[0] + extra) * 2 > size:
            size *= 2
        self._mask = np.uint64(size - 1)
        self._keys = np.zeros(size, np.uint64)
        self._vals = np.zeros(size, np.int32)
        self._live = 0
        self._tombs = 0
        if keys.shape[0]:
            self.insert(keys, vals)
