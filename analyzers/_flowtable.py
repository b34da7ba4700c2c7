"""The bidirectional flow table: per-flow state in numpy columns, updated a batch at a time.

Per batch: canonical keys and a 63-bit hash per row (``_flowkey``), one stable sort that groups
rows by flow and direction while keeping time order inside each group, a dict lookup per *unique*
flow of the batch (not per packet), then per-group sums with ``np.add.reduceat`` into columns
indexed by slot. TCP retransmissions are a grouped running maximum of sequence ends. Only the
segments that can change Zeek's state or history go through the scalar ``TcpScratch`` path, and
only DNS payloads are parsed. Flows become ``FlowRecord`` objects only when they end.

Slots come from a free list over preallocated zeroed columns: untouched pages cost no memory, so
``max_flows`` sizes the address space, not the resident set.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from analyzers._decoded import DecodedBatch, Status
from analyzers._dns import parse_dns
from analyzers._flowkey import (
    PROTO_ICMP,
    PROTO_ICMP6,
    PROTO_TCP,
    PROTO_UDP,
    FlowKeys,
    flow_keys,
)
from analyzers._identity import EndpointKind, IdentityMap
from analyzers._records import DnsStats, FlowRecord, FlowSink, TcpStats, make_uids
from analyzers._slotmap import SlotMap
from analyzers._tcpstate import (
    ACK,
    CLOSED,
    FIN,
    H_ACK,
    H_DATA,
    H_FIN,
    H_SYN,
    INACTIVE,
    RESET,
    RESP_SHIFT,
    RST,
    SYN,
    TCP_WORDS,
    TcpScratch,
    conn_state,
)
from capture._batch import FrameBatch

log = logging.getLogger(__name__)

I64 = npt.NDArray[np.int64]
END_REASONS = ("idle", "active", "end", "evicted", "flush")
_HIST_WIDTH = 16  # longer histories (rare: repeated letters) live in a side dict
_POW10 = np.array([10**i for i in range(10)], dtype=np.int64)
_NS = 1_000_000_000
_L4 = int(Status.L4)  # a plain int: comparing a column with an IntEnum costs a conversion
_DNS_PENDING_MAX = 64
_SERVICES = {53: "dns", 80: "http", 443: "ssl", 8080: "http"}


@dataclass(slots=True)
class _DnsState:
    query: str | None = None
    qtype: int | None = None
    rcode: int | None = None
    latency_ns: int | None = None
    queries: int = 0
    responses: int = 0
    pending: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FlowTableCounters:
    """Cumulative counters since the table was created."""

    flows_created: int
    flows_ended: dict[str, int]  # by end_reason
    flows_evicted: int
    flows_active: int
    packets_counted: int
    packets_not_ip: int
    dns_unparsed: int
    hash_collisions: int


@dataclass(frozen=True, slots=True)
class ActiveFlows:
    """A copy of the in-flight flows' counters (what a metrics scrape reads); index i = one flow."""

    proto: npt.NDArray[np.uint8]
    orig_pkts: I64
    resp_pkts: I64
    orig_l2_bytes: I64
    resp_l2_bytes: I64
    orig_ip_bytes: I64
    resp_ip_bytes: I64
    first_ts_ns: I64
    last_ts_ns: I64
    orig: npt.NDArray[np.object_]  # Endpoint per flow
    resp: npt.NDArray[np.object_]
    # TCP and DNS health so far, the same counts the flow's record will carry (0 for other
    # protocols); -1 where a value is not known yet.
    retrans_orig: I64
    retrans_resp: I64
    rst_orig: I64
    rst_resp: I64
    zero_win_orig: I64
    zero_win_resp: I64
    handshake_rtt_ns: I64  # SYN to the originator's first ACK; -1 until the handshake completed
    dns_queries: I64
    dns_responses: I64
    dns_rcode: I64  # of the last response; -1 without one
    dns_latency_ns: I64  # first response matched by transaction id; -1 without one

    def __len__(self) -> int:
        return int(self.proto.shape[0])


def _keys(hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]) -> list[int]:
    """128-bit address keys (``hi << 64 | lo``, the identity map's form) as Python ints."""
    return [(h << 64) | x for h, x in zip(hi.tolist(), lo.tolist(), strict=True)]


def _key_str(key: int) -> str:
    if (key >> 32) == 0xFFFF:
        return socket.inet_ntop(socket.AF_INET, (key & 0xFFFFFFFF).to_bytes(4, "big"))
    return socket.inet_ntop(socket.AF_INET6, key.to_bytes(16, "big"))


def _proto_name(proto: int) -> str:
    if proto == PROTO_TCP:
        return "tcp"
    if proto == PROTO_UDP:
        return "udp"
    if proto in (PROTO_ICMP, PROTO_ICMP6):
        return "icmp"
    return str(proto)


class FlowTable:
    """Bidirectional flows with Zeek conn.log semantics, fed by decoded batches.

    Not thread-safe for writers: one worker calls ``process``/``expire``/``flush``. Readers
    (``active_view``, ``counters``) may run in another thread; they take a short lock.
    """

    def __init__(
        self,
        identity: IdentityMap,
        *,
        idle_timeout_s: float = 120.0,
        udp_idle_timeout_s: float = 60.0,
        icmp_idle_timeout_s: float = 60.0,
        tcp_closed_timeout_s: float = 5.0,
        active_timeout_s: float = 1800.0,
        max_flows: int = 2_000_000,
        on_ended: Callable[[list[FlowRecord]], None] | Sequence[FlowSink] | None = None,
        node: str = "",
        uid_seed: bytes | None = None,
    ) -> None:
        if max_flows < 1:
            raise ValueError("max_flows must be at least 1")
        self._identity = identity
        self._idle_ns = int(idle_timeout_s * _NS)
        self._udp_idle_ns = int(udp_idle_timeout_s * _NS)
        self._icmp_idle_ns = int(icmp_idle_timeout_s * _NS)
        self._closed_ns = int(tcp_closed_timeout_s * _NS)
        self._active_ns = int(active_timeout_s * _NS)
        self._max = max_flows
        self._node = node
        self._seed = uid_seed if uid_seed is not None else os.urandom(16)
        if on_ended is None:
            self._sinks: list[Callable[[list[FlowRecord]], None]] = []
        elif callable(on_ended):
            self._sinks = [on_ended]
        else:
            self._sinks = [s.on_flows_ended for s in on_ended]
        self._lock = threading.Lock()
        n = max_flows
        # np.zeros maps lazily: a column costs memory only for the slots ever used
        self._hash = np.zeros(n, np.uint64)
        self._ahi = np.zeros(n, np.uint64)
        self._alo = np.zeros(n, np.uint64)
        self._bhi = np.zeros(n, np.uint64)
        self._blo = np.zeros(n, np.uint64)
        self._ports = np.zeros(n, np.uint32)
        self._meta = np.zeros(n, np.uint64)
        self._active = np.zeros(n, np.bool_)
        self._orig_a = np.zeros(n, np.bool_)
        self._ipver = np.zeros(n, np.uint8)
        self._proto = np.zeros(n, np.uint8)
        self._fid = np.zeros(n, np.int64)
        self._first = np.zeros(n, np.int64)
        self._last = np.zeros(n, np.int64)
        self._pkts = np.zeros((n, 2), np.int64)
        self._l2 = np.zeros((n, 2), np.int64)
        self._ipb = np.zeros((n, 2), np.int64)
        self._pay = np.zeros((n, 2), np.int64)
        # flat views, index slot * 2 + direction: 1-D fancy indexing is the cheap kind
        self._pkts_f = self._pkts.reshape(-1)
        self._l2_f = self._l2.reshape(-1)
        self._ipb_f = self._ipb.reshape(-1)
        self._pay_f = self._pay.reshape(-1)
        # TCP
        self._tcpm = np.zeros((n, TCP_WORDS), np.uint32)  # the scalar path's state, a row a slot
        self._tstate = self._tcpm[:, 0]  # views: endpoint states packed, history bits seen
        self._hseen = self._tcpm[:, 1]
        self._hist = np.zeros(n, f"S{_HIST_WIDTH}")
        self._retx = np.zeros((n, 2), np.uint32)
        self._retx_f = self._retx.reshape(-1)
        self._seq_ok = np.zeros((n, 2), np.bool_)
        self._seq_ok_f = self._seq_ok.reshape(-1)
        self._seq_max = np.zeros((n, 2), np.int64)  # unwrapped end of sequence space seen
        self._seq_max_f = self._seq_max.reshape(-1)
        self._seq_start = np.zeros((n, 2), np.uint32)  # first sequence number (same space)
        self._seq_start_f = self._seq_start.reshape(-1)
        self._ep = np.empty((n, 2), dtype=object)
        self._map = SlotMap()
        self._collide: dict[tuple[int, ...], int] = {}
        self._collide_slots: set[int] = set()
        self._hist_long: dict[int, str] = {}
        self._dns: dict[int, _DnsState] = {}
        self._free = np.empty(0, np.int64)
        self._hwm = 0
        self._next_fid = 0
        self._n_active = 0
        self._created = 0
        self._ended = dict.fromkeys(END_REASONS, 0)
        self._evicted = 0
        self._pkts_counted = 0
        self._not_ip = 0
        self._dns_bad = 0
        self._collisions = 0
        self._pending: list[FlowRecord] = []  # evicted while processing, delivered after

    # ------------------------------------------------------------------ readers
    def __len__(self) -> int:
        return self._n_active

    def counters(self) -> FlowTableCounters:
        with self._lock:
            return FlowTableCounters(
                flows_created=self._created,
                flows_ended=dict(self._ended),
                flows_evicted=self._evicted,
                flows_active=self._n_active,
                packets_counted=self._pkts_counted,
                packets_not_ip=self._not_ip,
                dns_unparsed=self._dns_bad,
                hash_collisions=self._collisions,
            )

    def active_view(self) -> ActiveFlows:
        """Copy the counters of every in-flight flow.

        Under the lock only contiguous prefixes are copied (memcpy speed, so the hot path waits
        for milliseconds even at a million flows); picking the active rows happens after.
        """
        with self._lock:
            hwm = self._hwm
            active = self._active[:hwm].copy()
            proto = self._proto[:hwm].copy()
            pkts = self._pkts[:hwm].copy()
            l2 = self._l2[:hwm].copy()
            ipb = self._ipb[:hwm].copy()
            first = self._first[:hwm].copy()
            last = self._last[:hwm].copy()
            ep = self._ep[:hwm].copy()
            retx_raw = self._retx[:hwm].copy()
            tcpm_raw = self._tcpm[:hwm, 8:17].copy()  # zero windows, RSTs, handshake times
            dns = list(self._dns.items()) if self._dns else []
        s = np.flatnonzero(active)
        retx = retx_raw[s].astype(np.int64)
        tcpm = tcpm_raw[s].astype(np.int64)
        syn, synack, ack = (tcpm[:, k] | (tcpm[:, k + 1] << 32) for k in (3, 5, 7))
        dns_cols = np.zeros((hwm, 4), np.int64)
        dns_cols[:, 2:] = -1
        for slot, d in dns:  # only flows on port 53 have DNS state: few
            dns_cols[slot] = (
                d.queries,
                d.responses,
                -1 if d.rcode is None else d.rcode,
                -1 if d.latency_ns is None else d.latency_ns,
            )
        dns_cols = dns_cols[s]
        return ActiveFlows(
            proto=proto[s],
            orig_pkts=pkts[s, 0],
            resp_pkts=pkts[s, 1],
            orig_l2_bytes=l2[s, 0],
            resp_l2_bytes=l2[s, 1],
            orig_ip_bytes=ipb[s, 0],
            resp_ip_bytes=ipb[s, 1],
            first_ts_ns=first[s],
            last_ts_ns=last[s],
            orig=ep[s, 0],
            resp=ep[s, 1],
            retrans_orig=retx[:, 0],
            retrans_resp=retx[:, 1],
            rst_orig=tcpm[:, 2] & 0xFFFF,
            rst_resp=tcpm[:, 2] >> 16,
            zero_win_orig=tcpm[:, 0],
            zero_win_resp=tcpm[:, 1],
            handshake_rtt_ns=np.where((syn > 0) & (synack > 0) & (ack > 0), ack - syn, -1),
            dns_queries=dns_cols[:, 0],
            dns_responses=dns_cols[:, 1],
            dns_rcode=dns_cols[:, 2],
            dns_latency_ns=dns_cols[:, 3],
        )

    # ------------------------------------------------------------------ hot path
    def process(
        self, batch: FrameBatch, dec: DecodedBatch, keep: npt.NDArray[Any] | None = None
    ) -> None:
        """Account every row of *dec* (or the rows *keep* selects: a bool mask or indices)."""
        status = dec.status
        ip_rows = status <= int(Status.L3)
        if keep is not None:
            keep_mask = keep if keep.dtype == np.bool_ else np.isin(np.arange(len(dec)), keep)
            ip_rows = ip_rows & keep_mask
            not_ip = int(np.count_nonzero((status == Status.NON_IP) & keep_mask))
        else:
            not_ip = int(np.count_nonzero(status == Status.NON_IP))
        rows = np.flatnonzero(ip_rows)
        with self._lock:
            self._not_ip += not_ip
            if rows.size:
                self._process_rows(batch, dec, rows)
            pending, self._pending = self._pending, []
        self._deliver(pending)

    def _process_rows(self, batch: FrameBatch, dec: DecodedBatch, rows: I64) -> None:
        # rows whose flow shares its 63-bit hash with another flow of the same batch come back
        # from a pass and go through another one, until none is left: grouping stays exact
        # a pass never sees more rows than max_flows, so the flows it touches always fit
        for start in range(0, rows.shape[0], self._max):
            chunk = rows[start : start + self._max]
            while chunk.size:
                chunk = self._pass(batch, dec, chunk)

    def _pass(self, batch: FrameBatch, dec: DecodedBatch, rows: I64) -> I64:
        """Account *rows*; return the rows it had to leave out (an in-batch hash clash)."""
        keys = flow_keys(dec, rows)
        sort_key = keys.hash63 | keys.src_is_a.view(np.uint8).astype(np.uint64)
        # an unstable sort groups rows by (flow, direction); a second sort of small integers
        # (group, row) restores arrival order inside each group — cheaper than one stable sort
        perm = np.argsort(sort_key)
        hs = sort_key[perm]
        n = hs.shape[0]
        hflow = hs >> np.uint64(1)
        flow_break = np.empty(n, np.bool_)
        flow_break[0] = True
        np.not_equal(hflow[1:], hflow[:-1], out=flow_break[1:])
        grp_break = np.empty(n, np.bool_)
        grp_break[0] = True
        np.not_equal(hs[1:], hs[:-1], out=grp_break[1:])
        order = ((np.cumsum(grp_break) - 1) << 32) | perm
        order.sort()
        perm = order & 0xFFFFFFFF
        fstart = np.flatnonzero(flow_break)
        gstart = np.flatnonzero(grp_break)
        flow_of = np.cumsum(flow_break) - 1  # per sorted position
        if self._clashes(keys, perm, gstart, grp_break, flow_of):
            # keep whole flows together: the flow each hash group starts with goes now, in
            # arrival order; every other flow of the group waits for the next pass
            canon = keys.canonical(perm)
            rep = fstart[flow_of]
            same = np.ones(n, np.bool_)
            for c in canon:
                same &= c == c[rep]
            self._pass(batch, dec, rows[np.sort(perm[same])])
            return rows[np.sort(perm[~same])]
        first_pos = np.minimum.reduceat(perm, fstart)  # time-first row of each flow (index in rows)
        slots = self._lookup(keys, hflow[fstart], first_pos, dec)
        slot_sorted = slots[flow_of]
        src_a_sorted = keys.src_is_a[perm]
        dir_sorted = (src_a_sorted != self._orig_a[slot_sorted]).astype(np.intp)  # 0 = orig
        rsorted = rows[perm]
        ts = batch.ts_ns[rsorted]
        # per-flow time bounds
        fmin = np.minimum.reduceat(ts, fstart)
        fmax = np.maximum.reduceat(ts, fstart)
        cur_first = self._first[slots]
        self._first[slots] = np.where(cur_first == 0, fmin, np.minimum(cur_first, fmin))
        self._last[slots] = np.maximum(self._last[slots], fmax)
        # per-(flow, direction) sums
        gi = slot_sorted[gstart] * 2 + dir_sorted[gstart]  # flat (slot, direction) index
        counts = np.diff(np.append(gstart, n))
        self._pkts_f[gi] += counts
        self._l2_f[gi] += np.add.reduceat(batch.wirelens[rsorted], gstart)
        self._ipb_f[gi] += np.add.reduceat(dec.ip_len[rsorted].astype(np.int64), gstart)
        l4len = dec.l4_len[rsorted].astype(np.int64)
        self._pay_f[gi] += np.add.reduceat(l4len, gstart)
        self._pkts_counted += n
        proto = dec.proto[rsorted]
        l4 = dec.status[rsorted] == _L4
        tcp = l4 & (proto == PROTO_TCP)
        if tcp.any():
            self._tcp(dec, rsorted, tcp, slot_sorted, dir_sorted, grp_break, ts, l4len)
        port53 = (keys.sport == 53) | (keys.dport == 53)
        if port53.any():
            p53 = port53[perm]
            dns = p53 & l4 & ((proto == PROTO_UDP) | tcp) & (l4len > 0)
            if dns.any():
                self._dns_rows(batch, dec, rsorted, dns, slot_sorted, ts, tcp)
        return rows[:0]

    @staticmethod
    def _clashes(
        keys: FlowKeys,
        perm: I64,
        gstart: I64,
        grp_break: npt.NDArray[np.bool_],
        flow_of: I64,
    ) -> bool:
        """Whether some hash group of the batch holds more than one flow.

        Rows of one (flow, direction) group have identical header fields; the two directions of
        a flow have the same canonical key. Anything else is a different flow with the same hash.
        Rows of a group are adjacent in sorted order, so "all equal to the group's first row" is
        checked as "each equal to its predecessor inside the group" (no gathers).
        """
        inside = ~grp_break[1:]
        if keys.v4_only:
            cols = [keys.src_ord, keys.dst_ord, keys.meta]  # address and port packed
            if keys.icmp.any():
                cols += [keys.sport, keys.dport]
        else:
            cols = [keys.src_lo, keys.dst_lo, keys.sport, keys.dport, keys.src_hi, keys.dst_hi]
            cols.append(keys.meta)
        for col in cols:
            v = col[perm]
            if (inside & (v[1:] != v[:-1])).any():
                return True
        gflow = flow_of[gstart]
        k = np.flatnonzero(gflow[1:] == gflow[:-1])
        if k.size:
            ca = keys.canonical(perm[gstart[k]])
            cb = keys.canonical(perm[gstart[k + 1]])
            mism = np.zeros(k.size, np.bool_)
            for x, y in zip(ca, cb, strict=True):
                mism |= x != y
            if mism.any():
                return True
        return False

    def _lookup(
        self, keys: FlowKeys, uh: npt.NDArray[np.uint64], first_pos: I64, dec: DecodedBatch
    ) -> I64:
        """Slot of each unique flow of the batch, creating slots for new flows."""
        slots = self._map.get(uh + np.uint64(1))
        found = slots >= 0
        old = np.flatnonzero(found)
        if old.size:
            # the hash found a slot: make sure it is the same flow (exact, not probabilistic)
            s = slots[old]
            a_hi, a_lo, b_hi, b_lo, ports, meta = keys.canonical(first_pos[old])
            same = (
                (self._ahi[s] == a_hi)
                & (self._alo[s] == a_lo)
                & (self._bhi[s] == b_hi)
                & (self._blo[s] == b_lo)
                & (self._ports[s] == ports)
                & (self._meta[s] == meta)
            )
            if not same.all():
                slots[old[~same]] = -1
        new = np.flatnonzero(slots < 0)
        if new.size == 0:
            return slots
        need_arr = new
        if self._collide or found[new].any():
            # a hash clash: the flow may already live under its full key
            need: list[int] = []
            for i in new.tolist():
                hit = self._collide.get(self._full_key(keys, int(first_pos[i])))
                if hit is None:
                    need.append(i)
                else:
                    slots[i] = hit
            if not need:
                return slots
            need_arr = np.array(need, dtype=np.int64)
        # uids follow arrival order, so they do not depend on where batches happen to split
        need_arr = need_arr[np.argsort(first_pos[need_arr], kind="stable")]
        new_slots = self._alloc(need_arr.size, busy=slots[slots >= 0])
        slots[need_arr] = new_slots
        self._init_slots(keys, need_arr, new_slots, uh, first_pos, found[need_arr], dec)
        return slots

    @staticmethod
    def _full_key(keys: FlowKeys, r: int) -> tuple[int, ...]:
        return tuple(int(c[0]) for c in keys.canonical(np.array([r], np.int64)))

    def _alloc(self, k: int, busy: I64) -> I64:
        """*k* free slots, evicting idle flows if needed (never the *busy* ones of this pass)."""
        free_n = self._free.shape[0] + (self._max - self._hwm)
        if free_n < k:
            self._evict(k - free_n, busy)
        take = min(k, self._free.shape[0])
        out = np.empty(k, np.int64)
        if take:
            out[:take] = self._free[-take:]
            self._free = self._free[:-take]
        rest = k - take
        if rest:
            out[take:] = np.arange(self._hwm, self._hwm + rest)
            self._hwm += rest
        return out

    def _init_slots(  # noqa: PLR0917 - hot-path column helper
        self,
        keys: FlowKeys,
        idx: I64,
        s: I64,
        uh: npt.NDArray[np.uint64],
        first_pos: I64,
        clash: npt.NDArray[np.bool_],
        dec: DecodedBatch,
    ) -> None:
        r = first_pos[idx]
        a_hi_c, a_lo_c, b_hi_c, b_lo_c, ports, meta = keys.canonical(r)
        self._hash[s] = uh[idx]
        self._ahi[s] = a_hi_c
        self._alo[s] = a_lo_c
        self._bhi[s] = b_hi_c
        self._blo[s] = b_lo_c
        self._ports[s] = ports
        self._meta[s] = meta
        rows = keys.rows[r]
        proto = dec.proto[rows]
        flags = dec.tcp_flags[rows]
        synack = (
            (proto == PROTO_TCP)
            & (dec.status[rows] == Status.L4)
            & ((flags & (SYN | ACK)) == (SYN | ACK))
        )
        # the SYN sender originates; a SYN-ACK seen first means its receiver did (Zeek's "^")
        self._orig_a[s] = keys.src_is_a[r] != synack
        self._ipver[s] = dec.ipver[rows]
        self._proto[s] = proto
        self._active[s] = True
        self._fid[s] = np.arange(self._next_fid, self._next_fid + s.size)
        self._next_fid += s.size
        self._reset_counters(s)
        self._tcpm[s] = 0
        self._seq_ok[s] = False
        self._seq_max[s] = 0
        self._seq_start[s] = 0
        self._hist[s] = np.where(synack, b"^", b"")
        lookup = self._identity.lookup_key
        a_hi = a_hi_c.tolist()
        a_lo = a_lo_c.tolist()
        b_hi = b_hi_c.tolist()
        b_lo = b_lo_c.tolist()
        orig_a = self._orig_a[s]
        ea = np.empty(s.size, dtype=object)
        eb = np.empty(s.size, dtype=object)
        ea[:] = [lookup((h << 64) | lo) for h, lo in zip(a_hi, a_lo, strict=True)]
        eb[:] = [lookup((h << 64) | lo) for h, lo in zip(b_hi, b_lo, strict=True)]
        self._ep[s, 0] = np.where(orig_a, ea, eb)
        self._ep[s, 1] = np.where(orig_a, eb, ea)
        if clash.any():
            # a different flow owns these hashes: keep these flows under their full keys
            for j in np.flatnonzero(clash).tolist():
                self._collisions += 1
                slot = int(s[j])
                self._collide[self._full_key(keys, int(r[j]))] = slot
                self._collide_slots.add(slot)
        own = ~clash
        self._map.insert(uh[idx[own]] + np.uint64(1), s[own])
        self._created += s.size
        self._n_active += s.size

    def _reset_counters(self, s: I64) -> None:
        self._first[s] = 0
        self._last[s] = 0
        self._pkts[s] = 0
        self._l2[s] = 0
        self._ipb[s] = 0
        self._pay[s] = 0
        self._hist[s] = b""
        self._retx[s] = 0
        self._hseen[s] = 0
        self._tcpm[s, 8:] = 0  # zero windows, RSTs, handshake times
        if self._hist_long or self._dns:
            for slot in s.tolist():
                self._hist_long.pop(slot, None)
                self._dns.pop(slot, None)

    # ------------------------------------------------------------------ TCP
    def _tcp(  # noqa: PLR0917 - hot-path column helper
        self,
        dec: DecodedBatch,
        rsorted: I64,
        tcp_mask: npt.NDArray[np.bool_],
        slot_sorted: I64,
        dir_sorted: npt.NDArray[np.intp],
        grp_break: npt.NDArray[np.bool_],
        ts_sorted: I64,
        l4len_sorted: I64,
    ) -> None:
        pos = np.flatnonzero(tcp_mask)
        rws = rsorted[pos]
        slot = slot_sorted[pos]
        d = dir_sorted[pos]
        flags = dec.tcp_flags[rws].astype(np.int64)
        seq = dec.tcp_seq[rws].astype(np.int64)
        win = dec.tcp_win[rws]
        plen = l4len_sorted[pos]
        ts = ts_sorted[pos]
        m = pos.shape[0]
        # groups (flow, direction) among TCP rows: a break in the full order, or a skipped row
        gb = grp_break[pos].copy()
        gb[0] = True
        gstart = np.flatnonzero(gb)
        gid = np.cumsum(gb) - 1
        g_slot = slot[gstart]
        g_dir = d[gstart]
        g_i = g_slot * 2 + g_dir
        is_syn = (flags & SYN) != 0
        is_fin = (flags & FIN) != 0
        is_rst = (flags & RST) != 0
        state0 = (self._tstate[g_slot] >> (g_dir * 8).astype(np.uint32)) & 0xFF
        # ---- retransmissions: Zeek's update_last_seq as a grouped running maximum
        seg = np.where(is_rst, 0, plen) + is_syn + is_fin
        end32 = (seq + seg) & 0xFFFFFFFF
        ok = self._seq_ok_f[g_i]
        base = np.where(ok, self._seq_max_f[g_i], seq[gstart])
        new_groups = ~ok
        if new_groups.any():
            self._seq_start_f[g_i[new_groups]] = seq[gstart][new_groups]
        base_r = base[gid]
        rel = ((end32 - (base_r & 0xFFFFFFFF) + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        idx = np.arange(m)
        rst_at = np.maximum.accumulate(np.where(is_rst, idx, -1))
        excluded = (state0[gid] == RESET) | (rst_at >= gstart[gid])
        big = np.int64(1) << 34
        vals = np.where(excluded, -(np.int64(1) << 33), rel) + gid * big
        run = np.maximum.accumulate(vals) - gid * big
        prev = np.empty(m, np.int64)
        prev[0] = 0
        prev[1:] = run[:-1]
        prev[gstart] = 0
        prev = np.maximum(prev, 0)
        retx = (plen > 0) & ~excluded & (rel <= prev)
        gmax = np.maximum(np.maximum.reduceat(np.where(excluded, 0, rel), gstart), 0)
        self._seq_max_f[g_i] = base + gmax
        self._seq_ok_f[g_i] = True
        t_letter = np.zeros(m, np.bool_)
        if retx.any():
            rcount = np.add.reduceat(retx.astype(np.int64), gstart)
            before = self._retx_f[g_i].astype(np.int64)
            self._retx_f[g_i] = before + rcount
            running = np.cumsum(retx) - np.append(0, np.cumsum(retx))[gstart][gid]
            t_letter = retx & np.isin(running + before[gid], _POW10)
        # ---- which segments need the scalar state machine
        ctrl = (flags & (SYN | FIN | RST)) != 0
        nosfr = ~ctrl
        ev = ctrl | ((win == 0) & ~is_rst) | t_letter
        ev[gstart[state0 == INACTIVE]] = True
        seen = self._hseen[g_slot].astype(np.int64)
        shift = g_dir * RESP_SHIFT
        d_seen = ((seen >> shift) & H_DATA) != 0
        a_seen = ((seen >> shift) & H_ACK) != 0
        for cand_mask, seen_g in (
            (nosfr & (plen > 0), d_seen),
            (nosfr & (plen == 0) & ((flags & ACK) != 0), a_seen),
        ):
            cand = np.flatnonzero(cand_mask & ~seen_g[gid])
            if cand.size:
                # candidates are in group order: the first of each group is where gid changes
                g = gid[cand]
                first = np.empty(cand.size, np.bool_)
                first[0] = True
                np.not_equal(g[1:], g[:-1], out=first[1:])
                ev[cand[first]] = True
        evp = np.flatnonzero(ev)
        if evp.size:
            self._tcp_events(evp, rws, slot, d, flags, seq, plen, win, ts, t_letter)

    def _tcp_events(  # noqa: PLR0917 - hot-path column helper
        self,
        evp: I64,
        rws: I64,
        slot: I64,
        d: npt.NDArray[np.intp],
        flags: I64,
        seq: I64,
        plen: I64,
        win: npt.NDArray[np.uint16],
        ts: I64,
        t_letter: npt.NDArray[np.bool_],
    ) -> None:
        ev_slot = slot[evp]
        order = np.argsort((ev_slot << 32) | rws[evp])  # per flow, in arrival order
        evp = evp[order]
        ev_slot = ev_slot[order]
        brk = np.empty(ev_slot.shape[0], np.bool_)
        brk[0] = True
        np.not_equal(ev_slot[1:], ev_slot[:-1], out=brk[1:])
        us = ev_slot[brk]
        us_list = us.tolist()
        longs = self._hist_long
        objs = [
            TcpScratch(row, (longs.get(sl) if longs else None) or h.decode("ascii"))
            for sl, row, h in zip(
                us_list, self._tcpm[us].tolist(), self._hist[us].tolist(), strict=True
            )
        ]
        for k, e, fl, sq, pl, wn, t, tl in zip(
            (np.cumsum(brk) - 1).tolist(),
            d[evp].tolist(),
            flags[evp].tolist(),
            seq[evp].tolist(),
            plen[evp].tolist(),
            win[evp].tolist(),
            ts[evp].tolist(),
            t_letter[evp].tolist(),
            strict=True,
        ):
            objs[k].event(e, fl, sq, pl, wn, t, tl)
        self._tcpm[us] = [o.row() for o in objs]
        hist = []
        for sl, o in zip(us_list, objs, strict=True):
            if len(o.hist) > _HIST_WIDTH:
                self._hist_long[sl] = o.hist
            hist.append(o.hist[:_HIST_WIDTH].encode("ascii"))
        self._hist[us] = hist

    # ------------------------------------------------------------------ DNS
    def _dns_rows(  # noqa: PLR0917 - hot-path column helper
        self,
        batch: FrameBatch,
        dec: DecodedBatch,
        rsorted: I64,
        mask: npt.NDArray[np.bool_],
        slot_sorted: I64,
        ts_sorted: I64,
        tcp: npt.NDArray[np.bool_],
    ) -> None:
        pos = np.flatnonzero(mask)
        pos = pos[np.argsort(rsorted[pos], kind="stable")]  # arrival order
        rws = rsorted[pos]
        ends = (batch.offsets[rws] + batch.caplens[rws]).tolist()
        offs = dec.l4_off[rws].tolist()
        lens = dec.l4_len[rws].tolist()
        data = batch.data
        for sl, off, ln, end, t, is_tcp in zip(
            slot_sorted[pos].tolist(),
            offs,
            lens,
            ends,
            ts_sorted[pos].tolist(),
            tcp[pos].tolist(),
            strict=True,
        ):
            stop = min(off + ln, end)
            # RFC 1035 §4.2.2 length prefix on TCP; assumes a message starts the segment
            start = off + 2 if is_tcp else off
            payload = data[start:stop].tobytes() if stop > start else b""
            msg = parse_dns(payload)
            if msg is None:
                self._dns_bad += 1
                continue
            stt = self._dns.get(sl)
            if stt is None:
                stt = self._dns[sl] = _DnsState()
            if not msg.is_response:
                stt.queries += 1
                if stt.query is None:
                    stt.query, stt.qtype = msg.qname, msg.qtype
                if len(stt.pending) < _DNS_PENDING_MAX:
                    stt.pending.setdefault(msg.txid, t)
            else:
                stt.responses += 1
                stt.rcode = msg.rcode
                if stt.query is None:
                    stt.query, stt.qtype = msg.qname, msg.qtype
                sent = stt.pending.pop(msg.txid, None)
                if sent is not None and stt.latency_ns is None:
                    stt.latency_ns = t - sent

    # ------------------------------------------------------------------ ending flows
    def expire(self, now_ns: int) -> int:
        """End flows idle or active too long at packet time *now_ns*; returns how many ended."""
        with self._lock:
            hwm = self._hwm
            act = self._active[:hwm]
            proto = self._proto[:hwm]
            s0 = self._tstate[:hwm] & 0xFF
            s1 = (self._tstate[:hwm] >> 8) & 0xFF
            closed = ((s0 == CLOSED) & (s1 == CLOSED)) | (s0 == RESET) | (s1 == RESET)
            limit = np.where(
                proto == PROTO_TCP,
                np.where(closed, self._closed_ns, self._idle_ns),
                np.where(proto == PROTO_UDP, self._udp_idle_ns, self._icmp_idle_ns),
            )
            last = self._last[:hwm]
            idle = act & (now_ns - last > limit)
            first = self._first[:hwm]
            too_long = act & ~idle & (first > 0) & (now_ns - first > self._active_ns)
            records = self._end(np.flatnonzero(idle), "idle")
            records += self._slice(np.flatnonzero(too_long))
        self._deliver(records)
        return len(records)

    def flush(self) -> None:
        """End every active flow (shutdown: nothing is lost)."""
        with self._lock:
            records = self._end(np.flatnonzero(self._active[: self._hwm]), "flush")
        self._deliver(records)

    def _evict(self, k: int, busy: I64) -> None:
        active = self._active[: self._hwm].copy()
        active[busy] = False  # flows of the batch being processed stay
        act = np.flatnonzero(active)
        k = max(k, min(act.size, self._max // 100))  # evict in bulk, not one flow per batch
        victims = act if k >= act.size else act[np.argpartition(self._last[act], k - 1)[:k]]
        self._evicted += victims.size
        self._pending.extend(self._end(victims, "evicted"))

    def _deliver(self, records: list[FlowRecord]) -> None:
        if not records:
            return
        for sink in self._sinks:
            sink(records)

    def _slice(self, s: I64) -> list[FlowRecord]:
        """Active timeout: report the flow so far, then keep tracking it as a new record."""
        if s.size == 0:
            return []
        records = self._records(s, "active")
        self._fid[s] = np.arange(self._next_fid, self._next_fid + s.size)
        self._next_fid += s.size
        self._reset_counters(s)
        self._ended["active"] += s.size
        return records

    def _end(self, s: I64, reason: str) -> list[FlowRecord]:
        if s.size == 0:
            return []
        has_pkts = self._pkts[s].sum(axis=1) > 0
        records = self._records(s[has_pkts], reason)
        self._ended[reason] += int(has_pkts.sum())
        self._active[s] = False
        owners = s
        if self._collide_slots:
            clashed = np.isin(s, np.fromiter(self._collide_slots, np.int64))
            owners = s[~clashed]
            for slot in s[clashed].tolist():
                self._collide_slots.discard(slot)
                for k, v in list(self._collide.items()):
                    if v == slot:
                        del self._collide[k]
        self._map.delete(self._hash[owners] + np.uint64(1))
        if self._dns or self._hist_long:
            for slot in s.tolist():
                self._dns.pop(slot, None)
                self._hist_long.pop(slot, None)
        self._ep[s] = None
        self._free = np.concatenate([self._free, s])
        self._n_active -= s.size
        return records

    def _records(self, s: I64, reason: str) -> list[FlowRecord]:
        """Records for slots *s*: every field is computed for all of them at once in numpy and
        converted to Python lists, so the per-flow loop only picks values and builds objects."""
        if s.size == 0:
            return []
        meta = self._meta[s].astype(np.int64)
        proto = meta & 0xFF
        ports = self._ports[s].astype(np.int64)
        a_p = ports >> 16
        b_p = ports & 0xFFFF
        orig_a = self._orig_a[s]
        is_icmp = (proto == PROTO_ICMP) | (proto == PROTO_ICMP6)
        a_first = orig_a | is_icmp  # ICMP: type class and code stay in their columns
        op = np.where(a_first, a_p, b_p)
        rp = np.where(a_first, b_p, a_p)
        ahi, alo, bhi, blo = self._ahi[s], self._alo[s], self._bhi[s], self._blo[s]
        okeys = _keys(np.where(orig_a, ahi, bhi), np.where(orig_a, alo, blo))
        rkeys = _keys(np.where(orig_a, bhi, ahi), np.where(orig_a, blo, alo))
        pk, l2, ipb, pay = self._pkts[s], self._l2[s], self._ipb[s], self._pay[s]
        # payload bytes per direction, Zeek's way for TCP: from sequence numbers when that side's
        # SYN was seen (retransmissions count once), else the sum of segment payloads
        is_tcp = proto == PROTO_TCP
        seen = self._hseen[s].astype(np.int64)
        seq_ok = self._seq_ok[s]
        size = self._seq_max[s] - self._seq_start[s].astype(np.int64) - 1
        sizes = []
        for e in (0, 1):
            sh = seen >> (RESP_SHIFT * e)
            sz = size[:, e]
            sz = np.maximum(sz - (((sh & H_FIN) != 0) & (sz > 0)), 0)
            by_seq = is_tcp & ((sh & H_SYN) != 0) & seq_ok[:, e]
            sizes.append(np.where(by_seq, sz, pay[:, e]).tolist())
        tcpm = self._tcpm[s].astype(np.int64)
        st = tcpm[:, 0]
        marks = tcpm[:, 11:17:2] | (tcpm[:, 12:17:2] << 32)  # SYN, SYN-ACK, ACK times (+1)
        retx = self._retx[s]
        hist = self._hist[s].astype(f"U{_HIST_WIDTH}").tolist()
        longs = self._hist_long
        dns_of = self._dns
        lookup = self._identity.lookup_key
        external = EndpointKind.EXTERNAL
        names: dict[int, str] = {}
        ep = self._ep[s]
        uids = make_uids(self._seed, self._fid[s])
        node = self._node
        out: list[FlowRecord] = []
        append = out.append
        record = FlowRecord
        for (
            slot,
            p,
            okey,
            rkey,
            o_p,
            r_p,
            eo0,
            er0,
            first,
            last,
            h0,
            pk0,
            pk1,
            l20,
            l21,
            ip0,
            ip1,
            ob,
            rb,
            m,
            ipver,
            uid,
            os_rs,
            syn_t,
            synack_t,
            ack_t,
            rx0,
            rx1,
            t8,
            t9,
            t10,
        ) in zip(
            s.tolist(),
            proto.tolist(),
            okeys,
            rkeys,
            op.tolist(),
            rp.tolist(),
            ep[:, 0].tolist(),
            ep[:, 1].tolist(),
            self._first[s].tolist(),
            self._last[s].tolist(),
            hist,
            pk[:, 0].tolist(),
            pk[:, 1].tolist(),
            l2[:, 0].tolist(),
            l2[:, 1].tolist(),
            ipb[:, 0].tolist(),
            ipb[:, 1].tolist(),
            sizes[0],
            sizes[1],
            meta.tolist(),
            self._ipver[s].tolist(),
            uids,
            st.tolist(),
            marks[:, 0].tolist(),
            marks[:, 1].tolist(),
            marks[:, 2].tolist(),
            retx[:, 0].tolist(),
            retx[:, 1].tolist(),
            tcpm[:, 8].tolist(),
            tcpm[:, 9].tolist(),
            tcpm[:, 10].tolist(),
            strict=True,
        ):
            oh = names.get(okey)
            if oh is None:
                oh = names[okey] = _key_str(okey)
            rh = names.get(rkey)
            if rh is None:
                rh = names[rkey] = _key_str(rkey)
            # pods appear live: an address unknown at flow start may be a pod by now
            eo = lookup(okey) if eo0 is None or eo0.kind is external else eo0
            er = lookup(rkey) if er0 is None or er0.kind is external else er0
            h = (longs.get(slot) or h0) if longs else h0
            tcp_stats = None
            if p == PROTO_TCP:
                name = "tcp"
                service = _SERVICES.get(r_p)
                state = conn_state(os_rs & 0xFF, (os_rs >> 8) & 0xFF, ob, rb, h)
                tcp_stats = TcpStats(
                    rx0,
                    rx1,
                    t10 & 0xFFFF,
                    t10 >> 16,
                    t8,
                    t9,
                    (synack_t - syn_t) / _NS if syn_t and synack_t else None,
                    (ack_t - synack_t) / _NS if synack_t and ack_t else None,
                )
            elif p == PROTO_UDP:
                name = "udp"
                service = _SERVICES.get(r_p)
                state = "SF" if pk0 and pk1 else ("S0" if pk0 else "SHR")
                h = ("D" if pk0 else "") + ("d" if pk1 else "")
            else:
                name = _proto_name(p)
                service = None if name == "icmp" else _SERVICES.get(r_p)
                state = "OTH"
            dns_stats = None
            if dns_of:
                dns = dns_of.get(slot)
                if dns is not None:
                    dns_stats = DnsStats(
                        dns.query,
                        dns.qtype,
                        dns.rcode,
                        dns.latency_ns / _NS if dns.latency_ns is not None else None,
                        dns.queries,
                        dns.responses,
                    )
            # positional, in field order: keyword calls cost more at a million records
            append(
                record(
                    first / _NS,
                    uid,
                    oh,
                    o_p,
                    rh,
                    r_p,
                    name,
                    service,
                    (last - first) / _NS,
                    ob,
                    rb,
                    state,
                    0,
                    h,
                    pk0,
                    ip0,
                    pk1,
                    ip1,
                    l20,
                    l21,
                    eo,
                    er,
                    node,
                    (m >> 8) & 0xFFF,
                    (m >> 24) & 0xFFFFFF,
                    ipver,
                    tcp_stats,
                    dns_stats,
                    reason,
                )
            )
        return out
