"""SlotMap: the flow table's vectorized hash map behaves like a dict under churn."""

from __future__ import annotations

import numpy as np

from analyzers._slotmap import SlotMap


def test_slotmap_matches_a_dict_under_inserts_deletes_and_rebuilds() -> None:
    """Random inserts and deletes (with colliding buckets and tombstones) agree with a dict.

    The keys live in the caller's column by slot, as the flow table's hashes do.
    """
    rng = np.random.default_rng(7)
    key_of = np.zeros(20_000, np.uint64)  # the caller's hash column, by slot
    sm = SlotMap(lambda s: key_of[s], 64)
    ref: dict[int, int] = {}
    next_slot = 0
    for _ in range(300):
        # small key space: many bucket collisions, reuse of deleted keys
        cand = np.unique(rng.integers(1, 5000, size=rng.integers(1, 40)).astype(np.uint64))
        new = np.array([k for k in cand.tolist() if k not in ref], dtype=np.uint64)
        slots = np.arange(next_slot, next_slot + new.size, dtype=np.int64)
        next_slot += new.size
        key_of[slots] = new
        sm.insert(new, slots)
        ref.update(zip(new.tolist(), slots.tolist(), strict=True))
        if ref and rng.random() < 0.6:
            gone = rng.choice(np.array(list(ref), dtype=np.uint64), size=min(len(ref), 25))
            gone = np.unique(gone)
            sm.delete(gone)
            for k in gone.tolist():
                del ref[k]
        probe = np.arange(1, 5000, dtype=np.uint64)
        got = sm.get(probe)
        want = np.array([ref.get(k, -1) for k in probe.tolist()])
        assert np.array_equal(got, want)
        assert len(sm) == len(ref)
