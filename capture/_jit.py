"""numba's ``njit`` as the project compiles with it: cached on disk, typed for mypy.

Compiled code is cached next to the module (``__pycache__``) so no process pays the compile
again; where the install is read-only numba falls back to ``NUMBA_CACHE_DIR`` or the user's
cache directory, and where none is writable the kernel is compiled per process instead of
failing (a warning says so).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal, TypeVar, cast

__all__ = ["njit", "njit_inline"]

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def njit(fn: F) -> F:
    """Compile *fn* in nopython mode on first call, caching the machine code on disk."""
    return _compile(fn, inline="never")


def njit_inline(fn: F) -> F:
    """``njit``, with *fn*'s body inlined into its compiled callers by numba itself: for small
    helpers of a hot loop that return tuples or are called many times a row, which LLVM does
    not always inline (the JSON formatter's field helpers: 30 -> 19 ms over the bench pcap)."""
    return _compile(fn, inline="always")


def _compile(fn: F, inline: Literal["never", "always"]) -> F:
    # numba (~0.3-1 s to import) loads with the first kernel module, not with ``capture``
    import numba  # noqa: PLC0415

    try:
        return cast(F, numba.njit(cache=True, nogil=True, inline=inline)(fn))
    except RuntimeError as e:  # no writable cache location: next to the module, or the user's
        log.warning("%s compiled without a disk cache (set NUMBA_CACHE_DIR): %s", fn.__name__, e)
        return cast(F, numba.njit(nogil=True, inline=inline)(fn))
