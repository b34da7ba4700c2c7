"""Packets of flows the table already holds, accounted one at a time in arrival order.

Most packets belong to a flow the table already tracks and change nothing of it but its counters,
its times and, for TCP, its direction's highest sequence end. For each such row one compiled loop
finds the key and its hash (``row_key``), probes the slot map once against the stored keys
(``find_by_key``), checks the flow's inactivity limit against its last packet, and updates the
flow in place: no grouping, no per-pass columns, no second lookup.

A row the loop cannot settle alone goes to the flow table's general pass (grouping, in-batch
ends, TCP state, DNS), and every later row of its flow in the batch goes with it (a per-slot
stamp of the batch), so each flow's packets are still accounted in arrival order and the records
are the general pass's to the byte. Those rows are:

- a TCP segment that is not steady (``_tcpsteady``: a control flag, a zero window, a
  retransmission, a hole, an ACK of unseen data, a direction's first data or first ACK), or of
  a connection closing, with a content gap open, or with an event still to report; TCP on port 53
  and TCP without a whole header;
- UDP to or from a DNS port (the DNS analyzer and its session timer);
- a flow not in the slot map (new, or living under its full key after a hash clash);
- a packet past its flow's inactivity limit (where the flow ends) or older than its flow's last
  packet (the general pass compares with the packet before, not the newest);
- a counter that would pass 32 bits (the general pass widens the column);
- a flow whose ATTEMPT event is still to be reported (when event sinks listen).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from analyzers._decoded import DecodedBatch, Status
from analyzers._flowcolumns import FlowColumns, passes_u32, stretched
from analyzers._flowemit import PENDING, SETTLED, FlowEventEmitter
from analyzers._flowindex import FlowIndex
from analyzers._flowkey import PROTO_TCP, PROTO_UDP, KeySource, canonical, key_source, row_key
from analyzers._serverports import dns_udp_port_table
from analyzers._slotmap import KeyColumns, find_by_key
from analyzers._tcpsteady import steady
from capture import FrameBatch, njit, njit_inline, prefetch, unowned

__all__ = ["KnownFlows"]

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
U16 = npt.NDArray[np.uint16]
U32 = npt.NDArray[np.uint32]
I32 = npt.NDArray[np.int32]
B = npt.NDArray[np.bool_]
_L4 = int(Status.L4)
_DNS = 53  # TCP on it carries DNS messages: the general pass parses them
_NO_GAPS = np.zeros(0, np.int64)
_AHEAD = 8  # rows between the one accounted and the one whose slot-map bucket is fetched


class KnownFlows:
    """The flow table's per-packet path for its known flows (see the module's docstring)."""

    def __init__(
        self,
        cols: FlowColumns,
        index: FlowIndex,
        emit: FlowEventEmitter,
        *,
        udp_idle_ns: int,
        icmp_idle_ns: int,
        tcp_idle_ns: int,
    ) -> None:
        self._cols = cols
        self._index = index
        self._emit = emit
        self._limits = np.array([udp_idle_ns, icmp_idle_ns, tcp_idle_ns], np.int64)
        self._dns_port = dns_udp_port_table()
        # per slot: the last batch a row of the flow went to the general pass in (zeroed pages
        # cost nothing: only flows that ever had such a row map theirs)
        self._stamp = np.zeros(cols.size, np.uint32)
        self._batch = 0

    def account(
        self, batch: FrameBatch, dec: DecodedBatch, rows: I64, *, events: bool
    ) -> tuple[I64, int]:
        """Account the rows of known flows among *rows* (arrival order); return the rest, in
        order, for the general pass, and how many rows were accounted here. *events*: whether
        a flow's pending ATTEMPT event keeps its rows out (event sinks listen)."""
        c = self._cols
        # a stamp equal to an old batch's after 2**32 batches only sends rows to the general
        # pass, which is always exact
        self._batch = (self._batch + 1) & 0xFFFF_FFFF or 1
        vals, keycols = self._index.probe_state()
        rest = np.empty(rows.shape[0], np.int64)
        # flows with a content gap still open: their segments go through the gap tracker
        gaps = np.sort(np.fromiter(c.gaps, np.int64, len(c.gaps))) if c.gaps else _NO_GAPS
        n_rest = _account_known(
            rows,
            key_source(dec),
            (batch.ts_ns, batch.wirelens, dec.ip_len, dec.l4_len),
            (vals, keycols),
            (c.orig_a, c.first, c.last, self._stamp, self._emit.flags),
            (c.pkts_f, c.l2_f, c.ipb_f, c.pay_f),
            (dec.tcp_flags, dec.tcp_seq, dec.tcp_ack, dec.tcp_win),
            (c.tcp_state_f, c.hist_seen_f, c.seq_ok_f, c.seq_max_f, c.close_ts, c.syn_ts, gaps),
            np.uint32(self._batch),
            (self._limits, events, self._dns_port),
            rest,
        )
        return rest[:n_rest], rows.shape[0] - n_rest


@njit
def _account_known(  # noqa: PLR0917 - a compiled kernel takes its columns positionally
    rows: I64,
    src: KeySource,
    sizes: tuple[I64, I64, U32, U32],
    index: tuple[I32, KeyColumns],
    flows: tuple[B, I64, I64, U32, npt.NDArray[np.uint8]],
    counters: tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any]],
    segments: tuple[U16, U32, U32, U16],
    tcp: tuple[U8, U8, B, I64, I64, I64, I64],
    batch_no: np.uint32,
    rules: tuple[I64, bool, B],
    rest: I64,
) -> int:
    """One pass over *rows* in arrival order; the rows left for the general pass go to *rest*,
    their number is returned."""
    ts_col, wire_col, ip_len_col, l4_len_col = sizes
    # the arrays handed to helpers per row, as views nobody counts (``capture.unowned``: they
    # are this kernel's arguments, held by the caller): counting them is most of a row's cost
    vals, (a_hi, a_lo, b_hi, b_lo, ports, meta_col) = index
    vals = unowned(vals)
    keycols = (
        unowned(a_hi), unowned(a_lo), unowned(b_hi), unowned(b_lo), unowned(ports),
        unowned(meta_col),
    )  # fmt: skip
    orig_a, first, last, stamp, pending = flows
    pkts, l2, ipb, pay = counters
    pkts, l2, ipb, pay = unowned(pkts), unowned(l2), unowned(ipb), unowned(pay)
    limits, events, dns_port = rules
    src_hi, src_lo, dst_hi, dst_lo, proto_col, status, sport, dport, vlan, tun_type, vni = src
    flags_col, seq_col, ack_col, win_col = segments
    state_f, seen_f, seq_ok_f, seq_max_f, close_ts, syn_ts, gaps = tcp
    state_f, seen_f = unowned(state_f), unowned(seen_f)
    seq_ok_f, seq_max_f = unowned(seq_ok_f), unowned(seq_max_f)
    # the columns are indexed by unsigned values: numba wraps a signed index round (a negative
    # one counts from the end), two instructions and a reload of the column's length from the
    # stack for every access, ~7 % of this loop
    n_rest = 0
    n = rows.shape[0]
    vmask = np.uint64(vals.shape[0] - 1)
    # each row's key is worked out _AHEAD rows early and its slot-map bucket fetched, so the
    # bucket's line is loading while the rows before it are accounted
    ahead = np.empty((_AHEAD, 4), np.uint64)  # sport, dport, meta, hash
    ahead_b = np.empty((_AHEAD, 2), np.bool_)  # ICMP, src is A
    for k in range(-_AHEAD, n):
        if k >= 0:  # this row's key, worked out _AHEAD rows ago (its slot is refilled below)
            q = k % _AHEAD
            sp, dp, meta, h = ahead[q, 0], ahead[q, 1], ahead[q, 2], ahead[q, 3]
            icmp, a = ahead_b[q, 0], ahead_b[q, 1]
        j = k + _AHEAD
        if j < n:
            rj = np.uint64(rows[j])
            q = j % _AHEAD
            ahead[q, 0], ahead[q, 1], ahead[q, 2], ahead[q, 3], ahead_b[q, 0], ahead_b[q, 1] = (
                row_key(
                    src_hi[rj], src_lo[rj], dst_hi[rj], dst_lo[rj], proto_col[rj],
                    status[rj] == _L4, sport[rj], dport[rj], vlan[rj], tun_type[rj], vni[rj],
                )
            )  # fmt: skip
            prefetch(vals, np.int64((ahead[q, 3] >> np.uint64(1)) & vmask))
        if k < 0:
            continue
        r = np.uint64(rows[k])
        p = proto_col[r]
        is_tcp = p == PROTO_TCP
        l4 = status[r] == _L4
        if is_tcp and (not l4 or sport[r] == _DNS or dport[r] == _DNS):
            rest[n_rest] = r
            n_rest += 1
            continue
        sh, sl, dh, dl = src_hi[r], src_lo[r], dst_hi[r], dst_lo[r]
        if p == PROTO_UDP and (dns_port[sp] or dns_port[dp]):
            rest[n_rest] = r
            n_rest += 1
            continue
        k0, k1, k2, k3, k4 = canonical(sh, sl, dh, dl, sp, dp, icmp, a)
        s = find_by_key(vals, h >> np.uint64(1), (k0, k1, k2, k3, k4, meta), keycols)
        if s < 0 or stamp[np.uint64(s)] == batch_no:
            rest[n_rest] = r
            n_rest += 1
            continue
        t = ts_col[r]
        su = np.uint64(s)
        prev = last[su]
        limit = limits[0] if p == PROTO_UDP else (limits[2] if is_tcp else limits[1])
        du = np.uint64(2) * su + np.uint64(a != orig_a[su])
        d = np.int64(du)
        wire = wire_col[r]
        ip_len = np.int64(ip_len_col[r])
        l4_len = np.int64(l4_len_col[r])
        settled, seq_end = True, np.int64(0)
        if is_tcp:
            # a connection closing, with an event still to report, or with a gap open is the
            # general pass's; of the others, only the steady segments are this loop's
            settled = not (
                close_ts[su] != 0
                or (events and syn_ts[su] != 0 and not pending[su] & SETTLED)
                or _holds(gaps, s)
            )
            if settled:
                settled, seq_end = steady(
                    flags_col[r], seq_col[r], ack_col[r], win_col[r], l4_len, d, state_f,
                    seen_f, seq_ok_f, seq_max_f,
                )  # fmt: skip
        if (
            not settled
            or (events and pending[su] & PENDING)
            or (prev > 0 and (t - prev > limit or t < prev))
            or passes_u32(pkts, du, np.int64(1))
            or passes_u32(l2, du, wire)
            or passes_u32(ipb, du, ip_len)
            or passes_u32(pay, du, l4_len)
        ):
            stamp[su] = batch_no  # the flow's later rows of the batch follow this one
            rest[n_rest] = r
            n_rest += 1
            continue
        pkts[du] += 1
        l2[du] += wire
        ipb[du] += ip_len
        pay[du] += l4_len
        first[su], last[su] = stretched(first[su], prev, t, t)
        if is_tcp:
            seq_max_f[du] = seq_end
    return n_rest


@njit_inline
def _holds(sorted_slots: I64, s: np.int64) -> bool:
    """Whether *s* is one of *sorted_slots*."""
    at = np.searchsorted(sorted_slots, s)
    return bool(at < sorted_slots.shape[0] and sorted_slots[at] == s)
