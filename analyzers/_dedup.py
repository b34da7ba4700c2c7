"""Suppress the second copy of a packet that Open vSwitch mirrored twice.

OVS resets its mirror de-duplication after an action that modifies a packet (routing with
dec_ttl, NAT, VLAN push/pop), so a routed or NATed packet reaches mirror0 twice within
microseconds: once before the change and once after. Routing rewrites MACs, TTL and the IP
checksum; NAT also rewrites one side's address and port and the transport checksum.

A copy is recognised by a 64-bit fingerprint of what neither changes — IP version, protocol,
IP length, IPv4 identification (IPv6: fragment id), fragment state, TCP seq/ack/flags/window, ICMP
type/code, and except for TCP over IPv4 (whose IP id already tells retransmissions apart) the
last 8 bytes of TCP options and the first 8 bytes of payload — plus one untouched
endpoint: a duplicate has the same fingerprint as the previous packet with that fingerprint, at
most ``window_ns`` apart, and the same source address and port (routing, DNAT) or the same
destination address and port (routing, SNAT), the other side either equal (routing) or at another
address (NAT rewrites an address; a change of port alone at the same address is a distinct packet,
e.g. a victim's answers to a scanner's probes, which differ only in their source port). Tunnel
and VLAN columns are left out on purpose: a packet seen once inside Geneve and once bare is the
same packet.

Residual risk. False positives (a distinct packet dropped) need two packets inside the window with
equal fingerprints and one equal endpoint: for TCP that is a retransmission faster than the window
that also repeats the IP id (Linux increments it per packet of a connected socket; a stack that
sends id 0 on DF packets, as RFC 6864 allows, loses that distinction for IPv4 TCP) or, over IPv6,
the option tail (timestamps tick every millisecond, SACK blocks move), i.e. a sub-millisecond fast
retransmit without timestamps; for UDP two datagrams of the same length whose first 8
payload bytes match, sharing an endpoint within the window (two DNS queries to the same server
with the same 16-bit id and length: about 1e-6 per query pair that close). False negatives (a
copy counted twice): packets whose both endpoints are rewritten in one pass (SNAT and DNAT
together, e.g. hairpin service traffic), copies further apart than the window, an IPv4 header
with options or an IPv6 extension header in front of TCP options (the option tail is then
located wrongly and includes the checksum), and a 2^-44-ish fingerprint collision with an
unrelated packet in between.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from analyzers._decoded import DecodedBatch, Status
from analyzers._gather import gather
from capture import FrameBatch

U64 = npt.NDArray[np.uint64]

DEFAULT_WINDOW_NS = 1_000_000
_MAX_TAIL = 1 << 18  # rows carried into the next batch (1 ms at 1 Mpps is ~1000)
_K = np.uint64(0x9E3779B97F4A7C15)
_KEEP_HEAD = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
_KEEP_TAIL = np.array(
    [0] + [((1 << 64) - 1) ^ ((1 << (8 * (8 - k))) - 1) for k in range(1, 9)], dtype=np.uint64
)
_LE64 = np.dtype("<u8")


def _mix(h: U64, word: U64) -> U64:
    h ^= word
    h *= _K
    h ^= h >> np.uint64(29)
    return h


def fingerprints(batch: FrameBatch, decoded: DecodedBatch) -> U64:
    """The NAT- and routing-invariant fingerprint of every row (meaningless on non-IP rows)."""
    u64 = np.uint64
    proto = decoded.proto
    icmp = ((proto == 1) | (proto == 58)).astype(u64)
    type_code = ((decoded.sport.astype(u64) << u64(8)) | decoded.dport) * icmp
    small = (
        (decoded.tcp_flags.astype(u64) << u64(48))
        | (decoded.tcp_win.astype(u64) << u64(32))
        | (type_code << u64(16))
        | (proto.astype(u64) << u64(8))
        | (decoded.frag.astype(u64) << u64(4))
        | decoded.ipver
    )
    h = (decoded.ip_len.astype(u64) << u64(32)) | decoded.ip_id
    h = _mix(h, (decoded.tcp_seq.astype(u64) << u64(32)) | decoded.tcp_ack)
    h = _mix(h, small)
    # IPv4 TCP is told apart by IP id, seq, ack, flags and window alone. Other rows also hash
    # bytes of the packet, read once (16 bytes around the payload start) for just those rows:
    # the end of the TCP options (IPv6 has no IP id; timestamps and SACK blocks move) and the
    # first payload bytes (UDP, ICMP), each masked to what the packet really has there.
    is_tcp = (proto == 6) & (decoded.status == Status.L4)
    rows = np.flatnonzero(~is_tcp | (decoded.ipver != 4))
    if rows.size:
        head, tail = _packet_bytes(batch, decoded, rows, is_tcp)
        h[rows] = _mix(_mix(h[rows], head), tail)
    # A last avalanche so that the top bits, which the duplicate search sorts on, depend on all.
    h ^= h >> u64(32)
    h *= _K
    h ^= h >> u64(29)
    return h


_ENDPOINT = ("src_hi", "src_lo", "sport", "dst_hi", "dst_lo", "dport")


def _packet_bytes(
    batch: FrameBatch,
    decoded: DecodedBatch,
    rows: npt.NDArray[np.intp],
    is_tcp: npt.NDArray[np.bool_],
) -> tuple[U64, U64]:
    """For ``rows``: the first payload bytes and the end of the TCP options, as masked words."""
    offsets = batch.offsets[rows]
    frame_end = offsets + np.minimum(batch.caplens[rows], batch.data.shape[0] - offsets)
    l4_off = decoded.l4_off[rows]
    l4_len = decoded.l4_len[rows].astype(np.int64)
    around = gather(batch.data, l4_off - 8, 16).view(_LE64).reshape(rows.size, 2)
    head_len = np.clip(np.minimum(l4_len, frame_end - l4_off), 0, 8)
    head = around[:, 1] & _KEEP_HEAD[head_len]
    headers = decoded.ip_len[rows].astype(np.int64) - l4_len
    opt_len = headers - np.where(decoded.ipver[rows] == 4, 40, 60)
    opt_len = np.clip(opt_len, 0, 8) * (is_tcp[rows] & (l4_off <= frame_end))
    tail = around[:, 0] & _KEEP_TAIL[opt_len]
    return head, tail


class _Tail:
    """The fingerprinted rows of earlier batches still inside the window, with their endpoints."""

    __slots__ = ("ends", "fp", "ts")

    def __init__(self) -> None:
        self.fp: U64 = np.zeros(0, np.uint64)
        self.ts: npt.NDArray[np.int64] = np.zeros(0, np.int64)
        self.ends: U64 = np.zeros((0, len(_ENDPOINT)), np.uint64)  # _ENDPOINT columns per row


class Deduplicator:
    """Marks the mirrored copies of a packet, across consecutive batches of one capture."""

    def __init__(self, window_ns: int = DEFAULT_WINDOW_NS) -> None:
        if window_ns < 0:
            raise ValueError(f"window_ns must be >= 0, not {window_ns}")
        self.window_ns = window_ns
        self._suppressed = 0
        self._tail = _Tail()

    @property
    def suppressed(self) -> int:
        """Copies suppressed so far (rows ``mask`` returned False for)."""
        return self._suppressed

    def mask(self, batch: FrameBatch, decoded: DecodedBatch) -> npt.NDArray[np.bool_]:
        """True for every row to keep: all but the second and later copies of a packet."""
        keep = np.ones(len(decoded), dtype=np.bool_)
        rows = np.flatnonzero(decoded.status <= Status.L3)
        if rows.size == 0:
            return keep
        tail = self._tail
        old = tail.fp.shape[0]
        every = fingerprints(batch, decoded)
        all_rows = rows.size == every.size
        fp = np.concatenate((tail.fp, every if all_rows else every[rows]))
        ts = np.concatenate((tail.ts, batch.ts_ns[rows]))
        later, earlier = self._pairs(fp, ts)
        fresh = later >= old
        later, earlier = later[fresh], earlier[fresh]
        # Bounded, so that a window set far too wide costs a miss or two, not memory per packet.
        recent = np.flatnonzero(ts >= int(ts.max()) - self.window_ns)[-_MAX_TAIL:]

        # Both endpoints of just the rows compared or carried over, as one matrix (combined
        # indices: tail rows first, then this batch's): a handful of numpy calls per batch
        # whatever its size, which is what a live batch of a few thousand frames is mostly made of
        k = later.size
        at = np.concatenate((later, earlier, recent))
        picked = rows[np.maximum(at - old, 0)]
        ends = np.stack(
            [getattr(decoded, name)[picked] for name in _ENDPOINT], axis=1, dtype=np.uint64
        )
        if old:
            from_tail = at < old
            ends[from_tail] = tail.ends[at[from_tail]]
        if k:
            same = ends[:k] == ends[k : 2 * k]
            src_addr = same[:, 0] & same[:, 1]
            dst_addr = same[:, 3] & same[:, 4]
            same_src = src_addr & same[:, 2]
            same_dst = dst_addr & same[:, 5]
            # NAT rewrites the other side's address (and maybe its port), never its port alone:
            # answers to one scanner port differ only in their source port and are distinct
            copy = (same_src & (same_dst | ~dst_addr)) | (same_dst & ~src_addr)
            dropped = rows[later[copy] - old]  # each row is "later" at most once
            keep[dropped] = False
            self._suppressed += int(dropped.size)

        next_tail = _Tail()
        next_tail.fp, next_tail.ts, next_tail.ends = fp[recent], ts[recent], ends[2 * k :]
        self._tail = next_tail
        return keep

    def _pairs(
        self, fp: U64, ts: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """(later, earlier) index pairs: same fingerprint, next to each other, inside the window."""
        m = fp.shape[0]
        # Sorting fingerprint bits with the row index packed below them finds, for every row,
        # the previous row with the same fingerprint: a plain sort is ~5x cheaper than argsort.
        bits = max(int(m - 1).bit_length(), 1)
        low = np.uint64((1 << bits) - 1)
        packed = np.sort((fp & ~low) | np.arange(m, dtype=np.uint64))
        same = (packed[1:] & ~low) == (packed[:-1] & ~low)
        later = (packed[1:][same] & low).astype(np.intp)
        earlier = (packed[:-1][same] & low).astype(np.intp)
        close = np.abs(ts[later] - ts[earlier]) <= self.window_ns
        return later[close], earlier[close]
