"""What a stored pcap file holds, so a query opens only the files that can match.

Per file: the time range, packets, wire bytes, and packet counts per IP address (IPv4 and IPv6,
from the decoder's address columns: a packet counts once for each distinct endpoint) and per MAC
address of the ARP and IPv6 neighbour-discovery frames (the frames attributed to a pod by its MAC,
since they carry no pod address). Built batch by batch with ``np.unique``; written as a JSON sidecar
when the file closes; rebuilt by decoding the file when the sidecar is missing or unreadable.

Addresses are kept as the decoder's 128-bit keys (IPv4 stored IPv4-mapped) and MACs as 48-bit ints;
the sidecar spells them as text.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from analyzers import DecodedBatch, Status, decode
from capture import (
    LINKTYPE_ETHERNET,
    CaptureError,
    CorruptCaptureFileError,
    FrameBatch,
    open_capture_file,
)
from exporters._pcapfiles import scan

__all__ = [
    "FileIndex",
    "IndexBuilder",
    "address_key",
    "address_text",
    "endpoint_keys",
    "index_left_open",
    "mac_key",
    "mac_rows",
    "mac_text",
    "read_sidecar",
    "rebuild_index",
    "unique_pairs",
    "write_sidecar",
]

_log = logging.getLogger(__name__)

_VERSION = 1
_NAMES_MAX = 1 << 18  # address texts a store keeps for its next sidecars
_V4_MAPPED = 0xFFFF_0000_0000
_ETH_ARP = 0x0806
_VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)
_ICMPV6 = 58
_ND_FIRST, _ND_LAST = 133, 137  # router/neighbour solicitation/advertisement, redirect
_PAIR = np.dtype([("hi", "<u8"), ("lo", "<u8")])
_MAC_WEIGHTS = (np.uint64(1) << (np.arange(5, -1, -1, dtype=np.uint64) * np.uint64(8))).astype(
    np.uint64
)


def address_key(text: str) -> int:
    """An IPv4/IPv6 address as the decoder's 128-bit key (raises ValueError if not one)."""
    ip = ipaddress.ip_address(text)
    return _V4_MAPPED | int(ip) if ip.version == 4 else int(ip)


def address_text(key: int) -> str:
    if key >> 32 == 0xFFFF:  # inet_ntoa: a sidecar names tens of thousands (ipaddress: 8x slower)
        return socket.inet_ntoa((key & 0xFFFF_FFFF).to_bytes(4, "big"))
    return str(ipaddress.IPv6Address(key))


def mac_key(text: str) -> int:
    """``aa:bb:cc:dd:ee:ff`` (or with ``-``) as a 48-bit int (raises ValueError if not a MAC)."""
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(f"not a MAC address: {text!r}")
    return int("".join(parts), 16)


def mac_text(key: int) -> str:
    return ":".join(f"{(key >> s) & 0xFF:02x}" for s in range(40, -8, -8))


@dataclass(frozen=True, slots=True)
class FileIndex:
    """What one file holds. ``first_ns``/``last_ns`` are 0 for a file without frames."""

    first_ns: int = 0
    last_ns: int = 0
    packets: int = 0
    bytes: int = 0  # on the wire (wirelen), not as stored
    addresses: Mapping[int, int] = field(default_factory=dict)  # address key -> packets
    macs: Mapping[int, int] = field(default_factory=dict)  # MAC -> ARP/ND packets

    def may_match(
        self, addresses: Iterable[int], macs: Iterable[int], start_ns: int, end_ns: int
    ) -> bool:
        """Whether a frame in [start_ns, end_ns) of one of these addresses or MACs can be here."""
        if self.packets == 0 or self.last_ns < start_ns or self.first_ns >= end_ns:
            return False
        return any(a in self.addresses for a in addresses) or any(m in self.macs for m in macs)

    def to_json(self, names: dict[int, str] | None = None) -> dict[str, Any]:
        """The sidecar document; ``names`` memoises address texts across files (a busy node's
        files name the same ten thousand addresses each, and their text was most of the cost
        of closing a file)."""
        if names is None:
            names = {}
        elif len(names) > _NAMES_MAX:
            names.clear()
        text = names.get
        addresses = {}
        counts = self.addresses
        for k in sorted(counts):
            name = text(k)
            if name is None:
                name = names[k] = address_text(k)
            addresses[name] = counts[k]
        return {
            "version": _VERSION,
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "packets": self.packets,
            "bytes": self.bytes,
            "addresses": addresses,
            "macs": {mac_text(k): n for k, n in sorted(self.macs.items())},
        }

    @classmethod
    def from_json(cls, doc: Any) -> FileIndex:
        """Parse a sidecar document; ValueError (or KeyError/TypeError) when it is not one."""
        if not isinstance(doc, dict) or doc.get("version") != _VERSION:
            raise ValueError("not a version 1 pcap index")
        return cls(
            first_ns=int(doc["first_ns"]),
            last_ns=int(doc["last_ns"]),
            packets=int(doc["packets"]),
            bytes=int(doc["bytes"]),
            addresses={address_key(a): int(n) for a, n in doc["addresses"].items()},
            macs={mac_key(m): int(n) for m, n in doc["macs"].items()},
        )


def endpoint_keys(
    dec: DecodedBatch, rows: slice = slice(None)
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.void]]:
    """IPv4 keys (low halves: their high half is 0) and IPv6 ``(hi, lo)`` pairs of every IP
    frame's endpoints in ``rows``; a frame whose source and destination are equal gives one."""
    ipver = dec.ipver[rows]
    v4 = ipver == 4
    src4, dst4 = dec.src_lo[rows][v4], dec.dst_lo[rows][v4]
    keys4 = np.concatenate([src4, dst4[dst4 != src4]])
    v6 = ipver == 6
    if not v6.any():
        return keys4, np.empty(0, _PAIR)
    src6 = np.empty(int(v6.sum()), _PAIR)
    dst6 = np.empty_like(src6)
    src6["hi"], src6["lo"] = dec.src_hi[rows][v6], dec.src_lo[rows][v6]
    dst6["hi"], dst6["lo"] = dec.dst_hi[rows][v6], dec.dst_lo[rows][v6]
    return keys4, np.concatenate([src6, dst6[dst6 != src6]])


def mac_rows(
    batch: FrameBatch, dec: DecodedBatch, rows: slice = slice(None)
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """Rows (relative to ``rows``) of the ARP and neighbour-discovery frames, their destination
    and source MACs. Only Ethernet frames have MACs; tunnelled frames are left out (their MACs
    are the tunnel's)."""
    none = np.empty(0, np.intp), np.empty(0, np.uint64), np.empty(0, np.uint64)
    if batch.linktype != LINKTYPE_ETHERNET:
        return none
    status, caplens = dec.status[rows], batch.caplens[rows]
    nd = (
        (dec.ipver[rows] == 6)
        & (dec.proto[rows] == _ICMPV6)
        & (dec.sport[rows] >= _ND_FIRST)
        & (dec.sport[rows] <= _ND_LAST)
        & (dec.tun_type[rows] == 0)
    )
    candidates = np.flatnonzero(((status == Status.NON_IP) & (caplens >= 18)) | nd)
    if candidates.size == 0:
        return none
    offsets = batch.offsets[rows][candidates]
    head = batch.data[offsets[:, None] + np.arange(18)]  # MACs, ethertype, a possible VLAN tag
    etype = head[:, 12].astype(np.uint16) << 8 | head[:, 13]
    tagged = np.isin(etype, _VLAN_TPIDS)
    etype[tagged] = head[tagged, 16].astype(np.uint16) << 8 | head[tagged, 17]
    keep = nd[candidates] | (etype == _ETH_ARP)
    macs = head[keep, :12].astype(np.uint64)
    dst = macs[:, :6] @ _MAC_WEIGHTS
    src = macs[:, 6:] @ _MAC_WEIGHTS
    return candidates[keep], dst, src


def unique_pairs(
    hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]
) -> tuple[
    npt.NDArray[np.uint64], npt.NDArray[np.uint64], npt.NDArray[np.intp], npt.NDArray[np.intp]
]:
    """The distinct ``(hi, lo)`` pairs (128-bit keys): their halves, the first row holding each,
    and how many rows do. ``np.unique`` on a structured array sorts ~25x slower than this
    lexsort (3.6 ms against 0.14 ms for a 4 MiB ring block of 512-byte frames)."""
    if hi.size == 0:
        none = np.empty(0, np.intp)
        return np.empty(0, np.uint64), np.empty(0, np.uint64), none, none
    order = np.lexsort((lo, hi)).astype(np.intp)
    h, lo_sorted = hi[order], lo[order]
    new = np.empty(order.size, bool)
    new[0] = True
    np.not_equal(h[1:], h[:-1], out=new[1:])
    new[1:] |= lo_sorted[1:] != lo_sorted[:-1]
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, order.size))
    return h[starts], lo_sorted[starts], order[starts], counts


def _count_into(table: dict[int, int], keys: npt.NDArray[Any]) -> None:
    """Add the (hi, lo) pair keys' counts to ``table`` (IPv6: a dict, they are the few)."""
    if keys.size == 0:
        return
    hi, lo, _, counts = unique_pairs(keys["hi"], keys["lo"])
    for h, low, n in zip(hi.tolist(), lo.tolist(), counts.tolist(), strict=True):
        k = (h << 64) | low
        table[k] = table.get(k, 0) + n


class _Counts:
    """Packets per 64-bit key (IPv4 addresses, MACs) as sorted arrays: a batch's distinct keys
    are merged in with one ``searchsorted``, not a dict update each (with ten thousand pods'
    addresses in every ring block, the dicts took most of the store writer's time)."""

    def __init__(self) -> None:
        self.keys = np.empty(0, np.uint64)
        self.counts = np.empty(0, np.int64)

    def __len__(self) -> int:
        return int(self.keys.size)

    def add_all(self, keys: npt.NDArray[np.uint64]) -> None:
        if keys.size:
            values, counts = np.unique(keys, return_counts=True)
            self.add(values, counts)

    def add(self, keys: npt.NDArray[np.uint64], counts: npt.NDArray[Any]) -> None:
        """Add ``counts`` for the distinct, sorted ``keys``."""
        if keys.size == 0:
            return
        pos = np.searchsorted(self.keys, keys)
        hit = pos < self.keys.size
        hit[hit] = self.keys[pos[hit]] == keys[hit]
        self.counts[pos[hit]] += counts[hit]  # distinct keys: distinct positions
        new = ~hit
        if new.any():
            self.keys = np.insert(self.keys, pos[new], keys[new])
            self.counts = np.insert(self.counts, pos[new], counts[new].astype(np.int64))

    def to_dict(self) -> dict[int, int]:
        return dict(zip(self.keys.tolist(), self.counts.tolist(), strict=True))


class IndexBuilder:
    """Accumulates the index of the file being written; ``snapshot`` may be read concurrently."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._first = 0
        self._last = 0
        self._packets = 0
        self._bytes = 0
        self._v4 = _Counts()
        self._v6: dict[int, int] = {}
        self._macs = _Counts()

    @property
    def sizes(self) -> int:
        """Distinct addresses and MACs so far (what the sidecar's size grows with)."""
        return len(self._v4) + len(self._v6) + len(self._macs)

    def add(self, batch: FrameBatch, dec: DecodedBatch, rows: slice = slice(None)) -> None:
        ts = batch.ts_ns[rows]
        if ts.size == 0:
            return
        keys4, keys6 = endpoint_keys(dec, rows)
        _, dst_mac, src_mac = mac_rows(batch, dec, rows)
        macs = np.concatenate([src_mac, dst_mac[dst_mac != src_mac]])
        first, last = int(ts.min()), int(ts.max())
        wire = int(batch.wirelens[rows].sum())
        with self._lock:
            self._first = first if self._packets == 0 else min(self._first, first)
            self._last = max(self._last, last)
            self._packets += int(ts.size)
            self._bytes += wire
            self._v4.add_all(keys4)
            _count_into(self._v6, keys6)
            self._macs.add_all(macs)

    def merge(self, other: IndexBuilder) -> None:
        """Add what ``other`` counted (an index of the rows about to be appended)."""
        if other is self or other._packets == 0:
            return
        with other._lock:
            first, last, packets, wire = other._first, other._last, other._packets, other._bytes
            v4, v6, macs = other._v4, dict(other._v6), other._macs
            v4_keys, v4_counts, mac_keys, mac_counts = v4.keys, v4.counts, macs.keys, macs.counts
        with self._lock:
            self._first = first if self._packets == 0 else min(self._first, first)
            self._last = max(self._last, last)
            self._packets += packets
            self._bytes += wire
            self._v4.add(v4_keys, v4_counts)
            self._macs.add(mac_keys, mac_counts)
            for k, n in v6.items():
                self._v6[k] = self._v6.get(k, 0) + n

    def snapshot(self) -> FileIndex:
        with self._lock:
            addresses = self._v4.to_dict()
            for k, n in self._v6.items():  # an IPv4-mapped IPv6 address is its IPv4 key
                addresses[k] = addresses.get(k, 0) + n
            return FileIndex(
                first_ns=self._first,
                last_ns=self._last,
                packets=self._packets,
                bytes=self._bytes,
                addresses=addresses,
                macs=self._macs.to_dict(),
            )


def write_sidecar(path: Path, index: FileIndex, names: dict[int, str] | None = None) -> None:
    """Write ``path`` atomically (a reader sees the old file or the whole new one); OSError on
    failure, with no temporary file left behind. ``names``: see ``FileIndex.to_json``."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(index.to_json(names), separators=(",", ":")))
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def read_sidecar(path: Path) -> FileIndex | None:
    """The index in ``path``; None when it is missing or unreadable (then rebuild it)."""
    try:
        return FileIndex.from_json(json.loads(path.read_bytes()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        _log.warning("pcap index %s unreadable (%s): rebuilding it from the pcap", path, e)
        return None


def rebuild_index(pcap: Path) -> FileIndex:
    """Index a pcap file by decoding it, up to its last complete record."""
    builder = IndexBuilder()
    try:
        with open_capture_file(pcap) as source:
            for batch in source.batches():
                builder.add(batch, decode(batch))
    except CorruptCaptureFileError as e:
        _log.info("indexed %s up to byte %d: %s", pcap, e.offset, e.reason)
    except CaptureError as e:
        _log.warning("cannot index %s: %s", pcap, e)
    return builder.snapshot()


def index_left_open(directory: Path, node: str, worker: int) -> dict[Path, FileIndex]:
    """Index the files an earlier run of worker ``worker`` on ``node`` left without a sidecar
    (a crash): write it, or delete a file without a packet; returns the indexes it could not
    write yet, by file."""
    pending: dict[Path, FileIndex] = {}
    for f in scan(directory):
        if f.closed or f.node != node or f.worker != worker:
            continue
        index = rebuild_index(f.path)
        try:
            if index.packets == 0:
                f.path.unlink(missing_ok=True)
            else:
                write_sidecar(f.sidecar, index)
                _log.info("indexed %s, left open by an earlier run", f.name)
        except OSError as e:
            _log.warning("cannot index %s left by an earlier run: %s", f.name, e)
            pending[f.path] = index
    return pending
