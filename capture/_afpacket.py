"""Live capture from a network interface through an AF_PACKET TPACKET_V3 mmap ring.

The kernel fills whole blocks of the ring with frames and hands each block over when it is full
or its timeout expires. Each block becomes one ``FrameBatch`` whose frame columns ``_ringblock``
reads by one compiled walk of the ``tp_next_offset`` chain. By default the block's used bytes are
copied out with a single slice and the block is given back to the kernel at once, so a batch may
be kept. With ``copy_blocks=False`` the batch views the ring itself, as libpcap's TPACKET_V3 loop
does: the block goes back to the kernel only when the consumer asks for the next batch or stops,
so a consumer must be done with a batch's ``data`` by then (``BatchSink``'s contract).

Setup order matters for the filter: the socket is created with protocol 0, so it receives
nothing; the BPF filter is attached and the ring mapped; only then does ``bind`` to ETH_P_ALL on
the interface start the flow of frames, all of which have passed the filter.
"""

from __future__ import annotations

import contextlib
import errno as errno_mod
import fcntl
import logging
import mmap
import os
import re
import select
import socket
import struct
import threading
import time
from collections.abc import Iterator

from capture import _ringblock as rb
from capture import _ringlayout as rl
from capture._batch import FrameBatch
from capture._bpf import BpfProgram, attach_filter, compile_filter
from capture._coalesce import Coalescer
from capture._errors import CaptureError
from capture._netns import socket_in_netns
from capture._packeterrors import capture_failed, open_error
from capture._protocols import SourceStats

__all__ = [
    "FANOUT_CPU",
    "FANOUT_FLAG_DEFRAG",
    "FANOUT_HASH",
    "FANOUT_LB",
    "AfPacketSource",
]

_log = logging.getLogger(__name__)

FANOUT_HASH = rl.PACKET_FANOUT_HASH
FANOUT_LB = rl.PACKET_FANOUT_LB
FANOUT_CPU = rl.PACKET_FANOUT_CPU
FANOUT_FLAG_DEFRAG = rl.PACKET_FANOUT_FLAG_DEFRAG

_STATS_EVERY_S = 0.5


class AfPacketSource:
    """Frames arriving on ``iface`` (in network namespace ``netns``), one batch per ring block.

    ``fanout=(group_id, mode)`` joins a PACKET_FANOUT group so several processes share the
    interface; ``mode`` is ``FANOUT_HASH`` (optionally ``| FANOUT_FLAG_DEFRAG``) for
    flow-consistent, direction-symmetric spreading. ``bpf`` is a tcpdump expression.
    ``copy_blocks=False`` hands out batches that view the ring block (no copy): each is valid
    only until the next one is asked for or the iteration ends. ``walker`` walks each block's
    frames (``BlockWalker``; capture's own by default). ``coalesce_ms`` > 0 waits that long after
    a wake-up for more blocks before handing them out (``_coalesce``: fewer cold starts).
    """

    def __init__(
        self,
        iface: str,
        *,
        netns: str | None = None,
        block_size: int = rb.DEFAULT_BLOCK_SIZE,
        block_count: int = rb.DEFAULT_BLOCK_COUNT,
        frame_size: int = rb.DEFAULT_FRAME_SIZE,
        snaplen: int = rb.DEFAULT_SNAPLEN,
        promisc: bool = True,
        bpf: str | None = None,
        fanout: tuple[int, int] | None = None,
        block_timeout_ms: int = rb.DEFAULT_BLOCK_TIMEOUT_MS,
        copy_blocks: bool = True,
        walker: rb.BlockWalker | None = None,
        coalesce_ms: int = 0,
    ) -> None:
        rb.check_geometry(block_size, block_count, frame_size, snaplen, block_timeout_ms)
        self.iface = iface
        self.netns = netns
        self.block_size = block_size
        self.block_count = block_count
        self.snaplen = snaplen
        self.copy_blocks = copy_blocks
        self._walker = walker
        self.where = iface if netns is None else f"{iface} in netns {netns}"
        if bpf is not None and re.search(r"\bvlan\b", bpf):
            # libpcap's offline code looks for the tag in the frame, but the kernel has moved it
            # to skb metadata before the socket filter runs: the filter would silently drop
            # every tagged frame.
            raise CaptureError(
                f"invalid capture filter {bpf!r}: 'vlan' cannot be used in a live filter here "
                "(the kernel strips the tag before filtering); filter on the inner headers, "
                "tagged frames still arrive with their tag",
                source=bpf,
            )
        # Compile first: a bad expression fails before any socket exists.
        program = compile_filter(bpf, snaplen=snaplen)

        self._lock = threading.RLock()  # guards _busy/_released; re-entrant for signal handlers
        self._stats_lock = threading.Lock()
        self._busy = False
        self._released = False
        self._stopping = False
        self._close_requested = False
        self._received = 0
        self._dropped = 0
        self._freezes = 0
        self.blocks_read = 0
        self.link_down_events = 0  # times the interface went down under the socket (and came back)
        #: Frames dropped because they reached this socket before it joined its fanout group.
        self.pre_join_discarded = 0
        self._joined_ns = 0

        try:
            self._sock = socket_in_netns(netns, socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError as e:
            raise CaptureError(
                f"cannot open a packet socket for {self.where}: {e.strerror} "
                "(live capture needs root or CAP_NET_RAW)",
                source=iface,
                errno=e.errno,
            ) from e
        except OSError as e:
            raise open_error(e, f"cannot open a packet socket for {self.where}", iface) from e
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._coalescer = Coalescer(self._wake_r, coalesce_ms, block_count)
        self._ring: mmap.mmap | None = None
        try:
            self._setup(program, promisc, fanout, block_timeout_ms, frame_size)
        except BaseException:
            self._release()
            raise

    def _setup(
        self,
        program: BpfProgram,
        promisc: bool,
        fanout: tuple[int, int] | None,
        block_timeout_ms: int,
        frame_size: int,
    ) -> None:
        sock = self._sock
        attach_filter(sock, program)
        step = "set up the TPACKET_V3 ring"
        try:
            sock.setsockopt(rl.SOL_PACKET, rl.PACKET_VERSION, rl.TPACKET_V3)
            frames_per_block = self.block_size // frame_size
            req = rl.TPACKET_REQ3.pack(
                self.block_size,
                self.block_count,
                frame_size,
                frames_per_block * self.block_count,
                block_timeout_ms,
                0,
                0,
            )
            sock.setsockopt(rl.SOL_PACKET, rl.PACKET_RX_RING, req)
            self._ring = mmap.mmap(
                sock.fileno(),
                self.block_size * self.block_count,
                mmap.MAP_SHARED,
                mmap.PROT_READ | mmap.PROT_WRITE,
            )
            step = f"bind to interface {self.iface!r}"
            sock.bind((self.iface, rl.ETH_P_ALL))
            hatype = sock.getsockname()[3]
            if hatype not in (rl.ARPHRD_ETHER, rl.ARPHRD_LOOPBACK):
                # Frames are labelled Ethernet and the filter compiled for Ethernet.
                raise CaptureError(
                    f"cannot capture on {self.where}: link type ARPHRD {hatype} is not "
                    "Ethernet (mirror NICs are Ethernet; use a pcap file for other links)",
                    source=self.iface,
                )
            ifreq = fcntl.ioctl(
                sock.fileno(), rl.SIOCGIFINDEX, struct.pack("16si20x", self.iface.encode(), 0)
            )
            ifindex = struct.unpack_from("i", ifreq, 16)[0]
            if promisc:
                step = "enable promiscuous mode"
                mreq = rl.PACKET_MREQ.pack(ifindex, rl.PACKET_MR_PROMISC, 0, b"")
                sock.setsockopt(rl.SOL_PACKET, rl.PACKET_ADD_MEMBERSHIP, mreq)
            if fanout is not None:
                group, mode = fanout
                step = f"join fanout group {group} (mode 0x{mode:x})"
                # Packed as unsigned: with FANOUT_FLAG_DEFRAG (0x8000) the mode half sets bit 31,
                # which the int form of setsockopt rejects as out of range for a C int.
                arg = struct.pack("=I", (group & 0xFFFF) | ((mode & 0xFFFF) << 16))
                sock.setsockopt(rl.SOL_PACKET, rl.PACKET_FANOUT, arg)
                # Until the join, this socket saw every frame, not just its share: those frames
                # (stamped earlier, on the same CLOCK_REALTIME) are dropped from the first blocks
                # so no frame is counted by two workers.
                self._joined_ns = time.time_ns()
        except OSError as e:
            raise open_error(e, f"cannot {step} for {self.where}", self.iface) from e
        self._poller = select.poll()
        self._poller.register(sock.fileno(), select.POLLIN | select.POLLERR)
        self._poller.register(self._wake_r, select.POLLIN)
        self._timeout_ms = max(block_timeout_ms, 1) * 5
        _log.info(
            "capturing on %s: ring %d x %d KiB, snaplen %d, filter %r, fanout %s",
            self.where,
            self.block_count,
            self.block_size >> 10,
            self.snaplen,
            program.expression,
            fanout,
        )

    # --- FrameSource ---------------------------------------------------------------------------

    def batches(self) -> Iterator[FrameBatch]:
        """Yield one batch per filled ring block until ``stop()`` or ``close()``."""
        with self._lock:
            if self._released:
                return
            self._busy = True
        try:
            yield from self._run()
        finally:
            with self._lock:
                self._busy = False
                if self._close_requested:
                    self._release()

    def _run(self) -> Iterator[FrameBatch]:
        ring = self._ring
        if ring is None:
            return
        block_size = self.block_size
        block_count = self.block_count
        copy = self.copy_blocks
        walker = self._walker
        index = 0
        stats_due = 0.0
        clock = time.monotonic
        # blocks held back by coalescing still go out after stop(): the ones filled by then
        after_stop = block_count if self._coalescer.delay_s > 0 else 0
        while not self._stopping or after_stop > 0:
            base = index * block_size
            if rb.filled(ring, base):
                if self._stopping:
                    after_stop -= 1
                batch = rb.take_block(ring, base, self.block_size, copy=copy, walker=walker)
                index = index + 1 if index + 1 < block_count else 0
                self.blocks_read += 1
                now = clock()
                if now >= stats_due:
                    self._poll_kernel_stats()
                    stats_due = now + _STATS_EVERY_S
                if batch is not None and self._joined_ns:
                    batch = self._without_pre_join_frames(batch)
                if not copy:
                    # The batch views the block until the consumer asks for the next one or
                    # stops; the source stays busy meanwhile, so a close() from another thread
                    # cannot unmap the ring under it (the release waits for this generator).
                    try:
                        if batch is not None:
                            yield batch
                    finally:
                        rb.give_back(ring, base)
                    continue
                if batch is None:
                    continue
                with self._lock:
                    self._busy = False
                yield batch
                with self._lock:
                    if self._released:
                        return
                    self._busy = True
                continue
            if self._stopping:
                return
            self._poll_kernel_stats()
            stats_due = clock() + _STATS_EVERY_S
            for fd, events in self._poller.poll(self._timeout_ms):
                if fd == self._wake_r:  # stop() wrote it: the loop's test ends the loop
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                elif events & select.POLLERR:
                    self._raise_socket_error()
            if not self._stopping and rb.filled(ring, base):
                self._coalescer.wait(ring, index, block_size)  # for more blocks: fewer wake-ups

    def _without_pre_join_frames(self, batch: FrameBatch) -> FrameBatch | None:
        keep = batch.ts_ns >= self._joined_ns
        if keep.all():
            self._joined_ns = 0  # frames come in time order: the pre-join ones are gone
            return batch
        self.pre_join_discarded += int(len(batch) - keep.sum())
        if not keep.any():
            return None
        return FrameBatch(
            data=batch.data,
            offsets=batch.offsets[keep],
            caplens=batch.caplens[keep],
            wirelens=batch.wirelens[keep],
            ts_ns=batch.ts_ns[keep],
            linktype=batch.linktype,
        )

    def stats(self) -> SourceStats:
        """Totals since open: frames delivered to the ring (less any seen before joining the
        fanout group), dropped by the kernel (ring full), and how often the ring froze. Reads
        PACKET_STATISTICS first (it resets on read)."""
        self._poll_kernel_stats()
        with self._stats_lock:
            return SourceStats(
                received=self._received - self.pre_join_discarded,
                dropped=self._dropped,
                freeze_count=self._freezes,
            )

    def stop(self) -> None:
        """Make ``batches()`` return soon. Safe from another thread or a signal handler."""
        self._stopping = True
        if not self._released:  # after release the descriptor number may belong to another file
            with contextlib.suppress(OSError):  # pipe full: a wake-up is already pending
                os.write(self._wake_w, b"\0")

    def close(self) -> None:
        """Stop and release the ring and socket (deferred to the end of a running iteration)."""
        self.stop()
        with self._lock:
            self._close_requested = True
            if not self._busy:
                self._release()

    def __enter__(self) -> AfPacketSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _poll_kernel_stats(self) -> None:
        with self._stats_lock:
            if self._released:
                return
            try:
                raw = self._sock.getsockopt(
                    rl.SOL_PACKET, rl.PACKET_STATISTICS, rl.TPACKET_STATS_V3.size
                )
            except OSError as e:
                _log.warning("cannot read PACKET_STATISTICS on %s: %s", self.where, e)
                return
            packets, drops, freezes = rl.TPACKET_STATS_V3.unpack(raw)
            # The kernel zeroes its counters on each read and reports tp_packets with the
            # drops included: accumulate, and count delivered frames without them.
            self._received += packets - drops
            self._dropped += drops
            self._freezes += freezes

    def _raise_socket_error(self) -> None:
        code = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code == 0:
            return
        if code == errno_mod.ENETDOWN:
            # The link went down (OVS reconfiguring its internal port, the keeper or an operator
            # bouncing it): the socket stays bound and frames flow again once it is up. Reading
            # SO_ERROR cleared the error; keep polling. A removed interface (ENXIO/ENODEV) ends.
            self.link_down_events += 1
            _log.warning("%s went down; capturing again when it comes back up", self.where)
            return
        raise capture_failed(code, self.where, self.iface)

    def _release(self) -> None:
        if self._released:
            return
        self._poll_kernel_stats()
        with self._stats_lock:
            self._released = True
        ring, self._ring = self._ring, None
        if ring is not None:
            try:
                ring.close()
            except BufferError:
                # A batch that views the ring is still referenced (the consumer's last one):
                # unmapping now would pull the pages from under it. The mapping goes with the
                # last view; the socket stays open in the kernel until then (the mapping holds
                # it), but no frame is read from it any more.
                _log.debug("ring of %s still viewed; unmapped with its last view", self.where)
        self._sock.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
