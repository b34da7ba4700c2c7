"""CaptureService: batches to every sink, ticks, stop by event, duration and signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from capture import CaptureService, FrameBatch, SourceStats, stop_on_signals


def one_batch(i: int) -> FrameBatch:
    return FrameBatch.from_frames([bytes([i]) * 20], [i])


class ListSource:
    """A finite source: the batches given, then exhaustion."""

    def __init__(self, n: int) -> None:
        self.n = n

    def batches(self) -> Iterator[FrameBatch]:
        for i in range(self.n):
            yield one_batch(i)

    def stats(self) -> SourceStats:
        return SourceStats(received=self.n, dropped=0)

    def close(self) -> None:
        pass


class IdleSource:
    """A live-like source that blocks until ``stop()`` (as AF_PACKET's poll does)."""

    def __init__(self) -> None:
        self._stopped = threading.Event()

    def batches(self) -> Iterator[FrameBatch]:
        self._stopped.wait(30)
        yield from ()

    def stop(self) -> None:
        self._stopped.set()

    def stats(self) -> SourceStats:
        return SourceStats(received=0, dropped=0)

    def close(self) -> None:
        self.stop()


class Recorder:
    def __init__(self, fail_on: int | None = None) -> None:
        self.seen: list[int] = []
        self.fail_on = fail_on

    def on_batch(self, batch: FrameBatch) -> None:
        i = int(batch.ts_ns[0])
        if i == self.fail_on:
            raise RuntimeError("boom")
        self.seen.append(i)


def test_every_batch_reaches_every_sink_in_order() -> None:
    """Two sinks both see all batches in arrival order; the result counts them."""
    a, b = Recorder(), Recorder()
    result = CaptureService(ListSource(5), [a, b]).run()
    assert a.seen == b.seen == [0, 1, 2, 3, 4]
    assert (result.batches, result.frames, result.stopped) == (5, 5, False)


def test_a_failing_sink_is_counted_and_the_others_keep_going(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A sink raising on one batch does not stop the service nor starve the next sink."""
    bad, good = Recorder(fail_on=2), Recorder()
    result = CaptureService(ListSource(4), [bad, good]).run()
    assert bad.seen == [0, 1, 3]
    assert good.seen == [0, 1, 2, 3]
    assert result.sink_errors == 1
    assert "failed on a batch" in caplog.text


def test_ticks_run_while_the_source_is_idle_and_duration_stops_it() -> None:
    """A blocked source still gets ticks every tick_s; duration_s ends the run, stopped=True."""
    ticks: list[float] = []
    started = time.monotonic()
    result = CaptureService(
        IdleSource(), [], tick=lambda: ticks.append(time.monotonic()), tick_s=0.05, duration_s=0.5
    ).run()
    elapsed = time.monotonic() - started
    assert result.stopped
    assert 0.45 <= elapsed < 3
    assert len(ticks) >= 5


def test_request_stop_from_another_thread_wakes_a_blocked_source() -> None:
    """request_stop() from another thread makes run() return promptly."""
    service = CaptureService(IdleSource(), [], tick_s=10)
    threading.Timer(0.2, service.request_stop).start()
    started = time.monotonic()
    assert service.run().stopped
    assert time.monotonic() - started < 3


def test_finite_source_returns_without_waiting_for_a_tick() -> None:
    """A file-like source that ends returns at once, not after the tick interval."""
    started = time.monotonic()
    CaptureService(ListSource(1), [], tick_s=30).run()
    assert time.monotonic() - started < 1


def test_sigterm_inside_stop_on_signals_calls_stop_and_handlers_are_restored() -> None:
    """SIGTERM within the block calls the stop callback; the previous handler is back after."""
    before = signal.getsignal(signal.SIGTERM)
    called = threading.Event()
    with stop_on_signals(called.set):
        os.kill(os.getpid(), signal.SIGTERM)
        assert called.wait(2)
    assert signal.getsignal(signal.SIGTERM) is before


_HELD_LOCK_SCRIPT = """
import signal, threading, time
from capture import stop_on_signals
lock = threading.Lock()
stopped = threading.Event()
def stop():
    with lock:
        stopped.set()
with stop_on_signals(stop):
    with lock:  # the main thread inside the lock stop() takes, as inside Event.set()
        signal.raise_signal(signal.SIGTERM)
        time.sleep(0.1)  # the handler runs here, between two bytecodes
    assert stopped.wait(5), "stop was not called"
print("stopped")
"""


def test_a_signal_inside_the_lock_stop_takes_does_not_deadlock(tmp_path: Path) -> None:
    """SIGTERM arriving while the main thread holds the lock ``stop`` needs: ``stop`` runs once
    the main thread lets go, instead of the handler waiting for the main thread forever (run in
    a child process so that a regression fails by timeout instead of hanging the suite)."""
    script = tmp_path / "held.py"
    script.write_text(_HELD_LOCK_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stopped"


def test_a_signal_to_a_child_forked_inside_the_block_stops_only_the_child() -> None:
    """A child forked inside the block (as pyroute2's namespace helper is) inherits the handler
    and the relay's pipe: SIGTERM to the child stops the child's copy, never the parent."""
    called = threading.Event()
    ready_r, ready_w = os.pipe()
    with stop_on_signals(called.set):
        pid = os.fork()
        if pid == 0:  # the child: exit 0 once its own copy of ``called`` is set
            os.write(ready_w, b"1")  # past the interpreter's after-fork reset of signal state
            for _ in range(100):
                if called.is_set():
                    os._exit(0)
                time.sleep(0.05)
            os._exit(1)
        assert os.read(ready_r, 1) == b"1"
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert not called.wait(0.5)
    os.close(ready_r)
    os.close(ready_w)
