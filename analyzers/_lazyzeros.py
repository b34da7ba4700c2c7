"""Zeroed numpy arrays whose memory is mapped a 4 KiB page at a time, as it is first written.

numpy asks for transparent huge pages on large arrays, so where THP is enabled (``madvise``, the
usual default) the first write to a column maps a whole 2 MiB around it. The flow table's columns
are sized for ``max_flows`` and filled from slot 0 up: every column would carry up to 2 MiB past
its last used slot (~16 MB over the table at a million flows). Here each array is an anonymous
mapping advised ``MADV_NOHUGEPAGE``; untouched pages still cost nothing.
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
