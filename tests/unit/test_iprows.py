"""The flow table's row selection (``kept_ip_rows``) equals its numpy formulation."""

from __future__ import annotations

import numpy as np
import pytest

from analyzers._decoded import Status
from analyzers._iprows import kept_ip_rows


def reference(status: np.ndarray, keep: np.ndarray | None) -> tuple[list[int], int]:
    mask = np.ones(status.shape[0], np.bool_) if keep is None else keep
    rows = np.flatnonzero((status <= int(Status.L3)) & mask).tolist()
    return rows, int(np.count_nonzero((status == int(Status.NON_IP)) & mask))


@pytest.mark.parametrize("seed", range(5))
def test_random_batches_select_the_kept_ip_rows_in_order(seed: int) -> None:
    rng = np.random.default_rng(seed)
    status = rng.choice([0, 0, 0, 1, 2, 17, 18, 25], size=1000).astype(np.uint8)
    keep = rng.random(1000) < 0.8
    rows, not_ip = kept_ip_rows(status, keep)
    assert (rows.tolist(), not_ip) == reference(status, keep)


def test_an_empty_mask_keeps_every_row() -> None:
    status = np.array([2, 0, 1, 18, 2, 0], np.uint8)
    rows, not_ip = kept_ip_rows(status, np.zeros(0, np.bool_))
    assert (rows.tolist(), not_ip) == ([1, 2, 5], 2)
    assert (rows.tolist(), not_ip) == reference(status, None)


def test_an_empty_batch_selects_nothing() -> None:
    rows, not_ip = kept_ip_rows(np.zeros(0, np.uint8), np.zeros(0, np.bool_))
    assert (rows.tolist(), not_ip) == ([], 0)
