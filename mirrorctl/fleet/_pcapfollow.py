"""Several agents' live streams merged into one live pcapng, in time order within a hold time.

A live merge cannot wait for every stream's next packet as a download's merge does: the pod
usually runs on one node and the others stay silent, maybe for ever. So each stream is read by
its own thread into one bounded queue, and a packet is written once it is ``hold_s`` old by this
machine's clock: later packets of other nodes that were captured before it still arrive in
time (the agents send what their store holds every poll, half a second behind). Memory is the
packets of ``hold_s`` plus the queue. A stream that ends or fails is named and the rest go on.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import BinaryIO

from capture import StreamPacket
from mirrorctl.fleet._fetch import Answer
from mirrorctl.fleet._pcapmerge import MergedPcapng, MergeReport, packets_of

__all__ = ["follow_merged"]

Say = Callable[[str], None]
_QUEUE = 4096  # packets in flight between the readers and the writer
_Item = tuple[int, int, StreamPacket | str]  # a str: the stream ended, and why


def follow_merged(
    answers: Sequence[Answer],
    out: BinaryIO,
    *,
    say: Say,
    hold_s: float = 2.0,
    comment: str = "",
    clock_ns: Callable[[], int] = time.time_ns,
    stop: threading.Event | None = None,
) -> MergeReport:
    """Copy the merged streams to ``out`` until every stream ended or ``stop`` is set (or Ctrl-C,
    re-raised after what is held is written)."""
    report = MergeReport(packets={a.target.name: 0 for a in answers})
    merged = MergedPcapng(out, comment)
    merged.flush()  # the reader (tshark -r -) sees the header now, not with the first packet
    inbox: queue.Queue[_Item] = queue.Queue(_QUEUE)
    for origin, answer in enumerate(answers):
        threading.Thread(
            target=_read, args=(answer, origin, inbox), daemon=True, name=f"follow-{origin}"
        ).start()
    held: list[tuple[int, int, int, StreamPacket]] = []
    seq = itertools.count()
    live = len(answers)
    hold_ns = int(hold_s * 1e9)
    stop = stop or threading.Event()

    def release(upto: int | None) -> None:
        wrote = False
        while held and (upto is None or held[0][0] <= upto):
            _, _, origin, pkt = heapq.heappop(held)
            merged.write(origin, answers[origin].target, pkt)
            report.packets[answers[origin].target.name] += 1
            wrote = True
        if wrote:
            merged.flush()

    try:
        while live and not stop.is_set():
            try:
                item = inbox.get(timeout=0.1)
            except queue.Empty:
                item = None
            if item is not None:
                ts, origin, what = item
                if isinstance(what, str):
                    live -= 1
                    name = answers[origin].target.name
                    report.failed[name] = what
                    say(f"{name}: {what}; following the others")
                    merged.failed(origin, answers[origin].target, what, clock_ns())
                else:
                    heapq.heappush(held, (ts, next(seq), origin, what))
            release(clock_ns() - hold_ns)
    finally:
        release(None)
    return report


def _read(answer: Answer, origin: int, inbox: queue.Queue[_Item]) -> None:
    why: list[str] = []
    for ts, _, pkt in packets_of(answer, origin, lambda _o, reason: why.append(reason)):
        inbox.put((ts, origin, pkt))
    inbox.put((0, origin, why[0] if why else "its stream ended"))
