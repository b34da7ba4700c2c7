"""The capture service loop: one frame source, a list of batch sinks, a timer, a stop event.

Generic on purpose: it knows nothing of analyzers or exporters (the CLI composes those), so a pcap
store or an IPFIX exporter is one more ``BatchSink`` in the list. Batches are handed to every sink
in order, in the thread that called ``run``; a timer thread calls ``tick`` every ``tick_s``
seconds (flow expiry on a quiet link, metric snapshots, file rotation) and, when the stop event is
set (a signal handler, a test, ``--duration``), wakes the source so ``run`` returns promptly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from capture._protocols import BatchSink, FrameSource, SourceStats

log = logging.getLogger(__name__)

#: After this many consecutive failures of one sink the error is logged once per this many.
_LOG_EVERY = 1000


@runtime_checkable
class Stoppable(Protocol):
    """A source that can be woken from a blocking read (AF_PACKET's poll): ``stop()``."""

    def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ServiceResult:
    """What one ``run`` did."""

    batches: int
    frames: int
    stopped: bool  # the stop event ended it (else the source ran out)
    sink_errors: int  # batches a sink raised on (logged; the service kept going)
    source: SourceStats


class CaptureService:
    """Feeds every batch of ``source`` to ``sinks`` until the source ends or ``stop`` is set."""

    def __init__(
        self,
        source: FrameSource,
        sinks: Sequence[BatchSink],
        *,
        stop: threading.Event | None = None,
        tick: Callable[[], None] | None = None,
        tick_s: float = 1.0,
        duration_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if tick_s <= 0:
            raise ValueError(f"tick_s must be positive, not {tick_s}")
        self.source = source
        self.sinks = tuple(sinks)
        self.stop_event = stop if stop is not None else threading.Event()
        self._tick = tick
        self._tick_s = tick_s
        self._duration_s = duration_s
        self._clock = clock
        self._sink_errors = 0
        self._done = threading.Event()
        self._wake = threading.Event()  # set by request_stop and at the end of run

    def request_stop(self) -> None:
        """Make ``run`` return soon; safe from a signal handler or another thread."""
        self.stop_event.set()
        self._wake.set()
        if isinstance(self.source, Stoppable):
            self.source.stop()

    def run(self) -> ServiceResult:
        """Run until the source is exhausted or stop is requested; returns the totals."""
        done = self._done = threading.Event()
        self._wake.clear()
        timer = threading.Thread(target=self._timer, name="capture-tick", daemon=True)
        timer.start()
        batches = frames = 0
        try:
            for batch in self.source.batches():
                batches += 1
                frames += len(batch)
                for sink in self.sinks:
                    try:
                        sink.on_batch(batch)
                    except Exception:
                        # One bad batch (a bug in a sink) must not end a capture that feeds
                        # metrics and records for a whole node: log it, count it, go on.
                        self._sink_errors += 1
                        if self._sink_errors % _LOG_EVERY == 1:
                            log.exception(
                                "sink %s failed on a batch (%d so far); continuing",
                                type(sink).__name__,
                                self._sink_errors,
                            )
                if self.stop_event.is_set():
                    break
        finally:
            done.set()
            self._wake.set()
            timer.join()
        return ServiceResult(
            batches=batches,
            frames=frames,
            stopped=self.stop_event.is_set(),
            sink_errors=self._sink_errors,
            source=self.source.stats(),
        )

    def _timer(self) -> None:
        started = self._clock()
        next_tick = started + self._tick_s
        while not self._done.is_set():
            wake = next_tick
            if self._duration_s is not None:
                wake = min(wake, started + self._duration_s)
            # An event set without request_stop() is still seen, at the next tick at the latest.
            self._wake.wait(max(wake - self._clock(), 0.0))
            if self.stop_event.is_set():
                break
            if self._done.is_set():
                return
            now = self._clock()
            if self._duration_s is not None and now - started >= self._duration_s:
                log.info("duration of %gs reached; stopping", self._duration_s)
                break
            if now < next_tick:
                continue
            next_tick = now + self._tick_s
            if self._tick is not None:
                try:
                    self._tick()
                except Exception:
                    log.exception("periodic tick failed; continuing")
        if not self._done.is_set():
            self.request_stop()


@contextlib.contextmanager
def stop_on_signals(
    stop: Callable[[], None], signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT)
) -> Iterator[None]:
    """Call ``stop`` on SIGTERM/SIGINT while inside the block (main thread only); then restore.

    The handler only writes the signal's number to a pipe and a relay thread calls ``stop``: a
    Python handler runs in the main thread between two bytecodes, possibly inside a critical
    section of the very lock ``stop`` takes (``threading.Event.set`` takes its condition's), and
    calling ``stop`` there deadlocks the process for good. Seen: a ``--workers`` worker whose
    parent was killed stopped from its tick while the parent-death SIGTERM arrived, and hung.
    """
    r, w = os.pipe2(os.O_CLOEXEC)
    os.set_blocking(w, False)
    owner = os.getpid()

    def relay() -> None:
        while data := os.read(r, 64):
            for signum in data:
                if signum == 0:  # the block is over
                    return
                log.info("received %s; stopping", signal.Signals(signum).name)
                stop()

    def handler(signum: int, _frame: object) -> None:
        if os.getpid() != owner:
            # A child forked inside the block (pyroute2's namespace helper is one) inherits the
            # handler and the pipe: its signal must stop its own copy, never write to ours.
            stop()
            return
        with contextlib.suppress(OSError):  # pipe full: a stop is already on its way
            os.write(w, bytes((signum,)))

    thread = threading.Thread(target=relay, name="signal-relay", daemon=True)
    thread.start()
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
        with contextlib.suppress(OSError):
            os.write(w, b"\0")  # not EOF: a forked child may hold the pipe open
        thread.join(timeout=5)
        os.close(w)
        if not thread.is_alive():
            os.close(r)
