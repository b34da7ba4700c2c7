"""Keep freed memory for reuse instead of handing it back to the kernel batch after batch.

Each batch allocates its columns afresh (a ring block of minimum-size frames: ~27 k rows, a few
hundred KB a column). glibc serves allocations above its mmap threshold (128 KiB until a larger
block is freed) with a fresh mapping, unmapped again on free, so every page of every such column
faults in anew. Copying each 4 MiB ring block out used to raise glibc's threshold as a side
effect (it grows to the largest mapped chunk freed); a worker that analyses the ring in place
frees no such chunk and paid ~60 ns a 64-byte frame in page faults (320 k faults in 5 s).
Setting the thresholds explicitly keeps those columns on the heap, reused.
"""

from __future__ import annotations

import ctypes
import logging

__all__ = ["reuse_freed_memory"]

_log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
#: Allocations up to this size come from the heap: what glibc's own threshold settles at once
#: a block copy of a 4 MiB ring block has been freed, with room for a larger block.
MMAP_THRESHOLD = 8 << 20
#: Free memory kept at the top of the heap before it is returned (glibc's rule: twice the above).
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD


def reuse_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds for this process; False where the C library has no
    ``mallopt`` (not glibc) or refuses, which only costs page faults."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        _log.debug("no mallopt in this C library; allocator thresholds left alone")
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    return bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and done
