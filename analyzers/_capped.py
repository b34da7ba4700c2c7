"""A dict with a hard bound on its entries: the least recently touched goes first, counted.

Detectors key their state by addresses an attacker chooses; spoofed sources must cost evictions,
not memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class CappedDict(Generic[K, V]):
    """At most ``cap`` entries; ``get`` and ``put`` make an entry the most recent."""

    def __init__(self, cap: int) -> None:
        if cap < 1:
            raise ValueError("cap must be at least 1")
        self.cap = cap
        self.evicted = 0
        self._d: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._d)

    def __iter__(self) -> Iterator[K]:
        return iter(self._d)

    def get(self, key: K) -> V | None:
        value = self._d.get(key)
        if value is not None:
            self._d.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        d = self._d
        d[key] = value
        d.move_to_end(key)
        if len(d) > self.cap:
            d.popitem(last=False)
            self.evicted += 1

    def pop(self, key: K) -> V | None:
        return self._d.pop(key, None)
