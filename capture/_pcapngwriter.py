"""Writing pcapng (draft-ietf-opsawg-pcapng) to any binary stream, one block at a time.

Classic pcap cannot say where a packet was seen or whose it is; pcapng can: an Interface
Description Block per capture point (named and described), and a comment on each Enhanced Packet
Block. The writer streams: a block is written as soon as it is built, nothing is buffered here, so
it can feed a socket or a pipe as well as a file. Timestamps are nanoseconds (``if_tsresol`` 9),
little-endian throughout.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from capture._batch import LINKTYPE_ETHERNET

__all__ = ["PcapngWriter"]

_SHB = 0x0A0D0D0A
_IDB = 0x00000001
_ISB = 0x00000005
_EPB = 0x00000006
_BYTE_ORDER_MAGIC = 0x1A2B3C4D

_OPT_ENDOFOPT = 0
_OPT_COMMENT = 1
_SHB_USERAPPL = 4
_IF_NAME = 2
_IF_DESCRIPTION = 3
_IF_TSRESOL = 9
_ISB_ENDTIME = 3


def _pad(n: int) -> int:
    return (4 - n % 4) % 4


def _options(options: list[tuple[int, bytes]]) -> bytes:
    if not options:
        return b""
    parts = []
    for code, value in options:
        parts.append(struct.pack("<HH", code, len(value)))
        parts.append(value)
        parts.append(b"\0" * _pad(len(value)))
    parts.append(struct.pack("<HH", _OPT_ENDOFOPT, 0))
    return b"".join(parts)


def _block(block_type: int, body: bytes) -> bytes:
    total = 12 + len(body)  # type, two lengths; every body here is already 32-bit aligned
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


class PcapngWriter:
    """One pcapng section written to ``out`` (which the caller owns and closes).

    Interfaces are added as they are needed (``add_interface`` returns the id packets name), so
    a stream merged from several capture points can declare each one just before its first packet.
    """

    def __init__(
        self, out: BinaryIO, *, application: str = "mirrorscope", comment: str = ""
    ) -> None:
        """``comment`` becomes the section's ``opt_comment`` (Wireshark's capture comment)."""
        self._out = out
        self.interfaces = 0
        self.packets_written = 0
        body = struct.pack("<IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1)  # -1: section length unknown
        opts = [(_SHB_USERAPPL, application.encode())]
        if comment:
            opts.append((_OPT_COMMENT, comment.encode()))
        body += _options(opts)
        self._out.write(_block(_SHB, body))

    def add_interface(
        self,
        name: str,
        description: str = "",
        *,
        linktype: int = LINKTYPE_ETHERNET,
        snaplen: int = 0,
    ) -> int:
        """Declare an interface (``if_name``, ``if_description``); returns its id for packets."""
        opts = [(_IF_NAME, name.encode())]
        if description:
            opts.append((_IF_DESCRIPTION, description.encode()))
        opts.append((_IF_TSRESOL, bytes([9])))
        body = struct.pack("<HHI", linktype, 0, snaplen) + _options(opts)
        self._out.write(_block(_IDB, body))
        self.interfaces += 1
        return self.interfaces - 1

    def write_packet(
        self,
        interface: int,
        ts_ns: int,
        data: bytes,
        *,
        wirelen: int | None = None,
        comment: str = "",
    ) -> None:
        """One Enhanced Packet Block; ``comment`` becomes its ``opt_comment`` when non-empty."""
        if not 0 <= interface < self.interfaces:
            raise ValueError(f"interface {interface} was not added (add_interface first)")
        ts = ts_ns  # in if_tsresol units, which are nanoseconds
        cap = len(data)
        wire = cap if wirelen is None else max(wirelen, cap)
        body = struct.pack("<IIIII", interface, ts >> 32, ts & 0xFFFF_FFFF, cap, wire)
        body += data + b"\0" * _pad(cap)
        if comment:
            body += _options([(_OPT_COMMENT, comment.encode())])
        self._out.write(_block(_EPB, body))
        self.packets_written += 1

    def write_statistics(self, interface: int, ts_ns: int, comment: str) -> None:
        """An Interface Statistics Block: the end of ``interface``'s capture at ``ts_ns``, with a
        comment saying why (e.g. the node stopped answering)."""
        if not 0 <= interface < self.interfaces:
            raise ValueError(f"interface {interface} was not added (add_interface first)")
        opts = [(_ISB_ENDTIME, struct.pack("<II", ts_ns >> 32, ts_ns & 0xFFFF_FFFF))]
        if comment:
            opts.append((_OPT_COMMENT, comment.encode()))
        body = struct.pack("<III", interface, ts_ns >> 32, ts_ns & 0xFFFF_FFFF) + _options(opts)
        self._out.write(_block(_ISB, body))

    def flush(self) -> None:
        """Flush the stream (a live follower sees the packets written so far)."""
        self._out.flush()
