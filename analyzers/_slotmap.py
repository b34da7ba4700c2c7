"""A compiled open-addressing hash map from 63-bit flow hashes to slot numbers.

A Python dict costs ~120 bytes and a bytecode round trip per flow; this costs 4 bytes per
bucket (at most half full) and one compiled loop per batch, whatever the number of flows.
A bucket holds only its slot: the probe hashes a bucket's flow from the flow table's key
columns (``canonical_key_hash``, the hash ``flow_keys`` gives) for as long as the slot is in
the map, so no key is stored at all. Linear probing; deleted buckets become tombstones, and the
table is rebuilt when they pile up.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from analyzers._flowkey import canonical_key_hash
from capture import njit, njit_inline

U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]
# the flow table's key columns by slot: a_hi, a_lo, b_hi, b_lo, ports, meta (views of its rows)
KeyColumns = tuple[U64, U64, U64, U64, U64, U64]

# bucket values: slot + 1, so a zeroed (lazily mapped) bucket array is all empty
EMPTY = 0
TOMB = -1
# the hash bits compared; tests narrow it to none to make every flow's hash clash
HASH_MASK = (1 << 63) - 1


@njit
def _slot_hash(cols: KeyColumns, slot: np.int64, hash_mask: np.uint64) -> np.uint64:
    """The key the flow at *slot* was inserted under: its ``hash63`` past the direction bit."""
    a_hi, a_lo, b_hi, b_lo, ports, meta = cols
    h = canonical_key_hash(
        a_hi[slot], a_lo[slot], b_hi[slot], b_lo[slot], np.uint64(ports[slot]), meta[slot]
    )
    return (h >> np.uint64(1)) & hash_mask


@njit
def _find(vals: I32, key: np.uint64, cols: KeyColumns, hash_mask: np.uint64) -> np.int64:
    """Bucket holding *key*, -1 if absent."""
    mask = np.uint64(vals.shape[0] - 1)
    pos = np.int64(key & mask)
    while True:
        v = vals[pos]
        if v == EMPTY:
            return np.int64(-1)
        if v > 0 and _slot_hash(cols, np.int64(v - 1), hash_mask) == key:
            return pos
        pos = np.int64((np.uint64(pos) + np.uint64(1)) & mask)


@njit
def _place(vals: I32, key: np.uint64, slot: np.int64) -> bool:
    """Put an absent *key*'s *slot* in the first free bucket; whether it was a tombstone."""
    mask = np.uint64(vals.shape[0] - 1)
    pos = np.int64(key & mask)
    while vals[pos] > 0:
        pos = np.int64((np.uint64(pos) + np.uint64(1)) & mask)
    tomb = bool(vals[pos] == TOMB)
    vals[pos] = slot + 1
    return tomb


@njit_inline
def find_by_key(
    vals: I32,
    key: np.uint64,
    canon: tuple[np.uint64, np.uint64, np.uint64, np.uint64, np.uint64, np.uint64],
    cols: KeyColumns,
) -> np.int64:
    """The slot of the flow stored under *key* whose key is *canon* (-1: none), without hashing
    the flows probed: the map holds one flow per hash, so it is the one in *key*'s chain whose
    stored key is *canon*."""
    a_hi, a_lo, b_hi, b_lo, ports, meta = cols
    mask = np.uint64(vals.shape[0] - 1)
    pos = np.int64(key & mask)
    while True:
        v = vals[pos]
        if v == EMPTY:
            return np.int64(-1)
        s = np.int64(v) - 1
        if (
            v > 0
            and a_lo[s] == canon[1]
            and b_lo[s] == canon[3]
            and np.uint64(ports[s]) == canon[4]
            and meta[s] == canon[5]
            and a_hi[s] == canon[0]
            and b_hi[s] == canon[2]
        ):
            return s
        pos = np.int64((np.uint64(pos) + np.uint64(1)) & mask)


@njit
def _get_exact(  # noqa: PLR0917 - a compiled kernel takes its columns positionally
    vals: I32, keys: U64, canon: U64, cols: KeyColumns, hash_mask: np.uint64, out: I64, hashed: B
) -> None:
    for i in range(keys.shape[0]):
        key = (canon[i, 0], canon[i, 1], canon[i, 2], canon[i, 3], canon[i, 4], canon[i, 5])
        s = find_by_key(vals, keys[i], key, cols)
        out[i] = s
        # not found: whether another flow owns the hash (a clash) or none does (a new flow)
        hashed[i] = s >= 0 or _find(vals, keys[i], cols, hash_mask) >= 0


@njit
def _insert(vals: I32, keys: U64, slots: I64) -> int:
    """Place every key, the number of tombstones reused."""
    reused = 0
    for i in range(keys.shape[0]):
        if _place(vals, keys[i], slots[i]):
            reused += 1
    return reused


@njit
def _delete(vals: I32, slots: I64, cols: KeyColumns, hash_mask: np.uint64) -> int:
    """Tombstone the buckets of the flows at *slots*, the number found."""
    found = 0
    for i in range(slots.shape[0]):
        pos = _find(vals, _slot_hash(cols, slots[i], hash_mask), cols, hash_mask)
        if pos >= 0:
            vals[pos] = TOMB
            found += 1
    return found


@njit
def _rehash(old: I32, new: I32, cols: KeyColumns, hash_mask: np.uint64) -> None:
    for i in range(old.shape[0]):
        v = old[i]
        if v > 0:
            slot = np.int64(v - 1)
            _place(new, _slot_hash(cols, slot, hash_mask), slot)


class SlotMap:
    """``key -> slot`` over the flows whose keys *cols* hold by slot; the buckets double
    whenever they would pass half full.

    Starting small keeps the buckets of a modest table in cache, and the memory proportional to
    the live keys rather than to the largest table ever allowed.
    """

    def __init__(self, cols: KeyColumns, initial: int = 1 << 16) -> None:
        size = 1 << max(4, (initial - 1).bit_length())
        self._cols = cols
        self._hash_mask = np.uint64(HASH_MASK)
        self._vals = np.zeros(size, np.int32)
        self._live = 0
        self._tombs = 0

    def __len__(self) -> int:
        return self._live

    def probe_state(self) -> tuple[I32, KeyColumns]:
        """What ``find_by_key`` takes: the buckets (replaced when the map grows: fetch them
        again after any insert) and the key columns."""
        return self._vals, self._cols

    def get_exact(self, keys: U64, canon: U64) -> tuple[I64, B]:
        """Slot of each key whose flow's stored key is *canon*'s row (-1 where absent or another
        flow's), and whether the key is in the map at all (a -1 there: a hash clash)."""
        out = np.empty(keys.shape[0], np.int64)
        hashed = np.empty(keys.shape[0], np.bool_)
        _get_exact(self._vals, keys, canon, self._cols, self._hash_mask, out, hashed)
        return out, hashed

    def insert(self, keys: U64, slots: I64) -> None:
        """Add keys known to be absent and distinct, the key columns already holding *slots*."""
        if self._live + self._tombs + keys.shape[0] > self._vals.shape[0] // 2:
            self._rebuild(extra=keys.shape[0])
        self._tombs -= _insert(self._vals, keys, slots)
        self._live += keys.shape[0]

    def delete(self, slots: I64) -> None:
        """Remove the flows at *slots*, by their keys' hashes (absent ones are ignored)."""
        found = _delete(self._vals, slots, self._cols, self._hash_mask)
        self._live -= found
        self._tombs += found

    def _rebuild(self, extra: int) -> None:
        size = self._vals.shape[0]
        while (self._live + extra) * 2 > size:
            size *= 2
        old, self._vals = self._vals, np.zeros(size, np.int32)
        _rehash(old, self._vals, self._cols, self._hash_mask)
        self._tombs = 0
