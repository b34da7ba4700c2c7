"""The flow table's per-flow state: numpy columns indexed by slot, and the free list over them.

Slots come from a free list over preallocated zeroed columns: untouched pages cost no memory, so
``max_flows`` sizes the address space, not the resident set. Per-(slot, direction) columns are
``(n, 2)`` with a flat view each (index ``slot * 2 + direction``): 1-D fancy indexing is the
cheap kind. The rare per-flow extras (long histories, DNS state) live in side dicts by slot.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

from analyzers._flowdns import DnsState
from analyzers._flowendpoints import EndpointColumn
from analyzers._flowids import FlowIds
from analyzers._lazyzeros import lazy_zeros
from analyzers._tcpgaps import GapTrack
from capture import njit, njit_inline

log = logging.getLogger(__name__)

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
_U32_MAX = 0xFFFF_FFFF
HIST_WIDTH = 12  # longer histories (rare: repeated letters) live in ``hist_long``


class FlowColumns:
    """Every flow's key, counters and TCP state, one row per slot, for at most *n* flows."""

    def __init__(self, n: int) -> None:
        self.size = n
        # np.zeros maps lazily: a column costs memory only for the slots ever used (past its
        # first 2 MiB boundary in numpy's huge pages; the few columns only flow creation and the
        # end touch are in small pages throughout, see _lazyzeros)
        self.ahi = np.zeros(n, np.uint64)
        self.bhi = np.zeros(n, np.uint64)
        # the low address halves, ports and meta: one 32-byte row a slot, in one cache line, so
        # that a known flow's key check loads one line where four columns loaded four (the
        # high halves stay columns of their own: zero for IPv4, never mapped, the zero page read)
        self.key_rows = _line_aligned_zeros(n, 4)
        self.alo: U64 = self.key_rows[:, 0]
        self.blo: U64 = self.key_rows[:, 1]
        self.ports: U64 = self.key_rows[:, 2]  # a's port << 16 | b's (ICMP: type class, code)
        self.meta: U64 = self.key_rows[:, 3]
        self.active = lazy_zeros(n, np.bool_)
        self.orig_a = np.zeros(n, np.bool_)
        self.ipver = lazy_zeros(n, np.uint8)
        self.proto = np.zeros(n, np.uint8)
        self.fid = FlowIds(n)
        self.first = np.zeros(n, np.int64)
        self.last = np.zeros(n, np.int64)
        # 32-bit packet counts until one would wrap (``add_sums``): 4 G packets of one
        # direction between two records, i.e. 2.4 Mpps for the default active timeout
        self.pkts: npt.NDArray[np.uint32] | I64 = np.zeros((n, 2), np.uint32)
        # bytes (wire, IP, payload) likewise 32-bit until a direction passes 4 GiB between two
        # records (``add_sums``): 24 bytes a flow less at a million flows
        self.l2: npt.NDArray[np.uint32] | I64 = np.zeros((n, 2), np.uint32)
        self.ipb: npt.NDArray[np.uint32] | I64 = np.zeros((n, 2), np.uint32)
        self.pay: npt.NDArray[np.uint32] | I64 = np.zeros((n, 2), np.uint32)
        self.pkts_f: npt.NDArray[np.uint32] | I64 = self.pkts.reshape(-1)
        self.l2_f: npt.NDArray[np.uint32] | I64 = self.l2.reshape(-1)
        self.ipb_f: npt.NDArray[np.uint32] | I64 = self.ipb.reshape(-1)
        self.pay_f: npt.NDArray[np.uint32] | I64 = self.pay.reshape(-1)
        # TCP, Zeek's endpoint state machine (``_tcpstate``): plain numeric columns, per
        # (slot, direction) where the state belongs to an endpoint, so a compiled per-packet
        # loop can use them as they are
        self.tcp_state = np.zeros((n, 2), np.uint8)  # TCP_ENDPOINT_* now
        self.tcp_prev_state = np.zeros((n, 2), np.uint8)  # the state before its last change
        self.hist_seen = np.zeros((n, 2), np.uint8)  # H_* bits: history letters logged once
        # the last SYN, FIN and RST per endpoint as the sequence number just past it
        # (``(seq + 1) mod 2**32``, FIN: ``+ len``; 0: none): a repeated letter needs a new one
        self.syn_mark = np.zeros((n, 2), np.uint32)
        self.fin_mark = np.zeros((n, 2), np.uint32)
        self.rst_mark = np.zeros((n, 2), np.uint32)
        self.zero_win = np.zeros((n, 2), np.uint32)  # zero-window segments, Zeek's way
        self.rst_count = np.zeros((n, 2), np.uint32)  # RST segments sent
        # handshake as seen at the mirror, ns + 1 (0: not seen; zeroed pages cost nothing):
        # the originator's first SYN, the responder's first SYN-ACK, the originator's first ACK
        self.syn_ts = np.zeros(n, np.int64)
        self.synack_ts = np.zeros(n, np.int64)
        self.ack_ts = np.zeros(n, np.int64)
        # Zeek's did_close per endpoint (its first FIN or RST), and when the close completed
        # (ns, 0: not yet): the flow ends the close delay after it
        self.did_close = np.zeros((n, 2), np.uint8)
        self.close_ts = np.zeros(n, np.int64)
        self.tcp_state_f = self.tcp_state.reshape(-1)
        self.hist_seen_f = self.hist_seen.reshape(-1)
        self.hist_bytes = np.zeros((n, HIST_WIDTH), np.uint8)  # the compiled view
        self.hist = self.hist_bytes.view(f"S{HIST_WIDTH}").reshape(n)
        self.retx = np.zeros((n, 2), np.uint32)
        self.retx_f = self.retx.reshape(-1)
        self.seq_ok = np.zeros((n, 2), np.bool_)
        self.seq_ok_f = self.seq_ok.reshape(-1)
        self.seq_max = np.zeros((n, 2), np.int64)  # unwrapped end of sequence space seen
        self.seq_max_f = self.seq_max.reshape(-1)
        self.seq_start = np.zeros((n, 2), np.uint32)  # first sequence number (same space)
        self.seq_start_f = self.seq_start.reshape(-1)
        # Zeek's content gaps per direction (``_tcpgaps``): bytes missed and gaps reported
        self.missed = np.zeros((n, 2), np.int64)
        self.gap_count = np.zeros((n, 2), np.uint32)
        self.ep = EndpointColumn(n)
        self.hist_long: dict[int, str] = {}
        self.dns: dict[int, DnsState] = {}
        self.gaps: dict[int, GapTrack] = {}  # flows with a hole or an ACK past the data
        self.hwm = 0  # slots at and above were never used
        self._free = np.empty(0, np.int64)

    def set_keys(  # noqa: PLR0917 - the canonical key's parts, as FlowKeys.canonical gives them
        self, s: I64, a_hi: U64, a_lo: U64, b_hi: U64, b_lo: U64, ports: U64, meta: U64
    ) -> None:
        """Slots *s* hold the flows of canonical keys (a, b, ports, meta)."""
        # the high halves are zero for IPv4 (mapped addresses fit the low half): written only
        # where not, so a table of IPv4 flows never maps their pages
        _zero(s, self.ahi, self.bhi)
        v6 = (a_hi | b_hi) != 0
        if v6.any():
            self.ahi[s[v6]] = a_hi[v6]
            self.bhi[s[v6]] = b_hi[v6]
        self.alo[s] = a_lo
        self.blo[s] = b_lo
        self.ports[s] = ports
        self.meta[s] = meta

    def add_sums(self, sums: I64) -> None:
        """Add a pass's per-(slot, direction) sums: rows of (flat index ``slot * 2 + direction``,
        packets, wire bytes, IP bytes, payload bytes), the indices distinct. A counter column a
        sum would take past 2**32 - 1 is widened to 64 bits for good first."""
        while True:
            wraps = _add_sums(self.pkts_f, self.l2_f, self.ipb_f, self.pay_f, sums)
            if wraps < 0:
                return
            self._widen(_COUNTERS[wraps])

    def stretch_times(self, s: I64, times: I64) -> None:
        """Widen the (first, last) packet times of the flows at slots *s* (distinct) to take in
        *times*, rows of (earliest, latest) of a pass; a flow with no packet yet takes them."""
        _stretch_times(self.first, self.last, s, times)

    def _widen(self, name: str) -> None:
        col = getattr(self, name)
        wide = np.zeros(col.shape, np.int64)  # unused slots stay unmapped
        wide[: self.hwm] = col[: self.hwm]
        setattr(self, name, wide)
        setattr(self, f"{name}_f", wide.reshape(-1))
        log.info("flow %s counters widened to 64 bits (a flow passed 2**32)", name)

    def free_count(self) -> int:
        return self._free.shape[0] + (self.size - self.hwm)

    def take(self, k: int) -> I64:
        """*k* slots (at most ``free_count()``): freed ones first, then never-used ones."""
        take = min(k, self._free.shape[0])
        out = np.empty(k, np.int64)
        if take:
            out[:take] = self._free[-take:]
            self._free = self._free[:-take]
        rest = k - take
        if rest:
            out[take:] = np.arange(self.hwm, self.hwm + rest)
            self.hwm += rest
        return out

    def release(self, s: I64) -> None:
        """Slots *s* end: inactive, their extras dropped, back on the free list."""
        self.active[s] = False
        self.forget(s)
        self.forget_gaps(s)
        self.ep.clear(s)
        self._free = np.concatenate([self._free, s])

    def new_ids(self, s: I64) -> None:
        """Number slots *s* as new flows (the sequence ``make_uids`` turns into uids)."""
        self.fid.number(s, self.active[: self.hwm])

    def reset_counters(self, s: I64) -> None:
        """Zero what a flow record reports, keeping the key, direction and TCP state machine."""
        _zero(s, self.first, self.last, self.pkts, self.l2, self.ipb, self.pay, self.hist_bytes)
        _zero(s, self.retx, self.missed, self.gap_count, self.hist_seen, self.zero_win)
        _zero(s, self.rst_count, self.syn_ts, self.synack_ts, self.ack_ts)
        self.forget(s)

    def reset_tcp(self, s: I64) -> None:
        """Back to the TCP state of a flow nothing was seen of (new flows)."""
        _zero(s, self.tcp_state, self.tcp_prev_state, self.syn_mark, self.fin_mark)
        _zero(s, self.rst_mark, self.did_close, self.close_ts, self.seq_ok, self.seq_max)
        _zero(s, self.seq_start)
        self.forget_gaps(s)

    def forget(self, s: I64) -> None:
        """Drop the side-dict extras (long histories, DNS state) of slots *s*."""
        if self.hist_long or self.dns:
            for slot in s.tolist():
                self.hist_long.pop(slot, None)
                self.dns.pop(slot, None)

    def forget_gaps(self, s: I64) -> None:
        """Drop the pending holes of slots *s* (their TCP sequence state ends)."""
        if self.gaps:
            for slot in s.tolist():
                self.gaps.pop(slot, None)


#: The counter columns ``add_sums`` adds to, in the order of a sum row's values.
_COUNTERS = ("pkts", "l2", "ipb", "pay")


@njit
def _add_sums(
    pkts: npt.NDArray[Any], l2: npt.NDArray[Any], ipb: npt.NDArray[Any], pay: npt.NDArray[Any],
    sums: I64,
) -> int:  # fmt: skip
    """Add *sums* to the four flat counter columns; or, writing nothing, return the first
    column (0-3) a sum would take past what a 32-bit column holds. -1: added."""
    if _wraps(pkts, sums, 1):
        return 0
    if _wraps(l2, sums, 2):
        return 1
    if _wraps(ipb, sums, 3):
        return 2
    if _wraps(pay, sums, 4):
        return 3
    for g in range(sums.shape[0]):
        i = sums[g, 0]
        pkts[i] += sums[g, 1]
        l2[i] += sums[g, 2]
        ipb[i] += sums[g, 3]
        pay[i] += sums[g, 4]
    return -1


@njit
def _wraps(col: npt.NDArray[Any], sums: I64, value: int) -> bool:
    """Whether a sum in column *value* of *sums* takes a 32-bit *col* past 2**32 - 1."""
    wraps = False
    for g in range(sums.shape[0]):
        wraps |= passes_u32(col, sums[g, 0], sums[g, value])
    return wraps


@njit_inline
def passes_u32(col: npt.NDArray[Any], i: np.int64 | np.uint64, add: np.int64) -> bool:
    """Whether adding *add* takes a 32-bit counter column *col*'s entry *i* past 2**32 - 1
    (``add_sums`` then widens the column; a 64-bit column never passes)."""
    return bool(col.itemsize == 4 and np.int64(col[i]) + add > _U32_MAX)


@njit_inline
def stretched(
    first: np.int64, last: np.int64, t0: np.int64, t1: np.int64
) -> tuple[np.int64, np.int64]:
    """A flow's (first, last) packet times widened to take in [*t0*, *t1*]; a flow with no
    packet yet (first 0) takes them."""
    return (t0 if first == 0 else min(first, t0)), max(last, t1)


@njit
def _stretch_times(first: I64, last: I64, s: I64, times: I64) -> None:
    for k in range(s.shape[0]):
        slot = s[k]
        first[slot], last[slot] = stretched(first[slot], last[slot], times[k, 0], times[k, 1])


def _line_aligned_zeros(n: int, width: int) -> U64:
    """Zeroed ``(n, width)`` uint64 rows whose first row starts a 64-byte cache line (a 32-byte
    row then never straddles two lines); mapped lazily like ``np.zeros``."""
    buf = np.zeros(n * width + 8, np.uint64)
    skip = (-buf.ctypes.data % 64) // 8
    rows: U64 = buf[skip : skip + n * width].reshape(n, width)
    return rows


def _zero(s: I64, *cols: npt.NDArray[Any]) -> None:
    """Zero the rows *s* of each of *cols* that are not zero already.

    Most of a flow's columns stay zero for its whole life (retransmissions, gaps, RSTs, zero
    windows, the close): writing zeros over zeros would map a page of every such column for
    every flow, where reading a never-written page maps none.
    """
    for col in cols:
        _zero_rows(col.reshape(col.shape[0], -1), s)


@njit
def _zero_rows(col: npt.NDArray[Any], s: I64) -> None:
    for k in range(s.shape[0]):
        row = s[k]
        for j in range(col.shape[1]):
            if col[row, j]:
                col[row, :] = 0
                break
