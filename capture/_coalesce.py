"""Wake-up coalescing for the ring reader: once the kernel hands a block over, wait a little for
more before working through them, as a network card's interrupt moderation does.

Each wake-up of the capture thread starts cold: while it slept in poll(), its flow table, the
column buffers and the interpreter's own state left the core's caches (on a shared host another
tenant ran there meanwhile), and the first thousands of frames after it pay for loading them again.
Measured on the live bench (64-byte frames across 16 k flows at 0.35-0.4 M frames/s, a ring block
filled every ~80 ms), CPU a frame: 215-236 ns working through each block as it is handed over,
202-213 ns waiting up to 200 ms, 180-183 ns up to 500 ms (the service's default: four to six
blocks a wake-up). After ``stop()`` the source still hands out the blocks filled by then.

The wait ends at once when ``stop()`` writes the source's wake pipe, and early when a quarter of
the ring is filled, so a burst never finds the ring fuller than that and one step's frames more:
coalescing costs latency (at most ``delay_ms`` on top of the block's own timeout), never frames.
"""

from __future__ import annotations

import mmap
import select
import time

from capture import _ringblock as rb

__all__ = ["DEFAULT_COALESCE_MS", "Coalescer"]

#: The service's wait (``mirrorctl capture run --coalesce-ms``): flows, metrics and notices come at
#: most this much later. ``AfPacketSource`` itself waits only when asked.
DEFAULT_COALESCE_MS = 500

_STEP_S = 0.02  # how often the ring's fill is looked at while waiting


class Coalescer:
    """Waits after a wake-up for more filled blocks: up to *delay_ms*, until a quarter of the
    *block_count* blocks are filled, or until *wake_fd* (the source's stop pipe) is readable."""

    def __init__(self, wake_fd: int, delay_ms: int, block_count: int) -> None:
        if delay_ms < 0:
            raise ValueError(f"coalesce delay must be >= 0 ms, not {delay_ms}")
        self.delay_s = delay_ms / 1000
        self.enough = max(1, block_count // 4)
        self._block_count = block_count
        self._poller = select.poll()
        self._poller.register(wake_fd, select.POLLIN)
        self.waits = 0  # wake-ups it waited after

    def wait(self, ring: mmap.mmap, index: int, block_size: int) -> None:
        """Wait while fewer than ``enough`` blocks from *index* on are filled (the one at *index*
        is), for at most the delay; return at once if the wake pipe is readable."""
        if self.delay_s <= 0:
            return
        self.waits += 1
        deadline = time.monotonic() + self.delay_s
        while self._filled_from(ring, index, block_size) < self.enough:
            left = deadline - time.monotonic()
            if left <= 0 or self._poller.poll(min(left, _STEP_S) * 1000):
                return  # the delay is over, or stop() was asked (the caller drains the pipe)

    def _filled_from(self, ring: mmap.mmap, index: int, block_size: int) -> int:
        """Consecutive filled blocks from *index* on, counted up to ``enough``."""
        count = 0
        while count < self.enough:
            base = (index + count) % self._block_count * block_size
            if not rb.filled(ring, base):
                break
            count += 1
        return count
