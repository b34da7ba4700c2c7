"""Stored frames as a pcapng stream that says where and whose each packet is (or as classic pcap).

One interface per node (``if_name`` the node, ``if_description`` saying it is the node's mirror),
declared before that node's first packet, and on each packet a comment naming the pods of its
endpoints, e.g. ``src default/web-0 dst default/db-0`` (an endpoint that is no known pod is left
out; a packet with none has no comment). Who an address belongs to is the caller's
(``pod_of``): the identity map, OVSDB, a test's table.

``pcapng_chunks`` and ``pcap_chunks`` give the same stream as byte chunks for an HTTP response:
a ``None`` among the frames asks for what is buffered at once (a live stream's pause).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from capture import PcapngWriter, pcap_file_header
from exporters._pcapquery import StoredFrame

__all__ = ["pcap_chunks", "pcapng_chunks", "write_pcapng"]

PodOf = Callable[[str], str | None]
_CHUNK = 1 << 16
_PCAP_SNAPLEN = 262_144


class _Buffer(io.BytesIO):
    """A binary sink whose contents are taken in chunks."""

    @property
    def size(self) -> int:
        return self.tell()

    def take(self) -> bytes:
        out = self.getvalue()
        self.seek(0)
        self.truncate()
        return out


def pcapng_chunks(
    frames: Iterable[StoredFrame | None], *, pod_of: PodOf, chunk_bytes: int = _CHUNK
) -> Iterator[bytes]:
    """The pcapng stream of ``frames`` in chunks of about ``chunk_bytes`` (the header first)."""
    buf = _Buffer()
    writer = PcapngWriter(buf)
    interfaces: dict[tuple[str, int], int] = {}
    owners: dict[str, str | None] = {}
    yield buf.take()
    for frame in frames:
        if frame is not None:
            key = (frame.node, frame.linktype)
            interface = interfaces.get(key)
            if interface is None:
                interface = interfaces[key] = writer.add_interface(
                    frame.node,
                    f"traffic mirror of node {frame.node} (mirrorscope)",
                    linktype=frame.linktype,
                )
            writer.write_packet(
                interface,
                frame.ts_ns,
                frame.data,
                wirelen=frame.wirelen,
                comment=_comment(frame, pod_of, owners),
            )
        if buf.size and (frame is None or buf.size >= chunk_bytes):
            yield buf.take()
    if buf.size:
        yield buf.take()


def pcap_chunks(
    frames: Iterable[StoredFrame | None], *, linktype: int, chunk_bytes: int = _CHUNK
) -> Iterator[bytes]:
    """Classic nanosecond pcap of the frames of ``linktype`` (a classic file has one link type:
    frames of another are left out). No identity: pcapng carries that."""
    parts = [pcap_file_header(snaplen=_PCAP_SNAPLEN, linktype=linktype)]
    size = len(parts[0])
    for frame in frames:
        if frame is not None and frame.linktype == linktype:
            sec, nsec = divmod(frame.ts_ns, 1_000_000_000)
            parts.append(struct.pack("<IIII", sec, nsec, len(frame.data), frame.wirelen))
            parts.append(frame.data)
            size += 16 + len(frame.data)
        if parts and (frame is None or size >= chunk_bytes):
            yield b"".join(parts)
            parts, size = [], 0
    if parts:
        yield b"".join(parts)


def write_pcapng(
    frames: Iterable[StoredFrame],
    out: BinaryIO,
    *,
    pod_of: PodOf,
    flush_every: int = 0,
) -> int:
    """Write ``frames`` to ``out`` as pcapng; returns the packets written.

    ``pod_of`` maps an IP address or a MAC (``aa:bb:cc:dd:ee:ff``) to ``namespace/pod`` or None.
    ``flush_every`` > 0 flushes ``out`` after that many packets (a live stream).
    """
    written = 0

    def counted() -> Iterator[StoredFrame | None]:
        nonlocal written
        for frame in frames:
            yield frame
            written += 1
            if flush_every and written % flush_every == 0:
                yield None

    for chunk in pcapng_chunks(counted(), pod_of=pod_of):
        out.write(chunk)
        if flush_every:
            out.flush()
    out.flush()
    return written


def _comment(frame: StoredFrame, pod_of: PodOf, owners: dict[str, str | None]) -> str:
    ends = frame.endpoints()
    if ends is None:
        return ""
    words = []
    for role, endpoint in zip(("src", "dst"), ends, strict=True):
        if endpoint not in owners:
            owners[endpoint] = pod_of(endpoint)
        pod = owners[endpoint]
        if pod:
            words.append(f"{role} {pod}")
    return " ".join(words)
