"""Reading pcapng from a byte stream (an HTTP body, a pipe) one packet at a time.

The file reader (``_pcapng``) walks a whole mapped file into numpy batches; a stream cannot be
mapped and a merge wants one packet at a time with what the file says about it: the name and
description of its interface (a mirrorscope download names the node there) and its comment (the
pods). Only whole blocks are read, exactly as long as each says it is, so a live stream's packet
is handed on as soon as its block has arrived. Memory is one block.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from capture._errors import CaptureError
from capture._pcapng import BYTE_ORDER_MAGIC, EPB, IDB, OPB, SHB, SPB

__all__ = ["StreamInterface", "StreamPacket", "read_pcapng_stream"]

_OPT_COMMENT = 1
_IF_NAME = 2
_IF_DESCRIPTION = 3
_IF_TSRESOL = 9
_IF_TSOFFSET = 14
_MAX_BLOCK = 16 << 20  # far above any snap length: a larger claim is damage, not a packet

Read = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class StreamInterface:
    """An interface as its Interface Description Block describes it."""

    name: str
    description: str
    linktype: int
    resol_base: int = 10
    resol_exp: int = 6  # pcapng's default: microseconds
    tsoffset_s: int = 0

    def to_ns(self, ticks: int) -> int:
        """Timestamp ticks in this interface's resolution as nanoseconds since the epoch."""
        if self.resol_base == 10:
            e = self.resol_exp
            ns: int = ticks * 10 ** (9 - e) if e <= 9 else ticks // 10 ** (e - 9)
        else:
            ns = (ticks * 1_000_000_000) >> self.resol_exp
        return ns + self.tsoffset_s * 1_000_000_000


@dataclass(frozen=True, slots=True)
class StreamPacket:
    """One packet with its interface and comment (``""`` when it has none)."""

    ts_ns: int
    data: bytes
    wirelen: int
    interface: StreamInterface
    comment: str


def read_pcapng_stream(read: Read, *, source: str = "") -> Iterator[StreamPacket]:
    """The packets of the pcapng stream ``read(n)`` returns (fewer bytes than asked only at its
    end). Ends cleanly at the end of the stream between blocks; raises ``CaptureError`` naming
    ``source`` when the stream ends inside a block or a block is damaged."""
    endian = "<"
    interfaces: list[StreamInterface] = []
    first = True
    while True:
        head = _exactly(read, 8, source, allow_end=True)
        if not head:
            return
        if struct.unpack("<I", head[:4])[0] == SHB:  # the same bytes in either order
            endian = _shb_endian(read, source)
            blen = struct.unpack(endian + "I", head[4:])[0]
            _check(blen, 28, source, "section header block")
            _exactly(read, blen - 12, source)  # options, trailing length (already past magic)
            interfaces.clear()
            first = False
            continue
        if first:
            raise CaptureError(f"{source}: not a pcapng stream (no section header)", source=source)
        btype, blen = struct.unpack(endian + "II", head)
        _check(blen, 12, source, f"block of type 0x{btype:08x}")
        body = _exactly(read, blen - 8, source)[:-4]
        if btype == IDB:
            interfaces.append(_interface(body, endian, source))
        elif btype in (EPB, OPB):
            yield _packet(btype, body, endian, interfaces, source)
        elif btype == SPB:
            if not interfaces:
                raise CaptureError(f"{source}: simple packet before any interface", source=source)
            (wire,) = struct.unpack_from(endian + "I", body)
            yield StreamPacket(0, body[4 : 4 + min(wire, len(body) - 4)], wire, interfaces[0], "")


def _exactly(read: Read, n: int, source: str, *, allow_end: bool = False) -> bytes:
    parts = []
    got = 0
    while got < n:
        chunk = read(n - got)
        if not chunk:
            if allow_end and got == 0:
                return b""
            raise CaptureError(
                f"{source}: the stream ended inside a pcapng block ({got} of {n} bytes)",
                source=source,
            )
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _shb_endian(read: Read, source: str) -> str:
    magic = _exactly(read, 4, source)
    for endian in ("<", ">"):
        if struct.unpack(endian + "I", magic)[0] == BYTE_ORDER_MAGIC:
            return endian
    raise CaptureError(f"{source}: section header without a valid byte-order magic", source=source)


def _check(blen: int, minimum: int, source: str, what: str) -> None:
    if blen < minimum or blen & 3 or blen > _MAX_BLOCK:
        raise CaptureError(
            f"{source}: {what} claims {blen} bytes (a multiple of 4, {minimum} to {_MAX_BLOCK})",
            source=source,
        )


def _options(raw: bytes, endian: str) -> Iterator[tuple[int, bytes]]:
    pos = 0
    while pos + 4 <= len(raw):
        code, length = struct.unpack_from(endian + "HH", raw, pos)
        if code == 0:
            return
        yield code, raw[pos + 4 : pos + 4 + length]
        pos += 4 + ((length + 3) & ~3)


def _interface(body: bytes, endian: str, source: str) -> StreamInterface:
    if len(body) < 8:
        raise CaptureError(f"{source}: interface description block too short", source=source)
    linktype, _reserved, _snaplen = struct.unpack_from(endian + "HHI", body)
    name = description = ""
    base, exp, offset = 10, 6, 0
    for code, value in _options(body[8:], endian):
        if code == _IF_NAME:
            name = value.decode(errors="replace").rstrip("\0")
        elif code == _IF_DESCRIPTION:
            description = value.decode(errors="replace").rstrip("\0")
        elif code == _IF_TSRESOL and value:
            base, exp = (2 if value[0] & 0x80 else 10), value[0] & 0x7F
        elif code == _IF_TSOFFSET and len(value) >= 8:
            (offset,) = struct.unpack_from(endian + "q", value)
    return StreamInterface(name, description, linktype, base, exp, offset)


def _packet(
    btype: int, body: bytes, endian: str, interfaces: list[StreamInterface], source: str
) -> StreamPacket:
    if len(body) < 20:
        raise CaptureError(f"{source}: packet block too short", source=source)
    if btype == EPB:
        iface, hi, lo, cap, wire = struct.unpack_from(endian + "IIIII", body)
    else:  # the obsolete packet block: a 16-bit interface and a drops count
        iface, _drops, hi, lo, cap, wire = struct.unpack_from(endian + "HHIIII", body)
    if iface >= len(interfaces):
        raise CaptureError(f"{source}: packet names undescribed interface {iface}", source=source)
    if cap > len(body) - 20:
        raise CaptureError(f"{source}: packet claims {cap} bytes past its block", source=source)
    comment = ""
    for code, value in _options(body[20 + ((cap + 3) & ~3) :], endian):
        if code == _OPT_COMMENT:
            comment = value.decode(errors="replace")
            break
    info = interfaces[iface]
    return StreamPacket(info.to_ns((hi << 32) | lo), body[20 : 20 + cap], wire, info, comment)
