"""The ended-flow sink: a queue the flow table appends records to and the collector drains.

Appending is all the flow table's thread pays (``deque.extend`` is atomic, no lock shared with a
scrape); the records become metric inputs at scrape time, in the scraping thread.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from analyzers import FlowRecord


class EndedFlows:
    """Ended flows waiting for the next scrape: an ``analyzers.FlowSink`` for the flow table."""

    def __init__(self) -> None:
        self._queue: deque[FlowRecord] = deque()

    def on_flows_ended(self, records: Sequence[FlowRecord]) -> None:
        self._queue.extend(records)

    def __len__(self) -> int:
        return len(self._queue)

    def drain(self) -> list[FlowRecord]:
        """Everything queued so far, oldest first."""
        out: list[FlowRecord] = []
        while True:
            try:
                out.append(self._queue.popleft())
            except IndexError:
                return out
