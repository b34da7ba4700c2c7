"""Raw TCP/UDP frames for the notice tests, built with struct and numpy (a million in a second)."""

from __future__ import annotations

import ipaddress
import itertools
import struct
from collections.abc import Sequence

import numpy as np

from analyzers import AnalysisPipeline, Endpoint, EndpointKind, IdentityMap, PipelineOptions
from capture import FrameBatch

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
T0 = 1_800_000_000_000_000_000  # ns
_ETH = bytes.fromhex("0a000000000b0a000000000a0800")
# distinct IP ids: identical frames would be taken for mirrored copies and suppressed
_IP_ID = itertools.count(1)


def tcp(
    src: str, dst: str, sport: int, dport: int, flags: int, *, seq: int = 1000, ack: int = 0,
    payload: bytes = b"",
) -> bytes:  # fmt: skip
    """One Ethernet/IPv4/TCP frame."""
    tcp_h = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0)
    return _ip(src, dst, 6, tcp_h + payload)


def udp(src: str, dst: str, sport: int, dport: int, payload: bytes = b"") -> bytes:
    """One Ethernet/IPv4/UDP frame."""
    return _ip(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)


def _ip(src: str, dst: str, proto: int, l4: bytes) -> bytes:
    ip_h = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), next(_IP_ID) & 0xFFFF, 0, 64, proto, 0,
        ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed,
    )  # fmt: skip
    return _ETH + ip_h + l4


def frames_batch(frames: Sequence[bytes], ts_s: Sequence[float]) -> FrameBatch:
    """A batch of *frames* at *ts_s* seconds after T0."""
    return FrameBatch.from_frames(list(frames), [T0 + round(t * 1e9) for t in ts_s])


def spoofed_syns(n: int, dst: str, dport: int, first: int, t_s: float) -> FrameBatch:
    """*n* SYNs to dst:dport from sources first, first+1, ... (IPv4 as integers), all at t_s."""
    template = np.frombuffer(tcp("1.0.0.0", dst, 40000, dport, SYN), np.uint8)
    size = template.shape[0]
    data = np.tile(template, n).reshape(n, size)
    src = (np.arange(first, first + n, dtype=np.uint64) % (1 << 32)).astype(">u4")
    data[:, 26:30] = src.view(np.uint8).reshape(n, 4)
    data[:, 18:20] = (np.arange(n) & 0xFFFF).astype(">u2").view(np.uint8).reshape(n, 2)
    offsets = np.arange(n, dtype=np.int64) * size
    lens = np.full(n, size, np.int64)
    ts = np.full(n, T0 + round(t_s * 1e9), np.int64)
    return FrameBatch(data.reshape(-1), offsets, lens, lens.copy(), ts)


def write_pcap(path: str, frames: Sequence[bytes], ts_s: Sequence[float]) -> None:
    """A classic pcap file (microseconds, Ethernet) of *frames* at *ts_s* seconds after T0."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for t, frame in zip(ts_s, frames, strict=True):
            us = T0 // 1000 + round(t * 1e6)
            f.write(struct.pack("<IIII", us // 1_000_000, us % 1_000_000, len(frame), len(frame)))
            f.write(frame)


def scan_frames(scanner: str, victim: str, ports: range) -> list[bytes]:
    """A refused SYN scan: SYN and RST-ACK per port."""
    out: list[bytes] = []
    for port in ports:
        out += [
            tcp(scanner, victim, 50000, port, SYN),
            tcp(victim, scanner, port, 50000, RST | ACK),
        ]
    return out


def pods(names: dict[str, str]) -> IdentityMap:
    """An identity map of ``{address: "ns/pod"}``."""
    ident = IdentityMap()
    entries = []
    for addr, label in names.items():
        ns, pod = label.split("/")
        entries.append((addr, Endpoint(EndpointKind.POD, ns, pod, "node1")))
    ident.replace("test", entries)
    return ident


def pipeline(identity: IdentityMap, sink: object, **options: object) -> AnalysisPipeline:
    """A pipeline (real decoder and flow table) whose events go to *sink*."""
    opts = PipelineOptions(**options)  # type: ignore[arg-type]
    return AnalysisPipeline(identity, (), options=opts, event_sinks=[sink])  # type: ignore[list-item]
