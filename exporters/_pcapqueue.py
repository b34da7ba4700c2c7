"""A bounded hand-off from the capture thread to a store's writer thread.

The capture thread must never wait for the disk: under sustained writes the kernel's dirty-page
throttling stalls ``write(2)`` for tens of milliseconds, and a capture thread stalled that long
halves the rate it can take frames off the ring. So the store's file writes run in a thread of
their own, and the capture thread only ``offer``s them work. The queue is bounded in bytes (a
batch of jumbo frames weighs more than one of 64-byte frames): when it is full the offer is
refused at once and the caller counts what it could not hand over.

The thread starts with the first offer and ends at ``stop``; an offer after ``stop`` starts it
again, so a store closed and written to again keeps working.

The thread may run at a lower priority than the capture thread (``nice``, Linux's per-thread nice
value): both often share one core, and when the core is short the capture thread should take the
frames off the ring (the analysis needs each of them) while the writer falls behind and the store
drops and counts, not the other way round. ``nice`` is added to the nice value the thread
inherits.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["WriterQueue"]

_log = logging.getLogger(__name__)

T = TypeVar("T")


class WriterQueue(Generic[T]):
    """Items for ``handle``, run one at a time in order in a writer thread."""

    def __init__(
        self, name: str, handle: Callable[[T], None], limit_bytes: int, *, nice: int = 0
    ) -> None:
        self._name = name
        self._nice = nice
        self._handle = handle
        self._limit = limit_bytes
        self._cond = threading.Condition()
        self._items: deque[tuple[T, int]] = deque()
        self._queued_bytes = 0
        # items accepted so far, and handled so far (in order): the difference is what is
        # queued or being handled
        self._offered = 0
        self._handled = 0
        self._thread: threading.Thread | None = None
        self._stopping = False

    def offer(self, item: T, size: int) -> bool:
        """Queue ``item`` weighing ``size`` bytes; False, at once, when it does not fit. An
        item weighing nothing (a control item: tick, close) always fits, and so does any item
        while the queue is empty."""
        with self._cond:
            if size and self._items and self._queued_bytes + size > self._limit:
                return False
            self._items.append((item, size))
            self._queued_bytes += size
            self._offered += 1
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify_all()
            return True

    @property
    def queued_bytes(self) -> int:
        with self._cond:
            return self._queued_bytes

    def flush(self) -> None:
        """Wait until every item offered so far has been handled."""
        with self._cond:
            self._cond.wait_for(lambda: self._handled == self._offered)

    def catch_up(self, timeout_s: float) -> bool:
        """Wait, at most ``timeout_s``, until every item offered before this call has been
        handled (not those offered meanwhile); whether they were."""
        with self._cond:
            target = self._offered
            return self._cond.wait_for(lambda: self._handled >= target, timeout_s)

    def stop(self) -> None:
        """Handle what is queued, then end the thread."""
        with self._cond:
            thread = self._thread
            self._stopping = True
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        if self._nice:
            # this thread's own nice value (a thread id is a PRIO_PROCESS "who" on Linux), set
            # relative to the inherited one so a service started under nice keeps the order
            tid = threading.get_native_id()
            try:
                own = os.getpriority(os.PRIO_PROCESS, tid)
                os.setpriority(os.PRIO_PROCESS, tid, min(own + self._nice, 19))
            except OSError as e:
                _log.debug("%s keeps its priority: %s", self._name, e)
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._items) or self._stopping)
                if not self._items:
                    self._thread = None
                    self._cond.notify_all()
                    return
                item, size = self._items.popleft()
                self._queued_bytes -= size
            try:
                self._handle(item)
            except Exception:
                # One bad batch must not end the thread: every later offer would then be refused.
                _log.exception("%s: handling a queued item failed", self._name)
            finally:
                with self._cond:
                    self._handled += 1
                    self._cond.notify_all()
