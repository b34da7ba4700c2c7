"""Stored frames as a pcapng stream that says where and whose each packet is.

One interface per node (``if_name`` the node, ``if_description`` saying it is the node's mirror),
declared before that node's first packet, and on each packet a comment naming the pods of its
endpoints, e.g. ``src default/web-0 dst default/db-0`` (an endpoint that is no known pod is left
out; a packet with none has no comment). Who an address belongs to is the caller's
(``pod_of``): the identity map, OVSDB, a test's table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import BinaryIO

from capture import PcapngWriter
from exporters._pcapquery import StoredFrame

__all__ = ["write_pcapng"]


def write_pcapng(
    frames: Iterable[StoredFrame],
    out: BinaryIO,
    *,
    pod_of: Callable[[str], str | None],
    flush_every: int = 0,
) -> int:
    """Write ``frames`` to ``out`` as pcapng; returns the packets written.

    ``pod_of`` maps an IP address or a MAC (``aa:bb:cc:dd:ee:ff``) to ``namespace/pod`` or None.
    ``flush_every`` > 0 flushes ``out`` after that many packets (a live stream).
    """
    writer = PcapngWriter(out)
    interfaces: dict[tuple[str, int], int] = {}
    owners: dict[str, str | None] = {}
    written = 0
    for frame in frames:
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
        written += 1
        if flush_every and written % flush_every == 0:
            writer.flush()
    writer.flush()
    return written


def _comment(
    frame: StoredFrame, pod_of: Callable[[str], str | None], owners: dict[str, str | None]
) -> str:
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
