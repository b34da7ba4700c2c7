"""The pcap store's hand-off to its writer thread: the capture thread never waits for the disk."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from exporters import PcapStore, StoreConfig
from exporters._pcapfiles import scan
from exporters._pcapqueue import WriterQueue
from tests.unit._pcapkit import T0, A, B, Clock, batch, tcp4


class Gate:
    """Free space that a test can hold the writer thread on: the writer asks for it when it
    opens a file, and waits there while the gate is shut."""

    def __init__(self) -> None:
        self.shut = False
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self, _: Path) -> int:
        if self.shut:
            self.entered.set()
            self.opened.wait(10.0)
        return 10 << 30


def test_a_full_queue_drops_and_counts_the_batch_instead_of_blocking(tmp_path: Path) -> None:
    """While the writer is stuck, a batch beyond the queue's bound is dropped at once and
    counted ("queue full"); what was queued is written once the writer moves again."""
    gate = Gate()
    store = PcapStore(
        StoreConfig(directory=tmp_path, node="node1", min_free_bytes=0, queue_bytes=1),
        clock=Clock(),
        free_bytes=gate,
    )
    gate.shut = True
    store.write(*batch([tcp4(A, B)] * 2, [T0, T0 + 1]))  # the writer takes it and gets stuck
    assert gate.entered.wait(10.0)
    store.write(*batch([tcp4(A, B)] * 3, [T0 + 2, T0 + 3, T0 + 4]))  # waits in the queue
    began = time.monotonic()
    store.write(*batch([tcp4(B, A)] * 4, [T0 + 5 + i for i in range(4)]))  # no room: dropped
    assert time.monotonic() - began < 1.0
    c = store.counters()
    assert (c.frames_queue_full, c.frames_not_stored, c.frames_stored) == (4, 4, 0)
    assert c.queued_bytes > 0
    gate.opened.set()
    store.close()
    c = store.counters()
    assert (c.frames_queue_full, c.frames_not_stored, c.frames_stored) == (4, 4, 5)
    assert c.queued_bytes == 0
    [f] = scan(tmp_path)
    assert f.closed


def test_close_writes_what_is_queued_and_a_later_write_starts_a_new_file(tmp_path: Path) -> None:
    """close() drains the queue before closing the file; the store keeps working after it."""
    clock = Clock()
    store = PcapStore(StoreConfig(directory=tmp_path, node="node1", min_free_bytes=0), clock=clock)
    for k in range(20):
        store.write(*batch([tcp4(A, B)] * 10, [T0 + 100 * k + i for i in range(10)]))
    store.close()
    assert store.counters().frames_stored == 200
    assert [f.closed for f in scan(tmp_path)] == [True]
    store.write(*batch([tcp4(A, B)], [T0 + 10_000]))
    store.close()
    assert store.counters().frames_stored == 201
    assert [f.closed for f in scan(tmp_path)] == [True, True]


def test_the_writer_thread_runs_at_its_own_lower_priority() -> None:
    """Items are handled in a thread whose nice value is the queue's, while the thread that
    offers them keeps its own."""
    seen: list[int] = []
    queue: WriterQueue[int] = WriterQueue(
        "t",
        lambda _: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id())),
        10,
        nice=5,
    )
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert queue.offer(1, 1)
    queue.stop()
    assert seen == [min(mine + 5, 19)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine


def test_catch_up_waits_for_what_was_offered_before_it_only() -> None:
    """catch_up returns False while an item offered before it is unhandled (after its timeout),
    and True once that item is handled even if an item offered during the wait is not."""
    gates = {1: threading.Event(), 2: threading.Event()}
    handled: list[int] = []

    def handle(item: int) -> None:
        gates[item].wait(10)
        handled.append(item)

    q: WriterQueue[int] = WriterQueue("t", handle, 1 << 20)
    assert q.catch_up(0.01) is True  # nothing offered: nothing to wait for
    q.offer(1, 10)
    assert q.catch_up(0.05) is False
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(q.catch_up(5)))
    waiter.start()
    time.sleep(0.2)  # the waiter is waiting for item 1
    q.offer(2, 10)
    gates[1].set()
    waiter.join(10)
    assert result == [True]
    assert handled == [1]  # item 2, offered during the wait, was not waited for
    gates[2].set()
    q.stop()
    assert handled == [1, 2]
