"""Unsigned integers read from a byte array in either byte order, for the compiled walks.

pcap record headers come in the writing host's byte order (the file header says which), ring
block headers in this host's; both walks read them here. The bytes are widened to int64 first:
numba's ``int()`` of a uint8 is a uint64, and a uint64 mixed with the walks' int64 positions
turns them into floats. No bounds check: the callers check first, numba does not.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from capture._jit import njit

__all__ = ["u16", "u32"]


@njit
def u16(data: npt.NDArray[np.uint8], at: int, big: bool) -> int:
    # unsigned indices: no wrap-round of a negative one (``analyzers._decrow.u8``)
    b0, b1 = np.int64(data[np.uint64(at)]), np.int64(data[np.uint64(at + 1)])
    if big:
        return int((b0 << 8) | b1)
    return int(b0 | (b1 << 8))


@njit
def u32(data: npt.NDArray[np.uint8], at: int, big: bool) -> int:
    if big:
        return (u16(data, at, big) << 16) | u16(data, at + 2, big)
    return u16(data, at, big) | (u16(data, at + 2, big) << 16)
