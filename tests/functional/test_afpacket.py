"""The AF_PACKET TPACKET_V3 source on a real veth pair inside a network namespace of its own."""

from __future__ import annotations

import errno
import os
import secrets
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from capture import AfPacketSource, CaptureError, FrameBatch
from capture._afpacket import FANOUT_FLAG_DEFRAG, FANOUT_HASH
from tests.functional._veth import VethNs, ip

T = TypeVar("T")

ETH_P_TEST = 0x88B5  # IEEE local experimental ethertype: no stack in the namespace answers it
SRC_MAC = bytes.fromhex("020000000001")
DST_MAC = bytes.fromhex("020000000002")


def marked_frame(seq: int, size: int = 64) -> bytes:
    """An Ethernet frame of ``size`` bytes with the local-experimental ethertype and ``seq``."""
    head = DST_MAC + SRC_MAC + struct.pack("!HI", ETH_P_TEST, seq)
    return head + bytes([seq & 0xFF]) * (size - len(head))


def udp_frame(src: str, dst: str, sport: int, dport: int, payload: bytes = b"x" * 18) -> bytes:
    """An Ethernet + IPv4 + UDP frame with a valid IP header checksum."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    hdr = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        0,
        0,
        64,
        17,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    words = sum(struct.unpack("!10H", hdr))
    words = (words & 0xFFFF) + (words >> 16)
    csum = ~((words & 0xFFFF) + (words >> 16)) & 0xFFFF
    hdr = hdr[:10] + struct.pack("!H", csum) + hdr[12:]
    return DST_MAC + SRC_MAC + b"\x08\x00" + hdr + udp


def collect(src: AfPacketSource, *, want: int | None = None, within: float = 3.0) -> list[bytes]:
    """Frames from ``src`` until ``want`` arrived or ``within`` seconds passed (then stop)."""
    frames: list[bytes] = []
    timer = threading.Timer(within, src.stop)
    timer.start()
    try:
        for batch in src.batches():
            frames += [batch.frame(i) for i in range(len(batch))]
            if want is not None and len(frames) >= want:
                break
    finally:
        timer.cancel()
    return frames


def small_ring(veth: VethNs, **kw: object) -> AfPacketSource:
    opts: dict[str, object] = {"block_size": 1 << 16, "block_count": 8, "block_timeout_ms": 10}
    opts.update(kw)
    return AfPacketSource(veth.rx, netns=veth.netns, **opts)  # type: ignore[arg-type]


def test_frames_arrive_with_their_bytes_lengths_and_timestamps(
    veth: VethNs, sender: socket.socket
) -> None:
    """Frames sent into one veth end come out of the ring intact, with ns times close to now."""
    sent = [marked_frame(i, 60 + 97 * i) for i in range(15)]
    with small_ring(veth, bpf=f"ether proto {ETH_P_TEST}") as src:
        before = time.time_ns()
        for f in sent:
            sender.send(f)
        batches: list[FrameBatch] = []
        timer = threading.Timer(3.0, src.stop)
        timer.start()
        for b in src.batches():
            batches.append(b)
            if sum(len(x) for x in batches) >= len(sent):
                break
        timer.cancel()
        after = time.time_ns()
    got = [b.frame(i) for b in batches for i in range(len(b))]
    assert got == sent
    caplens = [int(c) for b in batches for c in b.caplens]
    wirelens = [int(w) for b in batches for w in b.wirelens]
    stamps = [int(t) for b in batches for t in b.ts_ns]
    assert caplens == wirelens == [len(f) for f in sent]
    assert all(before - 10**9 <= t <= after + 10**9 for t in stamps)
    assert stamps == sorted(stamps)


def test_snaplen_truncates_but_keeps_the_wire_length(veth: VethNs, sender: socket.socket) -> None:
    """With snaplen 100, a 1000-byte frame is captured as its first 100 bytes, wirelen 1000."""
    frame = marked_frame(7, 1000)
    with small_ring(veth, snaplen=100, bpf=f"ether proto {ETH_P_TEST}") as src:
        sender.send(frame)
        batches: list[FrameBatch] = []
        timer = threading.Timer(3.0, src.stop)
        timer.start()
        for b in src.batches():
            batches.append(b)
            break
        timer.cancel()
    assert len(batches) == 1
    assert batches[0].frame(0) == frame[:100]
    assert int(batches[0].caplens[0]) == 100
    assert int(batches[0].wirelens[0]) == 1000


def test_vlan_tag_taken_off_by_the_kernel_is_put_back(veth: VethNs, sender: socket.socket) -> None:
    """An 802.1Q frame reads back byte for byte, although the kernel strips the tag on receive."""
    inner = udp_frame("10.0.0.1", "10.0.0.2", 1000, 2000)
    tagged = inner[:12] + struct.pack("!HH", 0x8100, (3 << 13) | 100) + inner[12:]
    with small_ring(veth, bpf=None) as src:
        sender.send(tagged)
        got = collect(src, want=1)
    assert got[:1] == [tagged]


def test_filter_passes_only_matching_frames_and_none_from_before_bind(
    veth: VethNs, sender: socket.socket
) -> None:
    """`udp port 5555` lets only those frames through, even with other traffic flowing during
    setup; frames sent before the socket existed never appear."""
    for i in range(5):
        sender.send(udp_frame("10.0.0.1", "10.0.0.2", 4000 + i, 5555, b"before" + bytes(12)))
    stop_noise = threading.Event()

    def noise() -> None:
        while not stop_noise.is_set():
            sender.send(udp_frame("10.0.0.1", "10.0.0.2", 4000, 6666))

    noisy = threading.Thread(target=noise)
    noisy.start()
    try:
        src = small_ring(veth, bpf="udp port 5555")
    finally:
        stop_noise.set()
        noisy.join()
    with src:
        wanted = [udp_frame("10.0.0.3", "10.0.0.4", 4100 + i, 5555) for i in range(10)]
        for f in wanted:
            sender.send(udp_frame("10.0.0.3", "10.0.0.4", 4100, 7777))
            sender.send(f)
        got = collect(src, within=1.0)
        stats = src.stats()
    assert got == wanted
    assert stats.received == len(wanted)


def test_bad_filter_raises_capture_error_naming_it(veth: VethNs) -> None:
    """An expression libpcap cannot compile is a CaptureError quoting it, before any socket."""
    with pytest.raises(CaptureError, match="udp prot 5555"):
        small_ring(veth, bpf="udp prot 5555")


def test_the_capture_outlives_its_interface_going_down_and_up(
    veth: VethNs, sender: socket.socket
) -> None:
    """A link bounced under the socket (OVS reconfiguring mirror0) does not end the capture:
    the source notes it and takes the frames sent once the link is up again."""
    with small_ring(veth, bpf=f"ether proto {ETH_P_TEST}") as src:
        got: list[bytes] = []

        def bounce_then_send() -> None:
            time.sleep(0.2)
            ip("-n", veth.netns, "link", "set", veth.rx, "down")
            time.sleep(0.3)
            ip("-n", veth.netns, "link", "set", veth.rx, "up")
            time.sleep(0.5)
            for i in range(5):
                sender.send(marked_frame(100 + i))

        t = threading.Thread(target=bounce_then_send)
        t.start()
        got = collect(src, want=5, within=6.0)
        t.join()
        assert src.link_down_events >= 1
    assert got == [marked_frame(100 + i) for i in range(5)]


def test_missing_interface_is_a_capture_error_with_enodev(veth: VethNs) -> None:
    """Capturing on an interface the namespace lacks reports ENODEV and the interface name."""
    with pytest.raises(CaptureError) as info:
        AfPacketSource("nosuch0", netns=veth.netns, block_size=1 << 16, block_count=2)
    assert info.value.errno == errno.ENODEV
    assert "nosuch0" in str(info.value)


def test_missing_netns_is_a_capture_error() -> None:
    """A namespace name that does not exist is a CaptureError carrying ENOENT."""
    with pytest.raises(CaptureError) as info:
        AfPacketSource("eth0", netns=f"absent-{secrets.token_hex(4)}", block_size=1 << 16)
    assert info.value.errno == errno.ENOENT


def test_overflowed_ring_reports_the_kernels_drops_exactly(
    veth: VethNs, sender: socket.socket
) -> None:
    """Flooding an unread 8 KiB ring: frames read + drops reported = frames sent, drops > 0."""
    sent = 3000
    with small_ring(
        veth, block_size=4096, block_count=2, frame_size=2048, bpf=f"ether proto {ETH_P_TEST}"
    ) as src:
        for i in range(sent):
            sender.send(marked_frame(i))
        time.sleep(0.1)  # let the block timer retire the last, partly filled block
        read = collect(src, within=0.5)
        stats = src.stats()
    assert stats.dropped > 0
    assert stats.received == len(read)
    assert stats.received + stats.dropped == sent
    assert stats.freeze_count > 0


def test_fanout_hash_keeps_each_flow_both_directions_on_one_socket(
    veth: VethNs, sender: socket.socket
) -> None:
    """Two sockets in one PACKET_FANOUT_HASH group split 16 flows; every flow, in both
    directions, lands wholly on one of them (the kernel's fanout hash is symmetric)."""
    group = secrets.randbelow(0xFFFF)
    opts = {"fanout": (group, FANOUT_HASH | FANOUT_FLAG_DEFRAG), "bpf": "udp"}
    with small_ring(veth, **opts) as a, small_ring(veth, **opts) as b:
        flows = [(f"10.1.0.{i + 1}", f"10.2.0.{i + 1}", 10000 + i, 53) for i in range(16)]
        for _ in range(5):
            for s, d, sp, dp in flows:
                sender.send(udp_frame(s, d, sp, dp))
                sender.send(udp_frame(d, s, dp, sp))
        got_a = collect(a, within=0.5)
        got_b = collect(b, within=0.5)

    def flow_of(frame: bytes) -> frozenset[tuple[bytes, int]]:
        ips = frame[26:30], frame[30:34]
        sport, dport = struct.unpack("!HH", frame[34:38])
        return frozenset({(ips[0], sport), (ips[1], dport)})

    on_a = {flow_of(f) for f in got_a}
    on_b = {flow_of(f) for f in got_b}
    assert len(got_a) + len(got_b) == 16 * 10
    assert on_a.isdisjoint(on_b)
    assert len(on_a | on_b) == 16
    assert on_a
    assert on_b


def promiscuity(veth: VethNs) -> int:
    out = subprocess.run(
        ["ip", "-n", veth.netns, "-d", "link", "show", veth.rx],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(out.split("promiscuity ")[1].split()[0])


def test_promiscuous_membership_lasts_as_long_as_the_source(veth: VethNs) -> None:
    """promisc=True raises the interface's promiscuity while open and drops it on close."""
    assert promiscuity(veth) == 0
    with small_ring(veth):
        assert promiscuity(veth) == 1
    assert promiscuity(veth) == 0


def test_opening_in_a_netns_leaves_the_callers_namespace_alone(veth: VethNs) -> None:
    """The socket is made in the target namespace; the calling thread stays where it was."""
    own = os.readlink("/proc/thread-self/ns/net")
    with small_ring(veth):
        assert os.readlink("/proc/thread-self/ns/net") == own


def test_vlan_primitive_in_a_live_filter_is_refused(veth: VethNs) -> None:
    """`vlan` in a live filter would drop every tagged frame, so it is an error, not silence."""
    with pytest.raises(CaptureError, match="vlan"):
        small_ring(veth, bpf="vlan 100 and udp")


def test_plain_filter_matches_tagged_frames_by_their_inner_headers(
    veth: VethNs, sender: socket.socket
) -> None:
    """`udp port 5555` selects a tagged UDP frame, which arrives with its tag back in place."""
    inner = udp_frame("10.0.0.1", "10.0.0.2", 1000, 5555)
    tagged = inner[:12] + struct.pack("!HH", 0x8100, 100) + inner[12:]
    with small_ring(veth, bpf="udp port 5555") as src:
        sender.send(udp_frame("10.0.0.1", "10.0.0.2", 1000, 6666))
        sender.send(tagged)
        got = collect(src, within=0.5)
    assert got == [tagged]


def test_fanout_members_never_both_deliver_a_frame_sent_while_joining(
    veth: VethNs, sender: socket.socket
) -> None:
    """With traffic flowing while two sockets join one fanout group, no frame reaches both:
    frames a socket saw before its join are discarded, not delivered twice."""
    group = secrets.randbelow(0xFFFF)
    opts = {"fanout": (group, FANOUT_HASH), "bpf": "udp"}
    stop = threading.Event()
    sent = 0

    def stream() -> None:
        nonlocal sent
        while not stop.is_set():
            flow = sent % 8
            sender.send(
                udp_frame("10.1.0.1", "10.2.0.1", 20000 + flow, 53, struct.pack("!I", sent))
            )
            sent += 1

    streamer = threading.Thread(target=stream)
    streamer.start()
    try:
        with small_ring(veth, **opts) as a:
            time.sleep(0.05)
            with small_ring(veth, **opts) as b:
                time.sleep(0.05)
                stop.set()
                streamer.join()
                got_a = collect(a, within=0.5)
                got_b = collect(b, within=0.5)
                stats = a.stats().received + b.stats().received
    finally:
        stop.set()
        streamer.join()
    seq_a = {struct.unpack("!I", f[42:46])[0] for f in got_a}
    seq_b = {struct.unpack("!I", f[42:46])[0] for f in got_b}
    assert seq_a
    assert seq_b
    assert seq_a.isdisjoint(seq_b)
    assert stats == len(got_a) + len(got_b)


def test_without_privileges_opening_is_a_capture_error_with_eperm() -> None:
    """An unprivileged user gets CaptureError(EPERM) saying capture needs root, not a traceback."""
    probe = (
        "from capture import AfPacketSource, CaptureError\n"
        "try:\n"
        "    AfPacketSource('lo', block_size=1 << 16, block_count=2)\n"
        "except CaptureError as e:\n"
        "    print(e.errno, e)\n"
    )
    out = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-c",
            probe,
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    ).stdout
    assert out.startswith(f"{errno.EPERM} ")
    assert "root" in out


def test_non_ethernet_interface_is_refused(veth: VethNs) -> None:
    """A link without Ethernet framing (a tun device) is a CaptureError, not mislabelled frames."""
    ip("-n", veth.netns, "tuntap", "add", "tun0", "mode", "tun")
    with pytest.raises(CaptureError, match="not Ethernet"):
        AfPacketSource("tun0", netns=veth.netns, block_size=1 << 16, block_count=2)


# --- batches that view the ring (copy_blocks=False) -----------------------------------------------


def tiny_ring(veth: VethNs, *, copy_blocks: bool) -> AfPacketSource:
    """Two 4 KiB blocks (~26 minimum-size frames each), retired after 10 ms."""
    return small_ring(
        veth,
        block_size=4096,
        block_count=2,
        frame_size=2048,
        bpf=f"ether proto {ETH_P_TEST}",
        copy_blocks=copy_blocks,
    )


def frames_of(batch: FrameBatch) -> list[bytes]:
    return [batch.frame(i) for i in range(len(batch))]


def _in_bursts(
    src: AfPacketSource,
    sender: socket.socket,
    bursts: int,
    size: int,
    take: Callable[[FrameBatch], T],
) -> tuple[list[bytes], list[T]]:
    """Send *bursts* bursts of 20 marked frames of *size* bytes; after each, read batches until
    every frame sent so far came back, keeping ``take(batch)`` of each (the source stops after
    10 s at the latest). Returns the frames sent and what was kept."""
    sent: list[bytes] = []
    kept: list[T] = []
    got = 0
    timer = threading.Timer(10.0, src.stop)
    timer.start()
    try:
        it = src.batches()
        for burst in range(bursts):
            frames = [marked_frame(20 * burst + i, size) for i in range(20)]
            for f in frames:
                sender.send(f)
            sent += frames
            while got < len(sent):
                batch = next(it)
                got += len(batch)
                kept.append(take(batch))
        it.close()
    finally:
        timer.cancel()
    return sent, kept


def _first_batch(
    src: AfPacketSource, sender: socket.socket, frames: list[bytes]
) -> tuple[Iterator[FrameBatch], FrameBatch]:
    """Send *frames*, then take the first batch: the source's iterator and that batch."""
    for f in frames:
        sender.send(f)
    it = src.batches()
    return it, next(it)


def test_zero_copy_frames_equal_the_frames_sent_over_several_blocks(
    veth: VethNs, sender: socket.socket
) -> None:
    """Read in place, frames of every size come out as sent, in order, with their lengths,
    across many blocks; each batch's data is a read-only view of the ring, not a copy."""
    sent = [marked_frame(i, 60 + (i * 151) % 1400) for i in range(400)]
    with small_ring(veth, bpf=f"ether proto {ETH_P_TEST}", copy_blocks=False) as src:
        for f in sent:
            sender.send(f)
        got: list[bytes] = []
        lengths: list[tuple[int, int]] = []
        batches = 0
        timer = threading.Timer(5.0, src.stop)
        timer.start()
        try:
            for b in src.batches():
                assert not b.data.flags.writeable
                assert not isinstance(b.data.base, bytes)  # the ring's buffer, not a copy
                got += frames_of(b)
                lengths += zip(b.caplens.tolist(), b.wirelens.tolist(), strict=True)
                batches += 1
                if len(got) >= len(sent):
                    break
        finally:
            timer.cancel()
        dropped = src.stats().dropped
    assert got == sent
    assert lengths == [(len(f), len(f)) for f in sent]
    assert batches >= 4  # ~270 KB of frames in 64 KiB blocks
    assert dropped == 0


def test_zero_copy_block_is_not_given_back_while_its_batch_is_out(
    veth: VethNs, sender: socket.socket
) -> None:
    """While the consumer holds a batch, the kernel never writes into its block: flooding the
    rest of the ring drops frames instead, and the held batch still reads as sent."""
    first = [marked_frame(i, 100) for i in range(5)]
    flood = [marked_frame(1000 + i) for i in range(300)]
    src = tiny_ring(veth, copy_blocks=False)
    try:
        it, batch = _first_batch(src, sender, first)
        assert 1 <= len(batch) <= len(first)
        for f in flood:
            sender.send(f)
        time.sleep(0.2)  # the kernel retires the other block and then has nowhere to write
        assert frames_of(batch) == first[: len(batch)]
        assert src.stats().dropped > 0
        it.close()  # the consumer stops: the block goes back, the source ends
    finally:
        src.close()  # the last batch is still referenced here: close() must not raise
    assert len(batch.data) > 0


def test_zero_copy_loses_nothing_while_the_consumer_keeps_up(
    veth: VethNs, sender: socket.socket
) -> None:
    """Ten times the tiny ring's capacity, sent in bursts the consumer reads as they come: every
    frame arrives, in order, and the kernel drops none (each block went back once read)."""
    with tiny_ring(veth, copy_blocks=False) as src:
        # each batch's frames copied out at once: its block goes back with the next one
        sent, taken = _in_bursts(src, sender, 25, 64, frames_of)
        stats = src.stats()
    got = [f for frames in taken for f in frames]
    assert got == sent
    assert stats.dropped == 0
    assert stats.received == len(sent)


def test_zero_copy_close_from_another_thread_waits_for_the_batch_out(
    veth: VethNs, sender: socket.socket
) -> None:
    """close() from another thread while a batch is being read returns at once without unmapping
    the ring under it; the batch still reads as sent, and the generator then ends."""
    sent = [marked_frame(i, 300) for i in range(10)]
    src = tiny_ring(veth, copy_blocks=False)
    try:
        it, batch = _first_batch(src, sender, sent)
        errors: list[BaseException] = []

        def close() -> None:
            try:
                src.close()
            except BaseException as e:  # pragma: no cover - what the test is there to catch
                errors.append(e)

        closer = threading.Thread(target=close)
        closer.start()
        closer.join(timeout=2.0)
        assert not closer.is_alive()
        assert not errors
        assert frames_of(batch) == sent[: len(batch)]
        assert list(it) == []  # resumed: the block goes back, the stop ends the generator
        assert int(batch.data.sum()) > 0  # released, but the view keeps the mapping: no fault
    finally:
        src.close()  # again, with the view alive: nothing raised


def test_copied_batches_outlive_their_block(veth: VethNs, sender: socket.socket) -> None:
    """By default each block is copied out and given back at once: batches kept while the tiny
    ring wraps around many times still hold the frames sent."""
    with tiny_ring(veth, copy_blocks=True) as src:
        sent, kept = _in_bursts(src, sender, 10, 80, lambda batch: batch)
    assert [f for b in kept for f in frames_of(b)] == sent
