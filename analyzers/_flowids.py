"""Each slot's flow number (the sequence ``make_uids`` turns into uids), in 4 bytes a flow.

Numbers are handed out in order, so a live flow's number is at most as old as the oldest live
flow: stored modulo 2**32, it reads back exactly as the next number to hand out less its age,
while every live flow is younger than 2**32 numbers. Every 2**30 numbers the live flows' ages
are checked; once one passes 2**31 (a flow outliving two billion others: an active timeout
raised far past its default, at a high flow rate) the column widens to the numbers themselves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from analyzers._lazyzeros import lazy_zeros

I64 = npt.NDArray[np.int64]

_MOD = 1 << 32
_CHECK_EVERY = 1 << 30
_MAX_AGE = 1 << 31


class FlowIds:
    """``fid[key]`` (any numpy index): the flow numbers there, as int64."""

    def __init__(self, n: int) -> None:
        self._low = lazy_zeros(n, np.uint32)
        self._wide: I64 | None = None
        self._next = 0
        self._check_at = _CHECK_EVERY

    def __getitem__(self, key: Any) -> I64:
        if self._wide is not None:
            out: I64 = self._wide[key]
            return out
        age: I64 = (self._next - self._low[key].astype(np.int64)) & (_MOD - 1)
        return self._next - age

    def number(self, s: I64, live: npt.NDArray[np.bool_]) -> None:
        """Give slots *s* the next numbers, in order; *live* marks the slots holding flows."""
        first = self._next
        self._next += s.size
        if self._wide is not None:
            self._wide[s] = np.arange(first, self._next)
            return
        self._low[s] = np.arange(first, self._next) & (_MOD - 1)
        if self._next >= self._check_at:
            self._check_at = self._next + _CHECK_EVERY
            held = np.flatnonzero(live)
            if held.size and int((self._next - self[held]).max()) > _MAX_AGE:
                wide = lazy_zeros(self._low.shape[0], np.int64)
                wide[held] = self[held]
                self._wide = wide
