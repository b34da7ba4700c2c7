"""``count_statuses`` counts a status column as ``np.bincount`` does, leaving out codes past the
counts, and ORs the encapsulation column as ``np.bitwise_or.reduce`` does."""

from __future__ import annotations

import numpy as np

from analyzers._statuscount import count_statuses


def test_counts_match_bincount_and_add_up() -> None:
    rng = np.random.default_rng(7)
    status = rng.choice(np.array([0, 0, 0, 1, 2, 17, 31, 32, 255], np.uint8), 10_000)
    counts = np.zeros(32, np.int64)
    counts[3] = 5  # counts add to what is there
    encap = (rng.random(10_000) < 0.001).astype(np.uint32) << rng.integers(0, 20, 10_000).astype(
        np.uint32
    )
    assert count_statuses(status, encap, counts) == int(np.bitwise_or.reduce(encap))
    assert int(np.bitwise_or.reduce(encap)) != 0
    expected = np.bincount(status, minlength=256)[:32]
    expected[3] += 5
    assert counts.tolist() == expected.tolist()
    assert counts.sum() == 5 + np.count_nonzero(status < 32)


def test_no_rows_and_no_counts() -> None:
    counts = np.zeros(4, np.int64)
    assert count_statuses(np.zeros(0, np.uint8), np.zeros(0, np.uint32), counts) == 0
    assert count_statuses(np.zeros(3, np.uint8), np.zeros(3, np.uint32), np.zeros(0, np.int64)) == 0
    assert counts.tolist() == [0, 0, 0, 0]
