"""``capture.unowned``: a compiled view of an argument without reference counting."""

from __future__ import annotations

import sys

import numpy as np
import numpy.typing as npt
from numba import njit

from capture import unowned


@njit(cache=False)
def _fill_through_view(data: npt.NDArray[np.int64], value: int) -> int:
    view = unowned(data)
    for i in range(view.shape[0]):
        view[i] = value + i
    return int(view.shape[0])


@njit(cache=False)
def _sum_rows(table: npt.NDArray[np.uint64]) -> int:
    view = unowned(table)
    total = 0
    for i in range(view.shape[0]):
        for j in range(view.shape[1]):
            total += int(view[i, j])
    return total


def test_the_view_is_the_arguments_memory() -> None:
    data = np.zeros(7, np.int64)
    assert _fill_through_view(data, 40) == 7
    assert data.tolist() == [40, 41, 42, 43, 44, 45, 46]


def test_a_strided_two_dimensional_view_reads_every_element() -> None:
    table = np.arange(24, dtype=np.uint64).reshape(6, 4)[::2]  # rows 0, 2, 4: not contiguous
    assert _sum_rows(table) == int(table.sum())


def test_the_view_neither_leaks_nor_drops_a_reference() -> None:
    data = np.zeros(3, np.int64)
    before = sys.getrefcount(data)
    for _ in range(100):
        _fill_through_view(data, 1)
    assert sys.getrefcount(data) == before
