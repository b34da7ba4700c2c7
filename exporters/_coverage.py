"""Capture coverage: the share of what OVS mirrored that the capture actually received.

Both inputs are cumulative counters read at scrape time (the capture's received packets and the OVS
mirror output port's ``tx_packets``). The ratio is taken over a sliding window of those samples,
so a burst of loss an hour ago does not hide behind a good average since start, and a restart of
either side (a counter going backwards) starts the window afresh instead of producing nonsense.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable


class CoverageWindow:
    """``captured / mirrored`` over the last ``window_s`` seconds of samples.

    The base sample is the newest one at least ``window_s`` old, or the oldest kept while the
    exporter has been up for less than the window. The ratio is undefined (None) with fewer than two
    samples or when OVS mirrored nothing in the window. It can exceed 1 slightly: the two counters
    are read a few microseconds apart.
    """

    def __init__(self, clock: Callable[[], float], window_s: float = 60.0) -> None:
        if window_s <= 0:
            raise ValueError(f"coverage window must be positive, got {window_s}")
        self.window_s = window_s
        self._clock = clock
        self._samples: deque[tuple[float, int, int]] = deque()

    def update(self, captured: int, mirrored: int) -> float | None:
        now = self._clock()
        if self._samples:
            _, last_c, last_m = self._samples[-1]
            if captured < last_c or mirrored < last_m:
                self._samples.clear()
        self._samples.append((now, captured, mirrored))
        # Keep exactly one sample at or beyond the window edge: it is the base.
        while len(self._samples) >= 2 and now - self._samples[1][0] >= self.window_s:
            self._samples.popleft()
        if len(self._samples) < 2:
            return None
        _, base_c, base_m = self._samples[0]
        if mirrored == base_m:
            return None
        return (captured - base_c) / (mirrored - base_m)
