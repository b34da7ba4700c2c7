"""Duplicate suppression's per-packet work, compiled: fingerprints and the copy search.

``_dedup`` says what a copy is and why. ``fingerprint`` hashes one IP packet's NAT- and
routing-invariant fields and, where IPv4 TCP's header fields do not already tell packets apart,
the bytes just before and after the transport payload: the decoder calls it for each IP row as it
decodes the frame (the ``fp`` column), so the frame is read from memory once. ``find_copies``, a
plain loop over a batch's IP rows in arrival order, keeps, in a hash table of the batch's size,
the latest row seen with each fingerprint (the rows carried over from earlier batches first) and
checks each new row against it: inside the window and an endpoint in common makes it a copy.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from analyzers._decrow import Row
from capture import njit

__all__ = ["find_copies", "fingerprint"]

U8 = npt.NDArray[np.uint8]
U16 = npt.NDArray[np.uint16]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

_K = np.uint64(0x9E3779B97F4A7C15)
_L4 = 0  # Status.L4 (literal: numba freezes globals anyway)
_TCP, _ICMP, _ICMP6 = 6, 1, 58


@njit
def _mix(h: np.uint64, word: np.uint64) -> np.uint64:
    h ^= word
    h *= _K
    h ^= h >> np.uint64(29)
    return h


@njit
def _le_bytes(data: U8, start: int, count: int, shift_bytes: int) -> np.uint64:
    """``count`` bytes from ``start`` as a little-endian word, placed from byte ``shift_bytes``."""
    w = np.uint64(0)
    size = data.shape[0]
    for i in range(count):
        pos = start + i
        if 0 <= pos < size:
            w |= np.uint64(data[pos]) << np.uint64(8 * (shift_bytes + i))
    return w


@njit
def fingerprint(data: U8, frame_end: int, row: Row) -> np.uint64:
    """The fingerprint of the IP packet the decoder just read into ``row`` (a frame of ``data``
    captured up to ``frame_end``); the decoder calls this while the frame is in cache."""
    p = row.proto
    type_code = 0
    if p in (_ICMP, _ICMP6):
        type_code = (row.sport << 8) | row.dport
    small = (
        (np.uint64(row.tcp_flags) << np.uint64(48))
        | (np.uint64(row.tcp_win) << np.uint64(32))
        | (np.uint64(type_code) << np.uint64(16))
        | (np.uint64(p) << np.uint64(8))
        | (np.uint64(row.frag) << np.uint64(4))
        | np.uint64(row.ipver)
    )
    h = (np.uint64(row.ip_len) << np.uint64(32)) | np.uint64(row.ip_id)
    h = _mix(h, (np.uint64(row.tcp_seq) << np.uint64(32)) | np.uint64(row.tcp_ack))
    h = _mix(h, small)
    is_tcp = p == _TCP and row.status == _L4
    if not is_tcp or row.ipver != 4:
        # IPv4 TCP is told apart by IP id, seq, ack, flags and window alone; the others also
        # hash the first payload bytes and (TCP) the end of the options: timestamps and SACK
        # blocks move where IPv6 has no IP id
        off = row.l4_off
        head_len = min(max(min(row.l4_len, frame_end - off), 0), 8)
        head = _le_bytes(data, off, head_len, 0)
        opt_len = 0
        if is_tcp and off <= frame_end:
            fixed = 40 if row.ipver == 4 else 60
            opt_len = min(max(row.ip_len - row.l4_len - fixed, 0), 8)
        tail = _le_bytes(data, off - opt_len, opt_len, 8 - opt_len)
        h = _mix(_mix(h, head), tail)
    # a last avalanche so that every bit depends on all
    h ^= h >> np.uint64(32)
    h *= _K
    h ^= h >> np.uint64(29)
    return h


_EMPTY = np.uint64(0)
_BIAS = np.uint64(1 << 63)  # ts + 2**63 as uint64: order kept, and 0 (empty) is never a real time
_FP, _TS, _ENDS = 0, 1, 2  # an entry's words: fingerprint, biased time, six endpoint words


@njit
def _is_copy(entry: U64, e: U64, dt: np.int64, window_ns: np.int64, nat_window_ns: int) -> bool:
    """Whether a later packet with endpoint words ``e`` (src_hi, src_lo, sport, dst_hi, dst_lo,
    dport), ``dt`` ns from the packet of ``entry``, copies it: both sides equal (routing) within
    ``window_ns``, or one side untouched and the other at another address (NAT rewrites an
    address, maybe its port; never a port alone) within ``nat_window_ns``."""
    src_addr = entry[_ENDS] == e[0] and entry[_ENDS + 1] == e[1]
    dst_addr = entry[_ENDS + 3] == e[3] and entry[_ENDS + 4] == e[4]
    same_src = src_addr and entry[_ENDS + 2] == e[2]
    same_dst = dst_addr and entry[_ENDS + 5] == e[5]
    if same_src and same_dst:
        return bool(dt <= window_ns)
    nat = (same_src and not dst_addr) or (same_dst and not src_addr)
    return bool(nat and dt <= nat_window_ns)


@njit
def _rebuilt(table: U64, oldest: np.uint64) -> tuple[U64, int]:
    """The entries of ``table`` not older than ``oldest``, in a table at most a quarter full."""
    live = 0
    for b in range(table.shape[0]):
        if table[b, _TS] >= oldest:
            live += 1
    cap = 64
    while cap < 4 * live:
        cap *= 2
    out = np.zeros((cap, table.shape[1]), np.uint64)
    mask = cap - 1
    for b in range(table.shape[0]):
        if table[b, _TS] >= oldest:
            d = np.int64(table[b, _FP] & np.uint64(mask))
            while out[d, _TS] != _EMPTY:
                d = (d + 1) & mask
            for k in range(table.shape[1]):
                out[d, k] = table[b, k]
    return out, live


@njit
def find_copies(  # noqa: PLR0917 - a compiled kernel takes its columns positionally
    table: U64,
    fill: int,
    fp: U64,
    rows: I64,
    ts_ns: I64,
    src_hi: U64,
    src_lo: U64,
    sport: U16,
    dst_hi: U64,
    dst_lo: U64,
    dport: U16,
    window_ns: int,
    nat_window_ns: int,
    copy: B,
) -> tuple[U64, int, int]:
    """Mark ``copy[k]`` for every row ``rows[k]`` that copies the latest earlier packet with its
    fingerprint ``fp[k]``.

    ``table`` is an open-addressing hash table of the packets seen within the window (carried
    from batch to batch), one 64-byte entry each (fingerprint, time, six endpoint words):
    probing a bucket reads one cache line. Entries older than the window are reused in place
    and dropped when the table is rebuilt at half full. Returns the table (a new one when it
    was rebuilt), its count of used buckets, and the number of copies found.
    """
    found = 0
    newest = np.int64(-(1 << 62))
    w = np.int64(window_ns)
    e = np.empty(6, np.uint64)
    for k in range(fp.shape[0]):
        r = rows[k]
        t = ts_ns[r]
        newest = max(newest, t)
        oldest = np.uint64(newest - w) ^ _BIAS
        if 2 * (fill + 1) > table.shape[0]:
            table, fill = _rebuilt(table, oldest)
        mask = table.shape[0] - 1
        h = fp[k]
        b = np.int64(h & np.uint64(mask))
        reuse = np.int64(-1)
        while table[b, _TS] != _EMPTY:
            if table[b, _FP] == h:
                break
            if reuse < 0 and table[b, _TS] < oldest:
                reuse = b
            b = (b + 1) & mask
        e[0], e[1], e[2] = src_hi[r], src_lo[r], sport[r]
        e[3], e[4], e[5] = dst_hi[r], dst_lo[r], dport[r]
        if table[b, _TS] != _EMPTY:  # the latest earlier packet with this fingerprint
            then = np.int64(table[b, _TS] ^ _BIAS)
            if _is_copy(table[b], e, abs(t - then), w, nat_window_ns):
                copy[k] = True
                found += 1
        elif reuse >= 0:
            b = reuse
        else:
            fill += 1
        table[b, _FP] = h
        table[b, _TS] = np.uint64(t) ^ _BIAS
        for j in range(6):
            table[b, _ENDS + j] = e[j]
    return table, fill, found
