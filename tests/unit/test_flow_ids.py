"""FlowIds: flow numbers stored in 32 bits read back exactly, widening before they could not."""

from __future__ import annotations

import numpy as np

from analyzers._flowids import FlowIds


def test_numbers_read_back_across_the_32_bit_boundary() -> None:
    """Numbers past 2**32 read back as themselves from their 32-bit remainders."""
    ids = FlowIds(4)
    ids._next = (1 << 32) - 2  # four billion flows came and went before these
    s = np.arange(4, dtype=np.int64)
    ids.number(s, np.ones(4, np.bool_))
    assert ids[s].tolist() == [(1 << 32) - 2, (1 << 32) - 1, 1 << 32, (1 << 32) + 1]
    assert ids._wide is None


def test_a_flow_outliving_two_billion_others_keeps_its_number() -> None:
    """An old live flow widens the column at the check; its number stays exact ever after."""
    ids = FlowIds(3)
    ids.number(np.array([0], np.int64), np.array([True, False, False]))
    ids._next = (1 << 31) + 5  # two billion short-lived flows later, slot 0 still holds flow 0
    ids.number(np.array([1], np.int64), np.array([True, True, False]))
    assert ids._wide is not None
    ids._next = 1 << 33
    ids.number(np.array([2], np.int64), np.ones(3, np.bool_))
    assert ids[np.arange(3)].tolist() == [0, (1 << 31) + 5, 1 << 33]
