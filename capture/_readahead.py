"""Reading a file's next batches on a thread of their own while the current one is analysed.

A file does not wait for frames: the only wait is the work. Reading a batch (the pcap record walk,
and the decode a ``RecordWalker`` does in the same pass) is compiled code that releases the GIL, so
it can run on a second core while the analysis of the batch before it runs on the first. Over the
bench pcap the walk and decode are about a third of the chain's time, which is what a read-ahead of
two batches takes off the wall time; the CPU spent stays the same.

``ReadAhead`` wraps any ``FrameSource`` whose batches stay valid after the next one is read (a
file's: its batches are views of the whole mapping). Batches come out in the order the source
yields them, and the source's error comes out where it happened: after every batch before it. A
consumer that stops early (or ``close``) stops the thread before the source is closed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

from capture._batch import FrameBatch
from capture._protocols import FrameSource, SourceStats

__all__ = ["ReadAhead"]

_POLL_S = 0.1  # how often a blocked reader looks whether it should stop


class _Failed:
    """The source raised: re-raised to the consumer after the batches before it."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


_Item = FrameBatch | _Failed | None  # None: the source is exhausted


class ReadAhead:
    """``source``'s batches, read up to ``depth`` ahead of the consumer by a thread."""

    def __init__(self, source: FrameSource, depth: int = 2) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, not {depth}")
        self.source = source
        self._depth = depth
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def batches(self) -> Iterator[FrameBatch]:
        ready: queue.Queue[_Item] = queue.Queue(maxsize=self._depth)
        self._stop.clear()
        thread = threading.Thread(
            target=self._read, args=(ready,), name="capture-read-ahead", daemon=True
        )
        self._thread = thread
        thread.start()
        try:
            while True:
                item = ready.get()
                if item is None:  # the source is exhausted
                    return
                if isinstance(item, _Failed):
                    raise item.error
                yield item
        finally:
            self._halt()

    def _read(self, ready: queue.Queue[_Item]) -> None:
        batches = self.source.batches()
        try:
            for batch in batches:
                if not self._put(ready, batch):
                    return
            self._put(ready, None)
        except BaseException as e:  # handed to the consumer, raised there
            self._put(ready, _Failed(e))
        finally:
            close = getattr(batches, "close", None)  # a generator: closed on the thread it ran
            if close is not None:
                close()

    def _put(self, ready: queue.Queue[_Item], item: _Item) -> bool:
        """Queue *item* unless the consumer went away; False if it did."""
        while not self._stop.is_set():
            try:
                ready.put(item, timeout=_POLL_S)
            except queue.Full:
                continue
            return True
        return False

    def _halt(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()

    def stats(self) -> SourceStats:
        return self.source.stats()

    def close(self) -> None:
        """Stop the reader thread, then close the source."""
        self._halt()
        self.source.close()
