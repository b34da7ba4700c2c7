"""Walking the blocks of a pcapng file (draft-ietf-opsawg-pcapng) into frame batches.

Sections (SHB) may change byte order; each section has its own interfaces (IDB) with their own
link type, snap length and timestamp resolution (``if_tsresol``, decimal or power of two) and
offset (``if_tsoffset``). Packets come from Enhanced, Simple and obsolete Packet Blocks; every
other block type is skipped by its length. A batch holds one link type: it is cut where the
link type changes. Frame bytes stay in the caller's buffer; only block headers are read here.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from capture._batch import FrameBatch

SHB = 0x0A0D0D0A
IDB = 0x00000001
OPB = 0x00000002
SPB = 0x00000003
EPB = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D

OPT_ENDOFOPT = 0
OPT_IF_TSRESOL = 9
OPT_IF_TSOFFSET = 14

_NS_PER_S = 1_000_000_000


class _Interface:
    """What an IDB says about the packets that name it."""

    __slots__ = ("linktype", "resol_base", "resol_exp", "snaplen", "tsoffset_s")

    def __init__(self, linktype: int, snaplen: int) -> None:
        self.linktype = linktype
        self.snaplen = snaplen
        self.resol_base = 10
        self.resol_exp = 6  # the default when if_tsresol is absent: microseconds
        self.tsoffset_s = 0

    def to_ns(self, ticks: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
        """Timestamps in this interface's units to nanoseconds since the epoch (wrapping on
        values no real capture has, never raising)."""
        e = self.resol_exp
        if self.resol_base == 10:
            if e <= 9:
                ns = ticks.astype(np.int64) * np.int64(10 ** (9 - e))
            elif e - 9 <= 19:
                ns = (ticks // np.uint64(10 ** (e - 9))).astype(np.int64)
            else:
                ns = np.zeros(ticks.shape, dtype=np.int64)
        else:
            sec = ticks >> np.uint64(e) if e < 64 else np.zeros_like(ticks)
            frac = ticks & np.uint64((1 << e) - 1) if e < 64 else ticks
            # frac * 1e9 must fit 64 bits: keep at most 34 fractional bits (sub-ns precision).
            k = e
            if k > 34:
                frac = frac >> np.uint64(k - 34) if k - 34 < 64 else np.zeros_like(frac)
                k = 34
            ns_frac = (frac * np.uint64(_NS_PER_S)) >> np.uint64(k)
            ns = (sec * np.uint64(_NS_PER_S) + ns_frac).astype(np.int64)
        if self.tsoffset_s:
            ns = ns + np.int64(self.tsoffset_s * _NS_PER_S)
        return ns


class BlockDamageError(Exception):
    """The file is damaged at ``offset``; the reader turns this into its CaptureError."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(reason)
        self.offset = offset
        self.reason = reason


def _parse_idb(buf: bytes | mmap.mmap, pos: int, blen: int, endian: str) -> _Interface:
    if blen < 20:
        raise BlockDamageError(pos, f"interface description block of {blen} bytes (minimum 20)")
    linktype, _reserved, snaplen = struct.unpack_from(endian + "HHI", buf, pos + 8)
    iface = _Interface(linktype, snaplen)
    opt = pos + 16
    opt_end = pos + blen - 4
    opt_hdr = struct.Struct(endian + "HH").unpack_from
    while opt + 4 <= opt_end:
        code, length = opt_hdr(buf, opt)
        if code == OPT_ENDOFOPT:
            break
        value = opt + 4
        if value + length > opt_end:
            raise BlockDamageError(
                opt, f"interface option {code} of {length} bytes overruns its block"
            )
        if code == OPT_IF_TSRESOL and length >= 1:
            resol = buf[value]
            iface.resol_base = 2 if resol & 0x80 else 10
            iface.resol_exp = resol & 0x7F
        elif code == OPT_IF_TSOFFSET and length >= 8:
            iface.tsoffset_s = struct.unpack_from(endian + "q", buf, value)[0]
        opt = value + ((length + 3) & ~3)
    return iface


def _section_endian(buf: bytes | mmap.mmap, pos: int) -> str:
    if len(buf) - pos < 28:
        raise BlockDamageError(pos, "truncated section header block")
    for endian in ("<", ">"):
        if struct.unpack_from(endian + "I", buf, pos + 8)[0] == BYTE_ORDER_MAGIC:
            return endian
    raise BlockDamageError(pos, "section header block without a valid byte-order magic")


def walk(
    buf: bytes | mmap.mmap, data: npt.NDArray[np.uint8], batch_size: int
) -> Iterator[FrameBatch]:
    """Yield the frames of a pcapng file; on damage, yield what precedes it, then raise
    ``BlockDamageError``.

    Runs of Enhanced Packet Blocks (nearly every block of a real capture) take a fast path that
    only chains block lengths in Python and checks the rest with numpy. It stops short of
    anything unusual (another block type, a damaged block, a change of link type), which the
    general block walker then handles, one block or more, before the fast path resumes.
    """
    end = len(buf)
    pos = 0
    endian = "<"
    ifaces: list[_Interface] = []
    while pos < end:
        got = _Packets()
        damage: BlockDamageError | None = None
        try:
            pos, endian = _walk_blocks(
                buf, pos, end=end, endian=endian, ifaces=ifaces, batch_size=batch_size, got=got
            )
        except BlockDamageError as d:
            damage = d
        if got.offsets:
            ids = np.array(got.iface_ids, dtype=np.int64)
            yield FrameBatch(
                data=data,
                offsets=np.array(got.offsets, dtype=np.int64),
                caplens=np.array(got.caplens, dtype=np.int64),
                wirelens=np.array(got.wirelens, dtype=np.int64),
                ts_ns=_timestamps(ifaces, ids, np.array(got.ticks, dtype=np.uint64)),
                linktype=got.linktype,
            )
        if damage is not None:
            raise damage
        while pos < end:
            batch, pos = _epb_run(
                buf, data, pos, end=end, endian=endian, ifaces=ifaces, batch_size=batch_size
            )
            if batch is None:
                break
            yield batch


def _timestamps(
    ifaces: list[_Interface], ids: npt.NDArray[np.int64], ticks: npt.NDArray[np.uint64]
) -> npt.NDArray[np.int64]:
    first = int(ids[0])
    if (ids == first).all():
        return ifaces[first].to_ns(ticks)
    ts_ns = np.empty(len(ticks), dtype=np.int64)
    for i in np.unique(ids).tolist():
        mask = ids == i
        ts_ns[mask] = ifaces[i].to_ns(ticks[mask])
    return ts_ns


def _epb_dtype(endian: str) -> np.dtype[np.void]:
    names = ("type", "len", "iface", "ts_hi", "ts_lo", "cap", "wire")
    return np.dtype([(name, endian + "u4") for name in names])


def _epb_run(
    buf: bytes | mmap.mmap,
    data: npt.NDArray[np.uint8],
    pos: int,
    *,
    end: int,
    endian: str,
    ifaces: list[_Interface],
    batch_size: int,
) -> tuple[FrameBatch | None, int]:
    """A batch of the consecutive, well-formed EPBs of one link type at ``pos`` (``None`` if
    there is none) and where the walk goes on."""
    block_hdr = struct.Struct(endian + "II").unpack_from
    positions: list[int] = []
    append = positions.append
    p = pos
    try:
        for _ in range(batch_size):
            btype, blen = block_hdr(buf, p)
            if btype != EPB or blen < 32 or blen & 3:
                break
            append(p)
            p += blen
    except struct.error:
        pass  # fewer than 8 bytes at p: the end of the file, or damage for the slow path
    n = len(positions)
    if n and p > end:
        n -= 1  # the last block runs past the end: the slow path reports it
    if n == 0 or not ifaces:
        return None, pos
    starts = np.array(positions[:n], dtype=np.int64)
    fields_at = np.ndarray(
        shape=(end - 27,), dtype=_epb_dtype(endian), buffer=data, offset=0, strides=(1,)
    )
    u32_at = np.ndarray(shape=(end - 3,), dtype=endian + "u4", buffer=data, offset=0, strides=(1,))
    f = fields_at[starts]
    blen = f["len"].astype(np.int64)
    iface = f["iface"].astype(np.int64)
    cap = f["cap"].astype(np.int64)
    linktypes = np.array([i.linktype for i in ifaces], dtype=np.int64)
    ok = (u32_at[starts + blen - 4] == blen) & (cap <= blen - 32) & (iface < len(ifaces))
    ok &= (
        linktypes[np.minimum(iface, len(ifaces) - 1)]
        == linktypes[min(int(iface[0]), len(ifaces) - 1)]
    )
    if not ok[0]:
        return None, pos
    cut = int(np.argmin(ok)) if not ok.all() else n
    f, starts, iface, cap = f[:cut], starts[:cut], iface[:cut], cap[:cut]
    ticks = (f["ts_hi"].astype(np.uint64) << np.uint64(32)) | f["ts_lo"].astype(np.uint64)
    batch = FrameBatch(
        data=data,
        offsets=starts + 28,
        caplens=cap,
        wirelens=f["wire"].astype(np.int64),
        ts_ns=_timestamps(ifaces, iface, ticks),
        linktype=ifaces[int(iface[0])].linktype,
    )
    return batch, positions[cut] if cut < len(positions) else p


class _Packets:
    """Columns of the packets one walk collected (kept when the walk ends in damage)."""

    __slots__ = ("caplens", "iface_ids", "linktype", "offsets", "ticks", "wirelens")

    def __init__(self) -> None:
        self.offsets: list[int] = []
        self.caplens: list[int] = []
        self.wirelens: list[int] = []
        self.ticks: list[int] = []
        self.iface_ids: list[int] = []
        self.linktype = -1


def _walk_blocks(
    buf: bytes | mmap.mmap,
    pos: int,
    *,
    end: int,
    endian: str,
    ifaces: list[_Interface],
    batch_size: int,
    got: _Packets,
) -> tuple[int, str]:
    """Collect up to ``batch_size`` packets of one link type into ``got``; return where the
    next walk starts and the byte order in force there. Raises
    ``BlockDamageError`` with ``got`` holding every packet before the damage."""
    block_hdr = struct.Struct(endian + "II").unpack_from
    u32 = struct.Struct(endian + "I").unpack_from
    epb = struct.Struct(endian + "IIIII").unpack_from
    opb = struct.Struct(endian + "HHIIII").unpack_from
    add_off = got.offsets.append
    add_cap = got.caplens.append
    add_wire = got.wirelens.append
    add_tick = got.ticks.append
    add_iface = got.iface_ids.append
    linktypes = [i.linktype for i in ifaces]
    linktype = -1
    n = 0
    blocks = 0
    while n < batch_size and pos < end:
        if end - pos < 12:
            raise BlockDamageError(pos, f"truncated block header ({end - pos} bytes left)")
        btype, blen = block_hdr(buf, pos)
        if btype == EPB and blocks:
            break  # the fast path takes runs of EPBs
        blocks += 1
        if btype == SHB:
            if n:
                break  # hand over this batch before the byte order may change
            new_endian = _section_endian(buf, pos)
            if new_endian != endian:
                endian = new_endian
                block_hdr = struct.Struct(endian + "II").unpack_from
                u32 = struct.Struct(endian + "I").unpack_from
                epb = struct.Struct(endian + "IIIII").unpack_from
                opb = struct.Struct(endian + "HHIIII").unpack_from
            btype, blen = block_hdr(buf, pos)
            ifaces.clear()
            linktypes.clear()
        if blen < 12 or blen & 3 or blen > end - pos:
            raise BlockDamageError(
                pos,
                f"block of type 0x{btype:08x} claims {blen} bytes "
                f"({end - pos} left in the file, must be a multiple of 4 and >= 12)",
            )
        if u32(buf, pos + blen - 4)[0] != blen:
            raise BlockDamageError(
                pos, f"block of type 0x{btype:08x}: trailing length differs from {blen}"
            )
        if btype in (EPB, OPB):
            # The obsolete packet block differs from the enhanced one only by a drops field.
            name = "enhanced packet block" if btype == EPB else "packet block"
            if blen < 32:
                raise BlockDamageError(pos, f"{name} of {blen} bytes (minimum 32)")
            if btype == EPB:
                iface, hi, lo, cap, wire = epb(buf, pos + 8)
            else:
                iface, _drops, hi, lo, cap, wire = opb(buf, pos + 8)
            if cap > blen - 32:
                raise BlockDamageError(
                    pos, f"packet claims {cap} captured bytes in a {blen}-byte block"
                )
            if iface >= len(linktypes):
                raise BlockDamageError(
                    pos, f"packet names interface {iface}, not described before it"
                )
            lt = linktypes[iface]
            if lt != linktype:
                if n:
                    break
                linktype = got.linktype = lt
            add_off(pos + 28)
            add_cap(cap)
            add_wire(wire)
            add_tick((hi << 32) | lo)
            add_iface(iface)
            n += 1
        elif btype == SPB:
            if blen < 16:
                raise BlockDamageError(pos, f"simple packet block of {blen} bytes (minimum 16)")
            if not linktypes:
                raise BlockDamageError(pos, "simple packet block before any interface description")
            wire = u32(buf, pos + 8)[0]
            cap = min(wire, blen - 16)
            snaplen = ifaces[0].snaplen
            if snaplen:
                cap = min(cap, snaplen)
            lt = linktypes[0]
            if lt != linktype:
                if n:
                    break
                linktype = got.linktype = lt
            add_off(pos + 12)
            add_cap(cap)
            add_wire(wire)
            add_tick(0)  # a simple packet block carries no timestamp
            add_iface(0)
            n += 1
        elif btype == IDB:
            ifaces.append(_parse_idb(buf, pos, blen, endian))
            linktypes.append(ifaces[-1].linktype)
        pos += blen
    return pos, endian
