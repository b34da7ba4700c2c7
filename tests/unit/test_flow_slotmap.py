"""SlotMap: the flow table's compiled hash map behaves like a dict under churn."""

from __future__ import annotations

import numpy as np

from analyzers._flowkey import canonical_key_hash
from analyzers._slotmap import SlotMap

_SPACE = 5000  # candidate flows: UDP from ::ffff:0.0.0.k, so keys get reused after deletion


def test_slotmap_matches_a_dict_under_inserts_deletes_and_rebuilds() -> None:
    """Random inserts and deletes (with colliding buckets and tombstones) agree with a dict.

    The keys live in the caller's key columns by slot, as the flow table's do.
    """
    rng = np.random.default_rng(7)
    n = 20_000
    a_lo = np.zeros(n, np.uint64)
    zero = np.zeros(n, np.uint64)
    meta = np.full(n, 17, np.uint64)
    sm = SlotMap((zero, a_lo, zero, zero, np.zeros(n, np.uint32), meta), 64)
    key = np.array(
        [
            canonical_key_hash(
                np.uint64(0), np.uint64(k), np.uint64(0), np.uint64(0), np.uint64(0), np.uint64(17)
            )
            >> np.uint64(1)
            for k in range(_SPACE)
        ],
        np.uint64,
    )
    canon = np.zeros((_SPACE, 6), np.uint64)  # candidate k's full key: a_lo k, UDP
    canon[:, 1] = np.arange(_SPACE)
    canon[:, 5] = 17
    ref: dict[int, int] = {}  # candidate -> slot
    next_slot = 0
    for _ in range(300):
        cand = np.unique(rng.integers(1, _SPACE, size=rng.integers(1, 40)))
        new = np.array([k for k in cand.tolist() if k not in ref], dtype=np.int64)
        slots = np.arange(next_slot, next_slot + new.size, dtype=np.int64)
        next_slot += new.size
        a_lo[slots] = new
        sm.insert(key[new], slots)
        ref.update(zip(new.tolist(), slots.tolist(), strict=True))
        if ref and rng.random() < 0.6:
            gone = np.unique(
                rng.choice(np.array(list(ref), dtype=np.int64), size=min(len(ref), 25))
            )
            sm.delete(np.array([ref.pop(k) for k in gone.tolist()], np.int64))
        got, hashed = sm.get_exact(key[1:], canon[1:])
        want = np.array([ref.get(k, -1) for k in range(1, _SPACE)])
        assert np.array_equal(got, want)
        assert np.array_equal(hashed, want >= 0)
        assert len(sm) == len(ref)


def test_a_slot_whose_stored_key_differs_is_a_clash_not_a_match() -> None:
    """The hash finds a slot, but the flow stored there is another one: -1, and ``hashed``."""
    n = 8
    a_lo = np.arange(n, dtype=np.uint64)
    zero = np.zeros(n, np.uint64)
    meta = np.full(n, 17, np.uint64)
    sm = SlotMap((zero, a_lo, zero, zero, np.zeros(n, np.uint32), meta), 16)
    h = canonical_key_hash(
        np.uint64(0), np.uint64(3), np.uint64(0), np.uint64(0), np.uint64(0), np.uint64(17)
    ) >> np.uint64(1)
    keys = np.array([h, h], np.uint64)
    sm.insert(keys[:1], np.array([3], np.int64))
    canon = np.zeros((2, 6), np.uint64)
    canon[:, 5] = 17
    canon[0, 1] = 3  # the flow stored at slot 3
    canon[1, 1] = 4  # another flow under the same hash
    slots, hashed = sm.get_exact(keys, canon)
    assert slots.tolist() == [3, -1]
    assert hashed.tolist() == [True, True]
