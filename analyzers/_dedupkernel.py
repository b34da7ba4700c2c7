"""Duplicate suppression's per-packet work, compiled: fingerprints and the copy search.

``_dedup`` says what a copy is and why. ``fingerprint`` hashes one IP packet's NAT- and
routing-invariant fields and, where IPv4 TCP's header fields do not already tell packets apart,
the bytes just before and after the transport payload: the decoder calls it for each IP row as it
decodes the frame (the ``fp`` column), so the frame is read from memory once. ``find_copies``, a
plain loop over a batch's rows in arrival order that passes over all but the IP rows, keeps, in a
hash table, the latest packet seen with each fingerprint (those of earlier batches too) and checks
each new row against it: inside the window and an endpoint in common makes it a copy. It writes
the pipeline's keep mask itself, every row of it: no index of the IP rows, no gathered copy of
their fingerprints, no second pass to apply the copies found.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from analyzers._decrow import Row
from capture import load_le64, njit, njit_inline, prefetch

__all__ = ["find_copies", "fingerprint", "fingerprint_of"]

U8 = npt.NDArray[np.uint8]
U16 = npt.NDArray[np.uint16]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

_K = np.uint64(0x9E3779B97F4A7C15)
_L4, _L3 = 0, 1  # Status.L4, Status.L3 (literals: numba freezes globals anyway)
_TCP, _ICMP, _ICMP6 = 6, 1, 58


@njit
def _mix(h: np.uint64, word: np.uint64) -> np.uint64:
    h ^= word
    h *= _K
    h ^= h >> np.uint64(29)
    return h


@njit
def _le_bytes(data: U8, start: int, count: int, shift_bytes: int) -> np.uint64:
    """``count`` bytes (at most 8) from ``start`` as a little-endian word, placed from byte
    ``shift_bytes`` (``shift_bytes + count`` at most 8); a byte outside ``data`` counts as 0."""
    w = np.uint64(0)
    size = data.shape[0]
    if count <= 0:
        return w
    if start >= 0 and start + 8 <= size:  # one load where the buffer has the eight bytes
        w = np.uint64(load_le64(data, start))
        if count < 8:
            w &= (np.uint64(1) << np.uint64(8 * count)) - np.uint64(1)
        return w << np.uint64(8 * shift_bytes)
    for i in range(count):
        pos = start + i
        if 0 <= pos < size:
            w |= np.uint64(data[pos]) << np.uint64(8 * (shift_bytes + i))
    return w


@njit_inline  # a stage of the decoder's frame loop: inlined there
def fingerprint(data: U8, frame_end: int, row: Row) -> np.uint64:
    """The fingerprint of the IP packet the decoder just read into ``row`` (a frame of ``data``
    captured up to ``frame_end``); the decoder calls this while the frame is in cache."""
    return fingerprint_of(
        data, frame_end, (row.ipver, row.proto, row.frag, row.ip_len, row.ip_id),
        (row.status == _L4, row.sport, row.dport, row.l4_off, row.l4_len),
        (row.tcp_flags, row.tcp_win, row.tcp_seq, row.tcp_ack),
    )  # fmt: skip


@njit_inline
def fingerprint_of(
    data: U8,
    frame_end: int,
    ip: tuple[int, int, int, int, int],
    l4: tuple[bool, int, int, int, int],
    tcp: tuple[int, int, int, int],
) -> np.uint64:
    """``fingerprint`` of the packet whose fields are given: *ip* (version, protocol, fragment
    state, length, id), *l4* (ports decoded, source port or ICMP type, destination port or
    code, payload offset, payload length), *tcp* (flags, window, seq, ack; 0 for others)."""
    ipver, p, frag, ip_len, ip_id = ip
    ported, sport, dport, off, l4_len = l4
    flags, win, seq, ack = tcp
    type_code = 0
    if p in (_ICMP, _ICMP6):
        type_code = (sport << 8) | dport
    small = (
        (np.uint64(flags) << np.uint64(48))
        | (np.uint64(win) << np.uint64(32))
        | (np.uint64(type_code) << np.uint64(16))
        | (np.uint64(p) << np.uint64(8))
        | (np.uint64(frag) << np.uint64(4))
        | np.uint64(ipver)
    )
    h = (np.uint64(ip_len) << np.uint64(32)) | np.uint64(ip_id)
    h = _mix(h, (np.uint64(seq) << np.uint64(32)) | np.uint64(ack))
    h = _mix(h, small)
    is_tcp = p == _TCP and ported
    if not is_tcp or ipver != 4:
        # IPv4 TCP is told apart by IP id, seq, ack, flags and window alone; the others also
        # hash the first payload bytes and (TCP) the end of the options: timestamps and SACK
        # blocks move where IPv6 has no IP id
        head_len = min(max(min(l4_len, frame_end - off), 0), 8)
        head = _le_bytes(data, off, head_len, 0)
        opt_len = 0
        if is_tcp and off <= frame_end:
            fixed = 40 if ipver == 4 else 60
            opt_len = min(max(ip_len - l4_len - fixed, 0), 8)
        tail = _le_bytes(data, off - opt_len, opt_len, 8 - opt_len)
        h = _mix(_mix(h, head), tail)
    # a last avalanche so that every bit depends on all
    h ^= h >> np.uint64(32)
    h *= _K
    h ^= h >> np.uint64(29)
    return h


_EMPTY = np.uint64(0)
_BIAS = np.uint64(1 << 63)  # ts + 2**63 as uint64: order kept, and 0 (empty) is never a real time
_FP, _TS = 0, 1  # a bucket's words in the key table: fingerprint, biased time
_AHEAD = 8  # rows between the one searched and the one whose bucket is fetched
_WINDOW = 4  # buckets of a probe looked at without a branch each (one or two cache lines)


@njit
def _is_copy(  # noqa: PLR0917 - a compiled helper takes its values positionally
    src_addr: bool,
    dst_addr: bool,
    same_src: bool,
    same_dst: bool,
    dt: np.int64,
    window_ns: np.int64,
    nat_window_ns: int,
) -> bool:
    """Whether a later packet ``dt`` ns after one with the same fingerprint copies it, given
    which of its endpoints are the earlier one's (``*_addr``: the address, ``same_*``: address
    and port): both sides equal (routing) within ``window_ns``, or one side untouched and the
    other at another address (NAT rewrites an address, maybe its port; never a port alone)
    within ``nat_window_ns``."""
    if same_src and same_dst:
        return bool(dt <= window_ns)
    nat = (same_src and not dst_addr) or (same_dst and not src_addr)
    return bool(nat and dt <= nat_window_ns)


@njit
def _rebuilt(keys: U64, ends: U64, oldest: np.uint64) -> tuple[U64, U64, int]:
    """The entries not older than ``oldest``, in tables at most a quarter full."""
    live = 0
    for b in range(keys.shape[0]):
        if keys[b, _TS] >= oldest:
            live += 1
    cap = 64
    while cap < 4 * live:
        cap *= 2
    out_keys = np.zeros((cap, 2), np.uint64)
    out_ends = np.empty((cap, 6), np.uint64)  # read only where a key says the bucket is used
    mask = np.uint64(cap - 1)
    for b in range(keys.shape[0]):
        if keys[b, _TS] >= oldest:
            d = keys[b, _FP] & mask  # unsigned: no wrap-round of the index (``_search``)
            while out_keys[d, _TS] != _EMPTY:
                d = (d + np.uint64(1)) & mask
            out_keys[d, 0] = keys[b, 0]
            out_keys[d, 1] = keys[b, 1]
            for k in range(6):
                out_ends[d, k] = ends[b, k]
    return out_keys, out_ends, live


@njit
def find_copies(  # noqa: PLR0917 - a compiled kernel takes its columns positionally
    table: tuple[U64, U64],
    fill: int,
    status: U8,
    fp: U64,
    ts_ns: I64,
    ends: tuple[U64, U64, U16, U64, U64, U16],
    window_ns: int,
    nat_window_ns: int,
    keep: B,
) -> tuple[tuple[U64, U64], int, int]:
    """Set ``keep[k]`` False for every IP row (``status`` L4 or L3) that copies the latest
    earlier packet with its fingerprint ``fp[k]``, True for every other row.

    ``table`` is an open-addressing hash table of the packets seen within the window (carried
    from batch to batch), in two parallel arrays: the probed keys (fingerprint, time: four
    buckets a cache line) and the six endpoint words each, read only where a fingerprint
    matches. *ends* are the batch's endpoint columns (src_hi, src_lo, sport, dst_hi, dst_lo,
    dport). Entries older than the window are reused in place and dropped when the table is
    rebuilt at half full. Returns the table (new arrays when it was rebuilt), its count of used
    buckets, and the number of copies found.
    """
    keys, words = table
    found = 0
    newest = np.int64(-(1 << 62))
    done = 0
    while True:
        # the rows go through a loop that takes the table as an argument, handing back when it
        # must be rebuilt: a table replaced inside the row loop would be counted up and down
        # (atomically) on every row
        done, fill, found, newest = _search(
            keys, words, fill, done, found, newest, status, fp, ts_ns, ends, window_ns,
            nat_window_ns, keep,
        )  # fmt: skip
        if done == fp.shape[0]:
            break
        keys, words, fill = _rebuilt(keys, words, np.uint64(newest - np.int64(window_ns)) ^ _BIAS)
    return (keys, words), fill, found


@njit
def _search(  # noqa: PLR0917 - a compiled kernel takes its columns positionally
    keys: U64,
    words: U64,
    fill: int,
    start: int,
    found: int,
    newest: np.int64,
    status: U8,
    fp: U64,
    ts_ns: I64,
    cols: tuple[U64, U64, U16, U64, U64, U16],
    window_ns: int,
    nat_window_ns: int,
    keep: B,
) -> tuple[int, int, int, np.int64]:
    """``find_copies``'s row loop from row *start* on, until the table is half full: return
    (rows done, used buckets, copies found, newest time seen)."""
    src_hi, src_lo, sport, dst_hi, dst_lo, dport = cols
    w = np.int64(window_ns)
    # rows and buckets are indexed by unsigned values: numba wraps a signed index round (a
    # negative one counts from the end) with a test and a reload of the length at every access
    mask = np.uint64(keys.shape[0] - 1)
    n = fp.shape[0]
    for k in range(start, n):
        ku = np.uint64(k)
        if k + _AHEAD < n:  # the buckets a later row probes first: their lines load meanwhile
            home = fp[ku + np.uint64(_AHEAD)] & mask
            prefetch(keys, np.uint64(2) * home)
            prefetch(keys, np.uint64(2) * ((home + np.uint64(_WINDOW - 1)) & mask))
        keep[ku] = True
        if status[ku] > _L3:  # not an IP packet: nothing to copy
            continue
        t = ts_ns[ku]
        newest = max(newest, t)
        if 2 * (fill + 1) > keys.shape[0]:
            return k, fill, found, newest
        oldest = np.uint64(newest - w) ^ _BIAS
        h = fp[ku]
        # linear probing from the home bucket to an empty one or one holding h, noting the
        # first stale bucket passed; the first _WINDOW buckets with selects, not a branch a
        # bucket: whether the home bucket is taken is a coin toss in a table up to half full,
        # and the mispredicted probe loop cost ~2.5 ns a row
        b0 = h & mask
        stop = np.int64(_WINDOW)
        reuse = np.int64(-1)
        for i in range(_WINDOW):
            bi = (b0 + np.uint64(i)) & mask
            ts_i = keys[bi, _TS]
            ends = (ts_i == _EMPTY) | (keys[bi, _FP] == h)
            before = stop == _WINDOW
            stale = before & ~ends & (ts_i < oldest) & (reuse < 0)
            reuse = np.int64(bi) if stale else reuse
            stop = np.int64(i) if (before & ends) else stop
        b = (b0 + np.uint64(stop)) & mask
        if stop == _WINDOW:  # a longer probe: on bucket by bucket
            while keys[b, _TS] != _EMPTY:
                if keys[b, _FP] == h:
                    break
                if reuse < 0 and keys[b, _TS] < oldest:
                    reuse = np.int64(b)
                b = (b + np.uint64(1)) & mask
        e0, e1, e2 = src_hi[ku], src_lo[ku], np.uint64(sport[ku])
        e3, e4, e5 = dst_hi[ku], dst_lo[ku], np.uint64(dport[ku])
        if keys[b, _TS] != _EMPTY:  # the latest earlier packet with this fingerprint
            then = np.int64(keys[b, _TS] ^ _BIAS)
            src_addr = words[b, 0] == e0 and words[b, 1] == e1
            dst_addr = words[b, 3] == e3 and words[b, 4] == e4
            same_src = src_addr and words[b, 2] == e2
            same_dst = dst_addr and words[b, 5] == e5
            if _is_copy(src_addr, dst_addr, same_src, same_dst, abs(t - then), w, nat_window_ns):
                keep[ku] = False
                found += 1
        elif reuse >= 0:
            b = np.uint64(reuse)
        else:
            fill += 1
        keys[b, _FP] = h
        keys[b, _TS] = np.uint64(t) ^ _BIAS
        words[b, 0] = e0
        words[b, 1] = e1
        words[b, 2] = e2
        words[b, 3] = e3
        words[b, 4] = e4
        words[b, 5] = e5
    return fp.shape[0], fill, found, newest
