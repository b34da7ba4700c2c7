"""Zeroed numpy arrays whose memory is mapped a 4 KiB page at a time, as it is first written.

numpy asks for transparent huge pages on large arrays, so where THP is enabled (``madvise``, the
usual default) a write past a column's first 2 MiB boundary maps a whole 2 MiB around it: a column
filled from slot 0 up carries up to 2 MiB past its last used slot. (Its slots before that
boundary, all of them at 20 k flows, are in 4 KiB pages anyway: the mapping's start is not
aligned. Columns aligned to 2 MiB, all their slots in huge pages, measured no faster, offline or
live: README, "The common frame, and a batch's fixed costs".) The flow table's columns that only
flow creation and the end of a flow touch (endpoint ids, flow numbers, the IP version, the active
bit) need no huge page at all: each is an anonymous mapping advised ``MADV_NOHUGEPAGE``;
untouched pages cost nothing.
"""

from __future__ import annotations

import mmap
from math import prod
from typing import TypeVar

import numpy as np
import numpy.typing as npt

_S = TypeVar("_S", bound=np.generic)


def lazy_zeros(shape: int | tuple[int, ...], dtype: type[_S]) -> npt.NDArray[_S]:
    """``np.zeros(shape, dtype)`` in memory mapped only as it is written, in small pages."""
    dims = (shape,) if isinstance(shape, int) else shape
    count = prod(dims)
    nbytes = count * np.dtype(dtype).itemsize
    if nbytes == 0:
        return np.zeros(dims, dtype)
    buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_NOHUGEPAGE"):  # Linux
        buf.madvise(mmap.MADV_NOHUGEPAGE)
    out: npt.NDArray[_S] = np.frombuffer(buf, dtype, count=count).reshape(dims)
    return out
