"""Stage contracts of the capture service: where batches come from and where they go."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from capture._batch import FrameBatch


@dataclass(frozen=True, slots=True)
class SourceStats:
    """Cumulative counters of a frame source (for AF_PACKET: PACKET_STATISTICS, summed)."""

    received: int
    dropped: int
    freeze_count: int = 0


class FrameSource(Protocol):
    """Anything that yields frame batches: an AF_PACKET ring, a pcap or pcapng file."""

    def batches(self) -> Iterator[FrameBatch]:
        """Yield batches until the source is exhausted or closed."""
        ...

    def stats(self) -> SourceStats:
        """Counters so far; for a live socket, what the kernel reports."""
        ...

    def close(self) -> None:
        """Release the socket, ring or file."""
        ...


class BatchSink(Protocol):
    """A consumer of every batch (the analyzer chain, a pcap store). Must not keep ``data`` views
    beyond the call unless it copies them: the ring block is reused after the call returns."""

    def on_batch(self, batch: FrameBatch) -> None: ...
