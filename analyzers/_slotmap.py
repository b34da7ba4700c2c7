"""A vectorized open-addressing hash map from 64-bit flow hashes to slot numbers.

A Python dict costs ~120 bytes and a bytecode round trip per flow; this costs 4 bytes per
bucket (at most half full) and a handful of numpy passes per batch, whatever the number of flows.
A bucket holds only its slot: the caller gives a slot's key back (``key_of``, the flow table
recomputes the hash from the flow's stored key) for as long as the slot is in the map, so no
key is stored at all. Linear probing; deleted buckets become tombstones, and the table is rebuilt
when they pile up.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

# bucket values: slot + 1, so a zeroed (lazily mapped) bucket array is all empty
EMPTY = 0
TOMB = -1
_REBUILD_CHUNK = 1 << 15


class SlotMap:
    """``key -> slot``, ``key_of(slots)`` giving the keys; the buckets double whenever they
    would pass half full.

    Starting small keeps the buckets of a modest table in cache, and the memory proportional to
    the live keys rather than to the largest table ever allowed.
    """

    def __init__(self, key_of: Callable[[I64], U64], initial: int = 1 << 16) -> None:
        size = 1 << max(4, (initial - 1).bit_length())
        self._key_of = key_of
        self._mask = np.uint64(size - 1)
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
            v = self._vals[p]
            taken = v > 0
            hit = np.zeros(todo.size, np.bool_)
            hit[taken] = self._key_of(v[taken].astype(np.int64) - 1) == keys[todo[taken]]
            found[todo[hit]] = True
            go_on = ~hit & (v != EMPTY)
            todo = todo[go_on]
            pos[todo] = (p[go_on] + 1) & mask
        return pos, found

    def get(self, keys: U64) -> I64:
        """Slot of each key, -1 where absent."""
        pos, found = self._probe(keys)
        return np.where(found, self._vals[pos].astype(np.int64) - 1, -1)

    def insert(self, keys: U64, slots: I64) -> None:
        """Add keys known to be absent and distinct, ``key_of(slots)`` already giving them."""
        if self._live + self._tombs + keys.shape[0] > self._vals.shape[0] // 2:
            self._rebuild(extra=keys.shape[0])
        pos = (keys & self._mask).astype(np.int64)
        todo = np.arange(keys.shape[0])
        mask = int(self._mask)
        while todo.size:
            p = pos[todo]
            free = self._vals[p] <= 0
            cand = todo[free]
            # two new keys may want the same free bucket: the first one takes it
            _, first = np.unique(pos[cand], return_index=True)
            win = cand[first]
            self._tombs -= int(np.count_nonzero(self._vals[pos[win]] == TOMB))
            self._vals[pos[win]] = slots[win] + 1
            placed = np.zeros(keys.shape[0], np.bool_)
            placed[win] = True
            todo = todo[~placed[todo]]
            # losers retry the same bucket (now taken) next round and move on from there
            busy = self._vals[pos[todo]] > 0
            pos[todo[busy]] = (pos[todo[busy]] + 1) & mask
        self._live += keys.shape[0]

    def delete(self, keys: U64) -> None:
        """Remove keys (absent ones are ignored)."""
        pos, found = self._probe(keys)
        p = pos[found]
        self._vals[p] = TOMB
        self._live -= p.shape[0]
        self._tombs += p.shape[0]

    def _rebuild(self, extra: int) -> None:
        slots = self._vals[self._vals > 0].astype(np.int64) - 1
        size = self._vals.shape[0]
        while (slots.shape[0] + extra) * 2 > size:
            size *= 2
        self._mask = np.uint64(size - 1)
        self._vals = np.zeros(size, np.int32)
        self._live = 0
        self._tombs = 0
        # a chunk at a time: the probe's temporaries stay small beside the buckets (whole-table
        # ones at a million keys are tens of MB the allocator keeps once freed)
        for i in range(0, slots.shape[0], _REBUILD_CHUNK):
            part = slots[i : i + _REBUILD_CHUNK]
            self.insert(self._key_of(part), part)
