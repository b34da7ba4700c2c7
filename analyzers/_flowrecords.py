"""Ended flows' state turned into ``FlowRecord`` objects, a whole set of slots at a time.

Every field is computed for all the slots at once in numpy and converted to Python lists, so the
per-flow loop only picks values and builds objects: a million records stay affordable.
"""

from __future__ import annotations

import socket
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from analyzers._flowcolumns import HIST_WIDTH, FlowColumns
from analyzers._flowicmp import IcmpFirstTypes, icmp_ports
from analyzers._flowkey import PROTO_ICMP, PROTO_ICMP6, PROTO_TCP, PROTO_UDP
from analyzers._flowtunnels import FlowTunnel, FlowTunnels
from analyzers._identity import EndpointKind, IdentityMap
from analyzers._recordjson import RecordBatch
from analyzers._records import DnsStats, FlowRecord, TcpStats, make_uids
from analyzers._tcpstate import H_FIN, H_SYN, conn_state

I64 = npt.NDArray[np.int64]
_NS = 1_000_000_000
_MAX_EXACT_NS = (1 << 22) * _NS  # times below: their decimal is what round(t / 1e9, k) gives
_SERVICES = {53: "dns", 80: "http", 443: "ssl", 8080: "http"}
_FIELDS = FlowRecord._fields
# a record straight from its row: the named tuple's own __new__ is a Python call per record
_record = partial(tuple.__new__, FlowRecord)
_tcp_stats = partial(tuple.__new__, TcpStats)
_dns_stats_of = partial(tuple.__new__, DnsStats)


def address_keys(hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]) -> list[int]:
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


def build_records(
    c: FlowColumns,
    s: I64,
    reason: str,
    *,
    identity: IdentityMap,
    tunnels: FlowTunnels,
    icmp_first: IcmpFirstTypes,
    seed: bytes,
    node: str,
) -> list[FlowRecord]:
    """Records for slots *s*, ended for *reason*; uids come from *seed* and the slots' ids."""
    if s.size == 0:
        return []
    k = s.shape[0]
    slots = s.tolist()
    meta = c.meta[s].astype(np.int64)
    proto = meta & 0xFF
    ports = c.ports[s].astype(np.int64)
    a_p = ports >> 16
    b_p = ports & 0xFFFF
    orig_a = c.orig_a[s]
    is_icmp = (proto == PROTO_ICMP) | (proto == PROTO_ICMP6)
    a_first = orig_a | is_icmp  # ICMP: type class and code stay in their columns
    ahi, alo, bhi, blo = c.ahi[s], c.alo[s], c.bhi[s], c.blo[s]
    okeys = address_keys(np.where(orig_a, ahi, bhi), np.where(orig_a, alo, blo))
    rkeys = address_keys(np.where(orig_a, bhi, ahi), np.where(orig_a, blo, alo))
    pkts, pay = c.pkts[s], c.pay[s].astype(np.int64)
    first = c.first[s]
    orig_p = np.where(a_first, a_p, b_p).tolist()
    resp_p = np.where(a_first, b_p, a_p).tolist()
    for i in np.flatnonzero(is_icmp).tolist():  # ICMP: Zeek's type and counterpart (_flowicmp)
        first_type = icmp_first.get(slots[i])
        orig_p[i], resp_p[i] = icmp_ports(int(proto[i]), orig_p[i], resp_p[i], first_type)
    proto_l = proto.tolist()
    orig_pkts = pkts[:, 0].tolist()
    resp_pkts = pkts[:, 1].tolist()
    sizes = _payload_sizes(c, s, proto == PROTO_TCP, pay)
    orig_bytes, resp_bytes = sizes[0].tolist(), sizes[1].tolist()
    names: dict[int, str] = {}
    proto_name = [_proto_name(p) for p in proto_l]
    history = _histories(c, s, slots)
    conn_states = ["OTH"] * k
    tcp: list[TcpStats | None] = [None] * k
    for i in np.flatnonzero(proto == PROTO_UDP).tolist():
        o, r = orig_pkts[i], resp_pkts[i]
        conn_states[i] = "SF" if o and r else ("S0" if o else "SHR")
        # letters in the order each side was first seen: a flipped flow began with the responder
        if history[i] == "^":
            history[i] = "^" + ("d" if r else "") + ("D" if o else "")
        else:
            history[i] = ("D" if o else "") + ("d" if r else "")
    _tcp_fields(
        c,
        s,
        np.flatnonzero(proto == PROTO_TCP),
        (orig_bytes, resp_bytes),
        history,
        conn_states,
        tcp,
    )
    # named columns in any order: the record's fields are picked by name below
    columns: dict[str, list[Any]] = {
        # Python's int / int is correctly rounded; numpy would round the ns to float64 first
        "ts": [t / _NS for t in first.tolist()],
        "uid": make_uids(seed, c.fid[s]),
        "orig_h": [names.get(x) or names.setdefault(x, _key_str(x)) for x in okeys],
        "orig_p": orig_p,
        "resp_h": [names.get(x) or names.setdefault(x, _key_str(x)) for x in rkeys],
        "resp_p": resp_p,
        "proto": proto_name,
        "service": [
            None if n == "icmp" else _SERVICES.get(r)
            for n, r in zip(proto_name, resp_p, strict=True)
        ],
        "duration": [d / _NS for d in (c.last[s] - first).tolist()],
        "orig_bytes": orig_bytes,
        "resp_bytes": resp_bytes,
        "conn_state": conn_states,
        "missed_bytes": c.missed[s].sum(axis=1).tolist(),
        "history": history,
        "orig_pkts": orig_pkts,
        "orig_ip_bytes": c.ipb[s, 0].tolist(),
        "resp_pkts": resp_pkts,
        "resp_ip_bytes": c.ipb[s, 1].tolist(),
        "orig_l2_bytes": c.l2[s, 0].tolist(),
        "resp_l2_bytes": c.l2[s, 1].tolist(),
        "orig": _endpoints(identity, okeys, c.ep[s, 0].tolist()),
        "resp": _endpoints(identity, rkeys, c.ep[s, 1].tolist()),
        "node": [node] * k,
        "vlan": ((meta >> 8) & 0xFFF).tolist(),
        "tunnel_vni": ((meta >> 24) & 0xFFFFFF).tolist(),
        "ip_version": c.ipver[s].tolist(),
        "tcp": tcp,
        "dns": _dns_stats(c, slots),
        "end_reason": [reason] * k,
    }
    if len(tunnels):
        tunnel_of = tunnels.of(slots)
        for i, name in enumerate(FlowTunnel._fields):
            columns[name] = [None if t is None else t[i] for t in tunnel_of]
    else:
        columns.update(dict.fromkeys(FlowTunnel._fields, [None] * k))
    records = list(map(_record, zip(*(columns[f] for f in _FIELDS), strict=True)))
    numbers = np.zeros((k, 27), np.int64)  # _jsonkernel.NUM_FIELDS
    numbers[:, 0] = first
    duration_us = _duration_us(c.last[s] - first)
    numbers[:, 1] = duration_us
    numbers[:, 2] = orig_p
    numbers[:, 3] = resp_p
    numbers[:, 4:6] = np.stack(sizes, axis=1)
    numbers[:, 6] = c.missed[s].sum(axis=1)
    numbers[:, 7] = pkts[:, 0]
    numbers[:, 8] = c.ipb[s, 0]
    numbers[:, 9] = pkts[:, 1]
    numbers[:, 10] = c.ipb[s, 1]
    numbers[:, 11:13] = c.l2[s]
    numbers[:, 13] = (meta >> 8) & 0xFFF
    numbers[:, 14] = (meta >> 24) & 0xFFFFFF
    numbers[:, 15] = c.ipver[s]
    if not _tcp_numbers(c, s, proto == PROTO_TCP, numbers):
        return records  # an RTT too long for an exact decimal: formatted from the records
    return RecordBatch(records, numbers)


def _duration_us(d: I64) -> I64:
    """``round(d / 1e9, 6)`` in microseconds, as Python's ``round`` rounds the float."""
    us = d // 1000 + (d % 1000 > 500)
    # an exact tie in nanoseconds is decided by the float's rounding; long or negative
    # durations are left to Python too
    odd = np.flatnonzero((d % 1000 == 500) | (d < 0) | (d >= _MAX_EXACT_NS))
    for i in odd.tolist():
        us[i] = round(round(int(d[i]) / _NS, 6) * 1_000_000)
    return us


def _tcp_numbers(c: FlowColumns, s: I64, is_tcp: npt.NDArray[np.bool_], numbers: I64) -> bool:
    """The TCP columns of *numbers* (``TcpStats``'s); False if an RTT has no exact decimal."""
    tcp_i = np.flatnonzero(is_tcp)
    if tcp_i.size == 0:
        return True
    t = s[tcp_i]
    syn, synack, ack = c.syn_ts[t], c.synack_ts[t], c.ack_ts[t]
    has_c = (syn != 0) & (synack != 0)
    has_s = (synack != 0) & (ack != 0)
    rtt_c = np.where(has_c, synack - syn, 0)
    rtt_s = np.where(has_s, ack - synack, 0)
    if (np.abs(rtt_c) >= _MAX_EXACT_NS).any() or (np.abs(rtt_s) >= _MAX_EXACT_NS).any():
        return False
    rows = numbers[tcp_i]
    rows[:, 16] = 1
    rows[:, 17:19] = c.retx[t]
    rows[:, 19:21] = c.rst_count[t]
    rows[:, 21:23] = c.zero_win[t]
    rows[:, 23] = has_c
    rows[:, 24] = rtt_c
    rows[:, 25] = has_s
    rows[:, 26] = rtt_s
    numbers[tcp_i] = rows
    return True


def _payload_sizes(
    c: FlowColumns, s: I64, is_tcp: npt.NDArray[np.bool_], pay: I64
) -> tuple[I64, I64]:
    """Payload bytes per direction, Zeek's way for TCP: from sequence numbers when that side's
    SYN was seen (retransmissions count once), else the sum of segment payloads."""
    seen = c.hist_seen[s]
    seq_ok = c.seq_ok[s]
    size = c.seq_max[s] - c.seq_start[s].astype(np.int64) - 1
    sizes = []
    for e in (0, 1):
        sz = size[:, e]
        sz = np.maximum(sz - (((seen[:, e] & H_FIN) != 0) & (sz > 0)), 0)
        by_seq = is_tcp & ((seen[:, e] & H_SYN) != 0) & seq_ok[:, e]
        sizes.append(np.where(by_seq, sz, pay[:, e]))
    return sizes[0], sizes[1]


def _histories(c: FlowColumns, s: I64, slots: list[int]) -> list[str]:
    hist: list[str] = c.hist[s].astype(f"U{HIST_WIDTH}").tolist()
    longs = c.hist_long
    if longs:
        hist = [longs.get(slot) or h for slot, h in zip(slots, hist, strict=True)]
    return hist


def _endpoints(identity: IdentityMap, keys: list[int], at_start: list[Any]) -> list[Any]:
    # pods appear live: an address unknown at flow start may be a pod by now
    external = EndpointKind.EXTERNAL
    return [
        now if e is None or e.kind is external else e
        for now, e in zip(identity.lookup_keys(keys), at_start, strict=True)
    ]


def _tcp_fields(  # noqa: PLR0917 - fills the TCP rows of the record columns it is given
    c: FlowColumns,
    s: I64,
    tcp_i: I64,
    sizes: tuple[list[int], list[int]],
    history: list[str],
    conn_states: list[str],
    tcp: list[TcpStats | None],
) -> None:
    """Zeek's conn_state and the TCP health of the TCP rows *tcp_i* of the records for *s*."""
    if tcp_i.size == 0:
        return
    t = s[tcp_i]
    rows = tcp_i.tolist()
    orig_bytes, resp_bytes = sizes
    for i, state in zip(rows, c.tcp_state[t].tolist(), strict=True):
        conn_states[i] = conn_state(state[0], state[1], orig_bytes[i], resp_bytes[i], history[i])
    syn, synack, ack = c.syn_ts[t].tolist(), c.synack_ts[t].tolist(), c.ack_ts[t].tolist()
    retx, rst, zero_win = c.retx[t], c.rst_count[t], c.zero_win[t]
    stats = zip(
        retx[:, 0].tolist(),
        retx[:, 1].tolist(),
        rst[:, 0].tolist(),
        rst[:, 1].tolist(),
        zero_win[:, 0].tolist(),
        zero_win[:, 1].tolist(),
        [(a - q) / _NS if q and a else None for q, a in zip(syn, synack, strict=True)],
        [(k - a) / _NS if a and k else None for a, k in zip(synack, ack, strict=True)],
        strict=True,
    )
    for i, stat in zip(rows, map(_tcp_stats, stats), strict=True):
        tcp[i] = stat


def _dns_stats(c: FlowColumns, slots: list[int]) -> list[DnsStats | None]:
    dns_of = c.dns
    if not dns_of:
        return [None] * len(slots)
    return [
        None
        if dns is None
        else _dns_stats_of(
            (
                dns.query,
                dns.qtype,
                dns.rcode,
                dns.latency_ns / _NS if dns.latency_ns is not None else None,
                dns.queries,
                dns.responses,
            )
        )
        for dns in map(dns_of.get, slots)
    ]
