"""Which slot holds a flow: a hash map checked against the full key, exact despite hash clashes.

The 63-bit hash finds a slot (``SlotMap``); the slot's stored canonical key confirms it. A flow
whose hash another live flow already owns lives under its full key in a small side dict instead,
so two flows are never merged and one flow is never split, whatever the hash does.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from analyzers._flowcolumns import FlowColumns
from analyzers._slotmap import KeyColumns, SlotMap

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]


def full_key(canon: U64) -> tuple[int, ...]:
    """A flow's canonical key (a row of grouping's ``Groups.keys``), as a dict key."""
    return tuple(int(v) for v in canon.tolist())


class FlowIndex:
    """``flow -> slot`` for the flows stored in *cols*."""

    def __init__(self, cols: FlowColumns) -> None:
        self._map = SlotMap((cols.ahi, cols.alo, cols.bhi, cols.blo, cols.ports, cols.meta))
        self._collide: dict[tuple[int, ...], int] = {}
        self._collide_slots: set[int] = set()

    def probe_state(self) -> tuple[npt.NDArray[np.int32], KeyColumns]:
        """The slot map's probe state (``SlotMap.probe_state``): a compiled loop's lookups."""
        return self._map.probe_state()

    def find(
        self, uh: npt.NDArray[np.uint64], first_pos: I64, canon: U64
    ) -> tuple[I64, I64, npt.NDArray[np.bool_]]:
        """Slot of each unique flow of the batch (-1: new), the new flows in arrival order, and
        which of those clash (their hash belongs to another flow). *canon* holds each flow's
        canonical key: a slot the hash finds is that flow's only if its stored key is the same
        (exact, not probabilistic)."""
        slots, found = self._map.get_exact(uh, canon)
        none = np.empty(0, np.int64)
        new = np.flatnonzero(slots < 0)
        if new.size == 0:
            return slots, none, found[none]
        need_arr = new
        if self._collide or found[new].any():
            # a hash clash: the flow may already live under its full key
            need: list[int] = []
            for i in new.tolist():
                hit = self._collide.get(full_key(canon[i]))
                if hit is None:
                    need.append(i)
                else:
                    slots[i] = hit
            if not need:
                return slots, none, found[none]
            need_arr = np.array(need, dtype=np.int64)
        # uids follow arrival order, so they do not depend on where batches happen to split
        need_arr = need_arr[np.argsort(first_pos[need_arr], kind="stable")]
        return slots, need_arr, found[need_arr]

    def add(
        self, canon: U64, hashes: npt.NDArray[np.uint64], s: I64, clash: npt.NDArray[np.bool_]
    ) -> None:
        """Index new flows at slots *s*: their canonical keys (*canon*'s rows), *hashes*, and
        which ones *clash*."""
        if clash.any():
            # a different flow owns these hashes: keep these flows under their full keys
            for j in np.flatnonzero(clash).tolist():
                slot = int(s[j])
                self._collide[full_key(canon[j])] = slot
                self._collide_slots.add(slot)
        own = ~clash
        self._map.insert(hashes[own], s[own])

    def remove(self, s: I64) -> None:
        """Forget the flows at slots *s* (their key columns still hold them)."""
        owners = s
        if self._collide_slots:
            clashed = np.isin(s, np.fromiter(self._collide_slots, np.int64))
            owners = s[~clashed]
            for slot in s[clashed].tolist():
                self._collide_slots.discard(slot)
                for k, v in list(self._collide.items()):
                    if v == slot:
                        del self._collide[k]
        self._map.delete(owners)
