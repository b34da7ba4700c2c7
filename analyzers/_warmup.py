"""Load every compiled kernel of the per-packet path before the first packet arrives.

numba loads a kernel's machine code from its disk cache (or compiles it, the first time after an
install) when the kernel is first called. A live service that left that to its first packets
would stall for 0.3-1 s (20-30 s after an install) with its ring filling at line rate, and
drop; so the service runs this first, before it says it is capturing: a private pipeline, with
the service's options, takes a few synthetic frames laid out as ring blocks, as the ring source
hands them over (a TCP connection, UDP, DNS, ICMP echo, IPv6, a VLAN tag the kernel took out),
twice, so that the known flows' path runs too, then a SYN that reopens the closed connection (a
flow's end inside a batch), then ends its flows.
"""

from __future__ import annotations

import logging
import struct
import time

import numpy as np

from analyzers._identity import IdentityMap
from analyzers._pipeline import AnalysisPipeline, PipelineOptions
from capture import TP_STATUS_VLAN_VALID, block_to_batch, lay_out_block

__all__ = ["warm_up"]

log = logging.getLogger(__name__)

_T0 = 1_000_000_000_000_000_000  # ns: any time; the private pipeline is thrown away
_MACS = bytes.fromhex("0200000000020200000000010800")  # dst, src, IPv4
_MACS6 = _MACS[:12] + b"\x86\xdd"
_C, _S = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
_FIN, _SYN, _PSH, _ACK = 0x01, 0x02, 0x08, 0x10
_TCP, _UDP, _ICMP = 6, 17, 1


def _ip4(src: bytes, dst: bytes, proto: int, l4: bytes) -> bytes:
    return (
        _MACS
        + struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(l4), 1, 0x4000, 64, proto, 0)
        + (src + dst + l4)
    )


def _tcp(
    src: bytes, dst: bytes, ports: tuple[int, int], seq_ack: tuple[int, int], flags: int
) -> bytes:
    payload = b"x" * 20 if flags & _PSH else b""
    hdr = struct.pack("!HHIIBBHHH", *ports, *seq_ack, 5 << 4, flags, 65535, 0, 0)
    return _ip4(src, dst, _TCP, hdr + payload)


def _udp(src: bytes, dst: bytes, ports: tuple[int, int], payload: bytes) -> bytes:
    return _ip4(src, dst, _UDP, struct.pack("!HHHH", *ports, 8 + len(payload), 0) + payload)


_QUESTION = b"\x07example\x03com\x00\x00\x01\x00\x01"
_QUERY = struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0) + _QUESTION
_ANSWER = struct.pack("!HHHHHH", 7, 0x8180, 1, 1, 0, 0) + _QUESTION
_ANSWER += struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + bytes([192, 0, 2, 1])


def _frames(part: int) -> list[bytes]:
    """The synthetic traffic's frames of block *part* (0, 1): a connection's two halves, and
    the datagrams of each kind in both."""
    if part == 0:
        tcp = [
            _tcp(_C, _S, (40000, 80), (100, 0), _SYN),
            _tcp(_S, _C, (80, 40000), (500, 101), _SYN | _ACK),
            _tcp(_C, _S, (40000, 80), (101, 501), _ACK),
            _tcp(_C, _S, (40000, 80), (101, 501), _PSH | _ACK),
        ]
    else:
        tcp = [
            _tcp(_S, _C, (80, 40000), (501, 121), _PSH | _ACK),
            _tcp(_C, _S, (40000, 80), (121, 521), _FIN | _ACK),
            _tcp(_S, _C, (80, 40000), (521, 122), _FIN | _ACK),
            _tcp(_C, _S, (40000, 80), (122, 522), _ACK),
        ]
    icmp = struct.pack("!BBHHH", 8, 0, 0, 1, part) + b"ping"
    v6 = struct.pack("!HHHH", 5000, 9000, 12, 0) + b"v6v6"
    return [
        *tcp,
        _udp(_C, _S, (41000, 9000), b"datagram"),
        _udp(_S, _C, (9000, 41000), b"datagram"),
        _udp(_C, _S, (42000 + part, 53), _QUERY),
        _udp(_S, _C, (53, 42000 + part), _ANSWER),
        _ip4(_C, _S, _ICMP, icmp),
        _MACS6
        + struct.pack("!IHBB", 6 << 28, len(v6), _UDP, 64)
        + bytes(15)
        + b"\x01"
        + bytes(15)
        + b"\x02"
        + v6,
    ]


def warm_up(options: PipelineOptions) -> float:
    """Run the synthetic traffic through a private pipeline with *options*; return the seconds
    it took (the kernels' load, or their compile)."""
    start = time.monotonic()
    pipeline = AnalysisPipeline(IdentityMap(), options=options)
    for part in range(4):
        # the fourth block: a SYN on the closed connection, whose flow ends at it (in-batch ends)
        frames = _frames(min(part, 1)) if part < 3 else [_tcp(_C, _S, (40000, 80), (900, 0), _SYN)]
        # the third block: a tag the kernel took out (802.1Q, VLAN 7)
        tag = (TP_STATUS_VLAN_VALID, 7, 0) if part == 2 else (0, 0, 0)
        laid = [(f, len(f), _T0 + part * 1_000_000 + i * 1000, *tag) for i, f in enumerate(frames)]
        block, first = lay_out_block(laid)
        data = np.frombuffer(block, np.uint8)  # read-only, as a ring block's batch is
        pipeline.on_batch(block_to_batch(data, len(frames), first, pipeline.walker.walk_block))
    pipeline.tick(_T0 + 10**12)
    pipeline.flush()
    took = time.monotonic() - start
    log.info("analysis kernels loaded in %.2f s", took)
    return took
