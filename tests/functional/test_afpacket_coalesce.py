"""Wake-up coalescing (``coalesce_ms``) on a real veth ring: frames wait, none is lost, stop() is
prompt and still hands out what the ring holds."""

from __future__ import annotations

import socket
import threading
import time

from capture import AfPacketSource, FrameBatch
from tests.functional._veth import VethNs
from tests.functional.test_afpacket import ETH_P_TEST, marked_frame

_BPF = f"ether proto {ETH_P_TEST}"


def _ring(veth: VethNs, coalesce_ms: int) -> AfPacketSource:
    # small blocks retired after 10 ms: each wave of frames fills a block of its own
    return AfPacketSource(
        veth.rx,
        netns=veth.netns,
        block_size=1 << 16,
        block_count=16,
        block_timeout_ms=10,
        bpf=_BPF,
        coalesce_ms=coalesce_ms,
    )


def test_waves_of_frames_come_out_together_and_whole(veth: VethNs, sender: socket.socket) -> None:
    """Three waves 80 ms apart with a 1.5 s wait: the first batch is handed out only after the
    last wave was sent (one wake-up for all of them), and every frame comes out, in order."""
    sent = [marked_frame(i, 60 + i) for i in range(30)]
    got: list[bytes] = []
    first_out: list[float] = []
    last_sent: list[float] = []

    def send() -> None:
        for wave in range(3):
            for f in sent[wave * 10 : (wave + 1) * 10]:
                sender.send(f)
            last_sent.append(time.monotonic())
            time.sleep(0.08)

    with _ring(veth, 1500) as src:
        timer = threading.Timer(10.0, src.stop)
        timer.start()
        thread = threading.Thread(target=send)
        thread.start()
        for batch in src.batches():
            first_out.append(time.monotonic())
            got += [batch.frame(i) for i in range(len(batch))]
            if len(got) >= len(sent):
                break
        timer.cancel()
        thread.join()
        waits = src._coalescer.waits
    assert got == sent
    assert first_out[0] > last_sent[-1]  # held back until the waves were all in the ring
    assert waits >= 1


def test_stop_during_a_wait_is_prompt_and_hands_out_the_ring(
    veth: VethNs, sender: socket.socket
) -> None:
    """A 60 s wait ends as soon as stop() is asked, and the frames held back still come out."""
    sent = [marked_frame(i) for i in range(5)]
    got: list[FrameBatch] = []
    with _ring(veth, 60_000) as src:
        for f in sent:
            sender.send(f)
        threading.Timer(0.5, src.stop).start()
        started = time.monotonic()
        got = list(src.batches())
        took = time.monotonic() - started
    assert [b.frame(i) for b in got for i in range(len(b))] == sent
    assert took < 10.0  # not the 60 s the wait was allowed


def test_a_quarter_of_the_ring_filled_ends_the_wait(veth: VethNs, sender: socket.socket) -> None:
    """With 16 blocks, four filled blocks end a 60 s wait: a burst does not wait for it."""
    frame = marked_frame(1, 1400)

    def burst() -> None:  # once the reader sleeps in poll(): its wake-up starts the wait
        time.sleep(0.3)
        for _ in range(300):  # ~45 frames of 1400 bytes fill a 64 KiB block: over six blocks
            sender.send(frame)

    with _ring(veth, 60_000) as src:
        timer = threading.Timer(20.0, src.stop)
        timer.start()
        thread = threading.Thread(target=burst)
        started = time.monotonic()
        thread.start()
        batches = 0
        for _ in src.batches():
            batches += 1
            break
        took = time.monotonic() - started
        timer.cancel()
        thread.join()
        waits = src._coalescer.waits
    assert batches == 1
    assert waits == 1
    assert took < 15.0  # the burst's blocks went out long before the 60 s wait, or the timer
