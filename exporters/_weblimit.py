"""A bound on concurrent long responses (pcap downloads and streams): 429 with a reason beyond it.

Everything runs on the listener's one event loop, so a plain counter needs no lock.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from fastapi import HTTPException


class ConcurrencyLimit:
    """At most ``limit`` slots held at once; ``acquire()`` beyond that raises a 429."""

    def __init__(self, limit: int, what: str = "downloads") -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        self.limit = limit
        self.what = what
        self.in_use = 0

    def acquire(self) -> Slot:
        """Take a slot before the response starts, so a refusal is still a clean 429."""
        if self.in_use >= self.limit:
            raise HTTPException(
                429,
                detail=f"too many concurrent {self.what}: {self.in_use} of {self.limit} running; "
                "retry when one has finished",
                headers={"Retry-After": "1"},
            )
        self.in_use += 1
        return Slot(self)


class Slot:
    """One held slot; ``release()`` may be called any number of times, it frees once."""

    def __init__(self, limit: ConcurrencyLimit) -> None:
        self._limit: ConcurrencyLimit | None = limit

    def release(self) -> None:
        if self._limit is not None:
            self._limit.in_use -= 1
            self._limit = None

    async def hold(self, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        """``chunks`` passed through; the slot is freed when they end, fail or the client leaves.

        Pass ``BackgroundTask(slot.release)`` to the response as well: a body never started (the
        client left before the first byte) never reaches this ``finally``.
        """
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            self.release()
