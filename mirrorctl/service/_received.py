"""The capture's received counter at a past instant, from the periodic reports of N workers.

With ``capture run --workers N`` the parent only learns each worker's received counter from its
report, about once a second. The coverage ratio pairs that counter with an OVS statistics write
at the instant the write was seen; reading the last reports instead would be up to a second
stale (mid-burst change points read 0.5-1.8 in the lab). So a write waits until every worker has
reported past it, and each worker's counter is interpolated between its reports either side.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

#: Reports kept per worker: a write is resolved within a couple of reports.
_HISTORY = 8


class ReceivedAt:
    """Resolves (time, mirrored) readings into (captured, mirrored) pairs for ``sink``.

    ``report`` takes one worker's (time, received); ``mirror`` one OVS reading at ``time``. Times
    are ``time.monotonic()`` values, comparable across processes on Linux. Thread-safe.
    """

    def __init__(self, workers: int, sink: Callable[[int, int], None]) -> None:
        self._workers = workers
        self._sink = sink
        self._lock = threading.Lock()
        self._history: dict[int, deque[tuple[float, int]]] = {}
        self._pending: deque[tuple[float, int]] = deque(maxlen=_HISTORY)  # writes not yet paired
        self._last_mirrored: int | None = None

    def mirror(self, at: float, mirrored: int | None) -> None:
        if mirrored is None:
            return
        with self._lock:
            if mirrored == self._last_mirrored:
                return  # not a write: nothing to pair
            self._last_mirrored = mirrored
            self._pending.append((at, mirrored))
            ready = self._resolve()
        for pair in ready:
            self._sink(*pair)

    def report(self, worker: int, at: float, received: int) -> None:
        with self._lock:
            self._history.setdefault(worker, deque(maxlen=_HISTORY)).append((at, received))
            ready = self._resolve()
        for pair in ready:
            self._sink(*pair)

    def _resolve(self) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        while self._pending and len(self._history) == self._workers:
            at, mirrored = self._pending[0]
            if any(h[-1][0] < at for h in self._history.values()):
                break  # some worker has not reported past this write yet
            self._pending.popleft()
            out.append((sum(_interpolate(h, at) for h in self._history.values()), mirrored))
        return out


def _interpolate(history: deque[tuple[float, int]], at: float) -> int:
    """A worker's received counter at ``at``, linear between its reports either side."""
    after = next(i for i, (t, _) in enumerate(history) if t >= at)
    t1, r1 = history[after]
    if after == 0:
        return r1  # before the oldest report kept: its value is the closest known
    t0, r0 = history[after - 1]
    return round(r0 + (r1 - r0) * (at - t0) / (t1 - t0)) if t1 > t0 else r1
