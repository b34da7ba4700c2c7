"""Each flow's two endpoints (``Endpoint`` objects) as a small id per (slot, direction).

An object array of ``max_flows x 2`` pointers is filled with ``None`` when it is made, so it
costs 16 bytes per flow the table *could* hold (32 MB at the default two million) before the
first packet; and the endpoints are few (the identity map's pods and services, plus
``EXTERNAL``). Ids into the distinct endpoints seen cost 4 bytes per flow actually held, in a
zeroed (lazily mapped) column; 8 once more than 65 535 endpoints are in use at a time. Reading
gives the objects back, as the object array did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from analyzers._lazyzeros import lazy_zeros

ObjArr = npt.NDArray[np.object_]

_COMPACT_MIN = 4096  # distinct endpoints before dropping the ones no flow refers to


class EndpointColumn:
    """``ep[key]`` (any numpy index of an ``(n, 2)`` array): the endpoints there (None: none)."""

    def __init__(self, n: int) -> None:
        self._ids: npt.NDArray[np.uint16] | npt.NDArray[np.int32]
        self._ids = lazy_zeros((n, 2), np.uint16)  # 0: no endpoint
        # interned by object identity (cheap to hash); the list keeps each object alive, so
        # an id() is never reused for another endpoint while it is in the table
        self._objs: list[object] = [None]
        self._id_of: dict[int, int] = {}
        self._table: ObjArr = np.array([None], dtype=object)
        self._high = 0  # slots at and above never held an endpoint
        self._compact_at = _COMPACT_MIN

    def __getitem__(self, key: Any) -> ObjArr:
        out: ObjArr = self._table[self._ids[key]]
        return out

    def set(self, s: npt.NDArray[np.int64], orig: Sequence[object], resp: Sequence[object]) -> None:
        """The originator's and responder's endpoints of slots *s*."""
        if s.size == 0:
            return
        self._store(s, self._intern(orig), self._intern(resp))

    def set_roles(
        self,
        s: npt.NDArray[np.int64],
        a: Sequence[object],
        b: Sequence[object],
        a_orig: npt.NDArray[np.bool_],
    ) -> None:
        """The endpoints of slots *s* given by side: *a* originates where *a_orig* says, else
        *b* (a new flow's endpoints come from its key's sides: no Python loop to sort them)."""
        if s.size == 0:
            return
        a_ids, b_ids = self._intern(a), self._intern(b)
        self._store(s, np.where(a_orig, a_ids, b_ids), np.where(a_orig, b_ids, a_ids))

    def _store(
        self,
        s: npt.NDArray[np.int64],
        orig_ids: npt.NDArray[np.int64],
        resp_ids: npt.NDArray[np.int64],
    ) -> None:
        if len(self._objs) > np.iinfo(self._ids.dtype).max:
            # more endpoints in use than 16-bit ids name: zeroed, so unused slots stay unmapped
            wide = lazy_zeros(self._ids.shape, np.int32)
            wide[: self._high] = self._ids[: self._high]
            self._ids = wide
        self._ids[s, 0] = orig_ids
        self._ids[s, 1] = resp_ids
        self._high = max(self._high, int(s.max()) + 1)
        if len(self._objs) >= self._compact_at:
            self._compact()

    def clear(self, s: npt.NDArray[np.int64]) -> None:
        """Slots *s* hold no flow any more."""
        self._ids[s] = 0

    def _intern(self, objs: Sequence[object]) -> npt.NDArray[np.int64]:
        # a batch's flows share a few endpoints: each distinct object is looked up once, and
        # only one never seen before takes the Python branch
        ids = np.fromiter(map(id, objs), np.int64, len(objs))
        distinct, at, inverse = np.unique(ids, return_index=True, return_inverse=True)
        id_of = self._id_of
        known = self._objs
        before = len(known)
        codes = np.empty(distinct.shape[0], np.int64)
        for i, (key, first) in enumerate(zip(distinct.tolist(), at.tolist(), strict=True)):
            code = id_of.get(key)
            if code is None:
                code = id_of[key] = len(known)
                known.append(objs[first])
            codes[i] = code
        if len(known) > before:
            if len(known) > self._table.shape[0]:
                # room to double: a rebuild per batch would copy every endpoint known so far
                table = np.empty(2 * len(known), dtype=object)
                table[:before] = self._table[:before]
                self._table = table
            self._table[before : len(known)] = known[before:]
        out: npt.NDArray[np.int64] = codes[inverse]
        return out

    def _compact(self) -> None:
        """Forget endpoints no slot refers to (an identity map that keeps changing)."""
        ids = self._ids[: self._high]
        live, remapped = np.unique(ids, return_inverse=True)
        if live[0] != 0:  # id 0 (None) stays id 0
            live = np.concatenate([np.zeros(1, live.dtype), live])
            remapped += 1
        self._ids[: self._high] = remapped.reshape(ids.shape)
        self._objs = [self._objs[k] for k in live.tolist()]
        self._id_of = {id(e): k for k, e in enumerate(self._objs) if k}
        self._table = np.empty(len(self._objs), dtype=object)
        self._table[:] = self._objs
        self._compact_at = max(_COMPACT_MIN, 2 * len(self._objs))
