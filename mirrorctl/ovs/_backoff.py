"""Retry delays for a connection that went away: exponential, capped, reset on success."""

from __future__ import annotations

__all__ = ["Backoff"]


class Backoff:
    """Exponential retry delays: ``initial``, doubled each failure, capped; ``reset`` on success."""

    def __init__(self, initial: float = 0.1, cap: float = 1.6) -> None:
        self.initial = initial
        self.cap = cap
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = self.initial
