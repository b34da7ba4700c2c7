"""Reading the pcap store back: frames of some addresses and MACs in a time window; a listing.

A query takes addresses, MACs, a window [start, end) and an optional tcpdump filter: never a file
name. It opens only the files whose index can match (a file still being written counts by its
in-memory index when its worker shares this process, else by its name's start time), reads each
one up to its last complete record, keeps the frames of the addresses (IP source or destination)
and of the MACs (ARP and neighbour discovery frames, which carry no pod address), runs the filter
through libpcap (``capture.FilteredSource``), and merges the workers' files in time order with
``heapq.merge``. Memory stays bounded by one batch per worker: files are memory-mapped and read a
batch at a time, frames are copied out one by one.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
import numpy.typing as npt

from analyzers import DecodedBatch, decode
from capture import (
    CaptureError,
    CorruptCaptureFileError,
    FilteredSource,
    FrameBatch,
    FrameSource,
    SourceStats,
    compile_filter,
    open_capture_file,
)
from exporters._pcapfiles import StoredFile, scan
from exporters._pcapindex import (
    FileIndex,
    address_key,
    address_text,
    mac_key,
    mac_rows,
    mac_text,
    read_sidecar,
    rebuild_index,
    write_sidecar,
)
from exporters._pcapstoreconfig import OpenFile

__all__ = ["PcapArchive", "PcapQuery", "StoredFileInfo", "StoredFrame"]

_log = logging.getLogger(__name__)

#: Frames per batch when reading the store: small, since a query holds one batch per worker.
DEFAULT_READ_BATCH = 4096


@dataclass(frozen=True, slots=True)
class PcapQuery:
    """Which frames to read: address and MAC keys (``of`` parses their text), a window, a filter."""

    addresses: frozenset[int]
    macs: frozenset[int]
    start_ns: int
    end_ns: int
    filter: str = ""

    @classmethod
    def of(
        cls,
        *,
        addresses: Iterable[str] = (),
        macs: Iterable[str] = (),
        start_ns: int,
        end_ns: int,
        filter: str = "",
    ) -> PcapQuery:
        """Parse and check; ``ValueError`` names the bad value (``CaptureError`` a bad filter)."""
        addr = frozenset(address_key(a) for a in addresses)
        mac = frozenset(mac_key(m) for m in macs)
        if end_ns <= start_ns:
            raise ValueError(f"the window's end {end_ns} is not after its start {start_ns}")
        if filter.strip():
            compile_filter(filter)  # a bad expression fails here, before any file is opened
        return cls(addresses=addr, macs=mac, start_ns=start_ns, end_ns=end_ns, filter=filter)


@dataclass(frozen=True, slots=True)
class StoredFrame:
    """One frame read back, with its endpoints (address keys for IP, MACs for ARP/ND; 0: none)."""

    ts_ns: int
    data: bytes
    wirelen: int
    linktype: int
    node: str
    src: int = 0
    dst: int = 0
    src_mac: int = 0
    dst_mac: int = 0

    def endpoints(self) -> tuple[str, str] | None:
        """Source and destination as text: IP addresses, or MACs for ARP/ND; None otherwise."""
        if self.src or self.dst:
            return address_text(self.src), address_text(self.dst)
        if self.src_mac or self.dst_mac:
            return mac_text(self.src_mac), mac_text(self.dst_mac)
        return None


@dataclass(frozen=True, slots=True)
class StoredFileInfo:
    """One file of the listing. A file being written by another process has no index yet
    (``indexed`` False: counts 0, time range from its name)."""

    name: str
    node: str
    worker: int
    size: int
    writing: bool
    indexed: bool
    first_ns: int
    last_ns: int
    packets: int
    bytes: int
    addresses: Mapping[str, int]
    macs: Mapping[str, int]


class PcapArchive:
    """Queries and lists a store directory (any number of workers' files)."""

    def __init__(
        self,
        directory: Path,
        *,
        open_files: Callable[[], Iterable[OpenFile]] = tuple,
        batch_size: int = DEFAULT_READ_BATCH,
    ) -> None:
        self.directory = directory
        self._open_files = open_files
        self._batch_size = batch_size
        self._cache: dict[tuple[str, int], FileIndex] = {}

    def list_files(self) -> list[StoredFileInfo]:
        """Every file, oldest first, with what its index says."""
        out = []
        for f, index, writing in self._indexed():
            known = index if index is not None else FileIndex(first_ns=f.start_ns)
            out.append(
                StoredFileInfo(
                    name=f.name,
                    node=f.node,
                    worker=f.worker,
                    size=f.size,
                    writing=writing,
                    indexed=index is not None,
                    first_ns=known.first_ns,
                    last_ns=known.last_ns,
                    packets=known.packets,
                    bytes=known.bytes,
                    addresses={address_text(k): n for k, n in sorted(known.addresses.items())},
                    macs={mac_text(k): n for k, n in sorted(known.macs.items())},
                )
            )
        return out

    def query(self, q: PcapQuery) -> Iterator[StoredFrame]:
        """The matching frames of every worker, in time order, as they are read."""
        chains: dict[tuple[str, int], list[StoredFile]] = {}
        for f, index, _ in self._indexed():
            if index is None:
                if f.start_ns >= q.end_ns:
                    continue
            elif not index.may_match(q.addresses, q.macs, q.start_ns, q.end_ns):
                continue
            chains.setdefault((f.node, f.worker), []).append(f)
        streams = [
            chain.from_iterable(self._frames(f, q) for f in files) for files in chains.values()
        ]
        return heapq.merge(*streams, key=_ts)

    # --- indexes ---------------------------------------------------------------------------------
    def _indexed(self) -> Iterator[tuple[StoredFile, FileIndex | None, bool]]:
        """Each file with its index (None: being written elsewhere) and whether it is open."""
        live = {o.path.name: o.index for o in self._open_files()}
        files = scan(self.directory)
        newest: dict[tuple[str, int], str] = {}
        for f in files:
            newest[(f.node, f.worker)] = f.name
        keep: dict[tuple[str, int], FileIndex] = {}
        for f in files:
            if f.name in live:
                yield f, live[f.name], True
            elif f.closed:
                yield f, self._sidecar_index(f, keep), False
            elif newest[(f.node, f.worker)] == f.name:
                yield f, None, True
            else:  # closed without its index (a crash, a full disk): index it now
                index = rebuild_index(f.path)
                try:
                    write_sidecar(f.sidecar, index)
                except OSError as e:
                    _log.warning("cannot write the rebuilt index of %s: %s", f.name, e)
                yield f, index, False
        self._cache = keep

    def _sidecar_index(self, f: StoredFile, keep: dict[tuple[str, int], FileIndex]) -> FileIndex:
        key = (f.name, f.sidecar_size)
        index = self._cache.get(key) or read_sidecar(f.sidecar)
        if index is None:
            index = rebuild_index(f.path)
            try:
                write_sidecar(f.sidecar, index)
            except OSError as e:
                _log.warning("cannot write the rebuilt index of %s: %s", f.name, e)
        keep[key] = index
        return index

    # --- reading ---------------------------------------------------------------------------------
    def _frames(self, f: StoredFile, q: PcapQuery) -> Iterator[StoredFrame]:
        try:
            source = open_capture_file(f.path, batch_size=self._batch_size)
        except CorruptCaptureFileError:
            return  # not even a whole header yet
        except CaptureError as e:  # evicted since the scan
            _log.debug("%s gone before it was read: %s", f.name, e)
            return
        matching = _Matching(source, q)
        selected: FrameSource = FilteredSource(matching, q.filter) if q.filter else matching
        try:
            for batch in selected.batches():
                yield from matching.frames(batch, f.node)
        except CorruptCaptureFileError as e:
            # The file being written ends in a record still arriving; a closed one only so if a
            # write failed. Either way every complete record before it was served.
            _log.debug("%s read up to byte %d: %s", f.name, e.offset, e.reason)
        finally:
            selected.close()


def _ts(frame: StoredFrame) -> int:
    return frame.ts_ns


class _Matching:
    """The frames of a file that the query's addresses, MACs and window select (a
    ``FrameSource``); remembers each batch's endpoints for the frames a filter then keeps."""

    def __init__(self, source: FrameSource, q: PcapQuery) -> None:
        self._source = source
        self._q = q
        v4 = [k & 0xFFFF_FFFF_FFFF_FFFF for k in q.addresses if k >> 64 == 0]
        self._v4 = np.array(sorted(v4), dtype=np.uint64)
        self._v6 = [(k >> 64, k & 0xFFFF_FFFF_FFFF_FFFF) for k in q.addresses if k >> 64]
        self._macs = np.array(sorted(q.macs), dtype=np.uint64)
        self._batch: FrameBatch | None = None
        self._ends: tuple[npt.NDArray[np.uint64], ...] = ()

    def batches(self) -> Iterator[FrameBatch]:
        q = self._q
        for batch in self._source.batches():
            in_window = (batch.ts_ns >= q.start_ns) & (batch.ts_ns < q.end_ns)
            if not in_window.any():
                continue
            dec = decode(batch)
            hit = self._by_address(dec)
            src_mac = np.zeros(len(batch), np.uint64)
            dst_mac = np.zeros(len(batch), np.uint64)
            rows, dst, src = mac_rows(batch, dec)
            if rows.size:
                hit[rows[np.isin(src, self._macs) | np.isin(dst, self._macs)]] = True
                src_mac[rows], dst_mac[rows] = src, dst
            keep = in_window & hit
            if not keep.any():
                continue
            sel = np.flatnonzero(keep)
            ip = dec.ipver[sel] != 0
            zero = np.uint64(0)
            self._batch = _rows(batch, sel)
            self._ends = (
                *(np.where(ip, c[sel], zero) for c in (dec.src_hi, dec.src_lo)),
                *(np.where(ip, c[sel], zero) for c in (dec.dst_hi, dec.dst_lo)),
                src_mac[sel],
                dst_mac[sel],
            )
            yield self._batch

    def _by_address(self, dec: DecodedBatch) -> npt.NDArray[np.bool_]:
        v4 = dec.ipver == 4
        hit: npt.NDArray[np.bool_] = v4 & (
            np.isin(dec.src_lo, self._v4) | np.isin(dec.dst_lo, self._v4)
        )
        if self._v6:
            v6 = dec.ipver == 6
            for hi, lo in self._v6:
                hit |= v6 & (dec.src_hi == hi) & (dec.src_lo == lo)
                hit |= v6 & (dec.dst_hi == hi) & (dec.dst_lo == lo)
        return hit

    def frames(self, batch: FrameBatch, node: str) -> Iterator[StoredFrame]:
        """``batch`` (this source's last batch, or what a filter kept of it) as stored frames."""
        mine = self._batch
        if mine is None:
            return
        # A filter keeps a subset of the rows in order; offsets are unique within a file.
        rows = np.searchsorted(mine.offsets, batch.offsets).tolist()
        cols = [c.tolist() for c in self._ends]
        data = batch.data
        for i, r in enumerate(rows):
            off, cap = int(batch.offsets[i]), int(batch.caplens[i])
            yield StoredFrame(
                ts_ns=int(batch.ts_ns[i]),
                data=data[off : off + cap].tobytes(),
                wirelen=int(batch.wirelens[i]),
                linktype=batch.linktype,
                node=node,
                src=cols[0][r] << 64 | cols[1][r],
                dst=cols[2][r] << 64 | cols[3][r],
                src_mac=cols[4][r],
                dst_mac=cols[5][r],
            )

    def stats(self) -> SourceStats:
        return self._source.stats()

    def close(self) -> None:
        self._batch = None
        self._source.close()


def _rows(batch: FrameBatch, sel: npt.NDArray[np.intp]) -> FrameBatch:
    if sel.size == len(batch):
        return batch
    return FrameBatch(
        data=batch.data,
        offsets=batch.offsets[sel],
        caplens=batch.caplens[sel],
        wirelens=batch.wirelens[sel],
        ts_ns=batch.ts_ns[sel],
        linktype=batch.linktype,
    )
