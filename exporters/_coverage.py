"""Capture coverage: the share of what OVS mirrored that the capture actually received.

OVS does not count mirrored packets live: ovs-vswitchd copies datapath counters into the Mirror's
``statistics`` column every few seconds (``other_config:stats-update-interval``, 5 s by default),
while the capture's received counter is live. A ratio of the two read at the same instant is
therefore off by whatever arrived since OVS last wrote: reads of 1.2 and more during a burst.

So the ratio is only ever taken between *change points*: a (captured, mirrored) pair is recorded
when the mirrored counter is observed to change, i.e. right after ovs-vswitchd wrote new
statistics (the service observes at the moment the OVSDB update arrives; a scrape that notices a
change observes too). Between two change points both counters cover the same packets, so
``(captured_j - captured_i) / (mirrored_j - mirrored_i)`` is exact up to the few milliseconds the
update takes to arrive. The exported ratio spans from the newest change point back to the newest
one at least ``window_s`` older (or the oldest kept, early on), so an old burst of loss falls out
of the window; it keeps its value while the mirror is idle (no change: nothing new to compare).
A counter going backwards (either side restarted) starts afresh.

Which OVS counter is "mirrored" is the caller's choice; the service uses the mirror output
port's interface statistics (tx_packets + tx_dropped), which ovs-vswitchd reads from the device
at the write, rather than the Mirror row's tx_packets, which lags the datapath by up to one
revalidator round (~0.5 s of traffic) at the write.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable


class CoverageWindow:
    """``captured / mirrored`` between change points of the mirrored counter, over a window.

    ``observe`` may be called from any thread (the OVSDB feed and the scraper both do). The ratio
    is undefined (None) until two change points were seen, and when OVS mirrored nothing between
    them.
    """

    def __init__(self, clock: Callable[[], float], window_s: float = 60.0) -> None:
        if window_s <= 0:
            raise ValueError(f"coverage window must be positive, got {window_s}")
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._mirrored: int | None = None  # last observed, changed or not
        self._points: deque[tuple[float, int, int]] = deque()  # (time, captured, mirrored)

    def observe(self, captured: int, mirrored: int) -> None:
        """Take one reading of both counters; it counts only if ``mirrored`` changed."""
        with self._lock:
            last = self._mirrored
            self._mirrored = mirrored
            if last is None or mirrored == last:
                # The first reading's statistics were written at an unknown time before it.
                return
            if mirrored < last or (self._points and captured < self._points[-1][1]):
                self._points.clear()
                return
            now = self._clock()
            self._points.append((now, captured, mirrored))
            newest = now
            # Keep one change point at or beyond the window edge: it is the base.
            while len(self._points) > 2 and newest - self._points[1][0] >= self.window_s:
                self._points.popleft()

    def ratio(self) -> float | None:
        with self._lock:
            if len(self._points) < 2:
                return None
            _, base_c, base_m = self._points[0]
            _, c, m = self._points[-1]
        return (c - base_c) / (m - base_m)

    def update(self, captured: int, mirrored: int) -> float | None:
        """``observe`` then ``ratio``: one reading per scrape."""
        self.observe(captured, mirrored)
        return self.ratio()
