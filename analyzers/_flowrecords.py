"""Ended flows' state turned into ``FlowRecord`` objects, a whole set of slots at a time.

Every number is gathered once, for all the slots, into the int64 rows the JSON kernel writes
(``_jsonkernel.NUM_FIELDS``); the records' columns are those rows as Python lists, the text
columns come from tables indexed by numpy (protocol, service, conn_state) or from a compiled
loop (addresses), so what stays per record in Python is picking values and building tuples.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from analyzers._addrtext import address_texts
from analyzers._flowcolumns import FlowColumns
from analyzers._flowicmp import IcmpFirstTypes, icmp_ports
from analyzers._flowkey import PROTO_ICMP, PROTO_ICMP6, PROTO_TCP, PROTO_UDP
from analyzers._flowtunnels import FlowTunnel, FlowTunnels
from analyzers._identity import EndpointKind, IdentityMap
from analyzers._jsonkernel import NUM_FIELDS
from analyzers._recordjson import RecordBatch
from analyzers._records import DnsStats, FlowRecord, TcpStats
from analyzers._tcpstate import H_FIN, H_SYN, conn_state
from analyzers._uids import make_uids

I64 = npt.NDArray[np.int64]
_NS = 1_000_000_000
_MAX_EXACT_NS = (1 << 22) * _NS  # times below: their decimal is what round(t / 1e9, k) gives
_SERVICES = {53: "dns", 80: "http", 443: "ssl", 8080: "http"}
_FIELDS = FlowRecord._fields
# a record straight from its row: the named tuple's own __new__ is a Python call per record
_record = partial(tuple.__new__, FlowRecord)
_tcp_stats = partial(tuple.__new__, TcpStats)
_dns_stats_of = partial(tuple.__new__, DnsStats)

# NUM_FIELDS' columns by name (the unpacking fails loudly if that tuple changes length)
(
    _TS_NS,
    _DURATION_US,
    _ORIG_P,
    _RESP_P,
    _ORIG_BYTES,
    _RESP_BYTES,
    _MISSED,
    _ORIG_PKTS,
    _ORIG_IPB,
    _RESP_PKTS,
    _RESP_IPB,
    _ORIG_L2,
    _RESP_L2,
    _VLAN,
    _VNI,
    _IPVER,
    _IS_TCP,
    _RETX_O,
    _RETX_R,
    _RST_O,
    _RST_R,
    _ZW_O,
    _ZW_R,
    _HAS_RTT_C,
    _RTT_C,
    _HAS_RTT_S,
    _RTT_S,
) = range(len(NUM_FIELDS))


def address_keys(hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]) -> list[int]:
    """128-bit address keys (``hi << 64 | lo``, the identity map's form) as Python ints."""
    keys: list[int] = lo.tolist()
    for i in np.flatnonzero(hi).tolist():  # IPv6; IPv4 (mapped) is all in the low half
        keys[i] |= int(hi[i]) << 64
    return keys


def _proto_name(proto: int) -> str:
    if proto == PROTO_TCP:
        return "tcp"
    if proto == PROTO_UDP:
        return "udp"
    if proto in (PROTO_ICMP, PROTO_ICMP6):
        return "icmp"
    return str(proto)


_PROTO_TEXT = np.array([_proto_name(p) for p in range(256)], object)


def _state_tables() -> tuple[npt.NDArray[np.object_], npt.NDArray[np.int8]]:
    """conn_state's names, and its answer for each pair of TCP endpoint states and whether both
    sides sent no payload: ``conn_state`` itself, asked once per case, so there is one rule."""
    names = ["OTH", "SF", "S0", "SHR", "(history)"]
    codes = np.zeros((7, 7, 2), np.int8)  # TCP_ENDPOINT_* states 0..6
    for o in range(7):
        for r in range(7):
            for no_bytes in (0, 1):
                size = 1 - no_bytes
                plain, rst = conn_state(o, r, size, 0, ""), conn_state(o, r, size, 0, "SR")
                name = plain if plain == rst else "(history)"
                if name not in names:
                    names.append(name)
                codes[o, r, no_bytes] = names.index(name)
    return np.array(names, object), codes


_STATE_TEXT, _TCP_CODES = _state_tables()
_OTH, _SF, _S0, _SHR, _BY_HISTORY = range(5)
# UDP's history by (flipped, originator seen, responder seen)
_UDP_HISTORY = np.array(["", "d", "D", "Dd", "^", "^d", "^D", "^dD"], object)


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
    is_tcp = proto == PROTO_TCP
    is_udp = proto == PROTO_UDP
    is_icmp = (proto == PROTO_ICMP) | (proto == PROTO_ICMP6)
    # every number once, in the rows the JSON kernel writes; the records' lists come from them
    numbers = np.zeros((k, len(NUM_FIELDS)), np.int64)
    first = c.first[s]
    numbers[:, _TS_NS] = first
    numbers[:, _DURATION_US] = _duration_us(c.last[s] - first)
    ports = c.ports[s].astype(np.int64)
    a_p, b_p = ports >> 16, ports & 0xFFFF
    orig_a = c.orig_a[s]
    a_first = orig_a | is_icmp  # ICMP: type class and code stay in their columns
    numbers[:, _ORIG_P] = np.where(a_first, a_p, b_p)
    numbers[:, _RESP_P] = np.where(a_first, b_p, a_p)
    icmp_i = np.flatnonzero(is_icmp)
    if icmp_i.size:  # ICMP: Zeek's type and counterpart (_flowicmp)
        icmp = zip(
            icmp_i.tolist(),
            proto[icmp_i].tolist(),
            numbers[icmp_i, _ORIG_P : _RESP_P + 1].tolist(),
            strict=True,
        )
        numbers[icmp_i, _ORIG_P : _RESP_P + 1] = [
            icmp_ports(p, o, r, icmp_first.get(slots[i])) for i, p, (o, r) in icmp
        ]
    numbers[:, _ORIG_BYTES : _RESP_BYTES + 1] = _payload_sizes(c, s, is_tcp)
    numbers[:, _MISSED] = c.missed[s].sum(axis=1)
    numbers[:, [_ORIG_PKTS, _RESP_PKTS]] = c.pkts[s]
    numbers[:, [_ORIG_IPB, _RESP_IPB]] = c.ipb[s]
    numbers[:, _ORIG_L2 : _RESP_L2 + 1] = c.l2[s]
    numbers[:, _VLAN] = (meta >> 8) & 0xFFF
    numbers[:, _VNI] = (meta >> 24) & 0xFFFFFF
    numbers[:, _IPVER] = c.ipver[s]
    exact = _tcp_numbers(c, s, is_tcp, numbers)
    n = numbers[:, :_IS_TCP].T.tolist()  # the columns the records take as they are
    ahi, alo, bhi, blo = c.ahi[s], c.alo[s], c.bhi[s], c.blo[s]
    ohi, olo = np.where(orig_a, ahi, bhi), np.where(orig_a, alo, blo)
    rhi, rlo = np.where(orig_a, bhi, ahi), np.where(orig_a, blo, alo)
    okeys, rkeys = address_keys(ohi, olo), address_keys(rhi, rlo)
    names: dict[int, str] = {}
    history = _histories(c, s, slots, numbers, is_udp)
    columns: dict[str, list[Any]] = {
        "ts": _seconds(first),
        "uid": make_uids(seed, c.fid[s]),
        "orig_h": address_texts(ohi, olo, okeys, names),
        "orig_p": n[_ORIG_P],
        "resp_h": address_texts(rhi, rlo, rkeys, names),
        "resp_p": n[_RESP_P],
        "proto": _PROTO_TEXT[proto].tolist(),
        "service": _services(numbers[:, _RESP_P], is_icmp),
        "duration": _seconds(c.last[s] - first),
        "orig_bytes": n[_ORIG_BYTES],
        "resp_bytes": n[_RESP_BYTES],
        "conn_state": _conn_states(c, s, numbers, is_tcp, is_udp, history=history),
        "missed_bytes": n[_MISSED],
        "history": history,
        "orig_pkts": n[_ORIG_PKTS],
        "orig_ip_bytes": n[_ORIG_IPB],
        "resp_pkts": n[_RESP_PKTS],
        "resp_ip_bytes": n[_RESP_IPB],
        "orig_l2_bytes": n[_ORIG_L2],
        "resp_l2_bytes": n[_RESP_L2],
        "orig": _endpoints(identity, okeys, c.ep[s, 0].tolist()),
        "resp": _endpoints(identity, rkeys, c.ep[s, 1].tolist()),
        "node": [node] * k,
        "vlan": n[_VLAN],
        "tunnel_vni": n[_VNI],
        "ip_version": n[_IPVER],
        "tcp": _tcp_stats_of(numbers, is_tcp),
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
    if not exact:
        return records  # an RTT too long for an exact decimal: formatted from the records
    return RecordBatch(records, numbers, columns)


def _seconds(ns: I64, unset: npt.NDArray[np.bool_] | None = None) -> list[float | None]:
    """``ns / 1e9`` as Python's int division gives it, correctly rounded (None where *unset*):
    numpy's where every value is below 2**53, so exact as a float and rounded alike; times since
    the epoch are not, numpy would round their ns to float64 first."""
    if ns.size and np.abs(ns).max() >= 1 << 53:
        seconds: list[float | None] = [t / _NS for t in ns.tolist()]
    else:
        seconds = (ns / _NS).tolist()
    if unset is not None:
        for i in np.flatnonzero(unset).tolist():
            seconds[i] = None
    return seconds


def _services(resp_p: I64, is_icmp: npt.NDArray[np.bool_]) -> list[str | None]:
    service = np.full(resp_p.shape[0], None, object)
    for port, name in _SERVICES.items():
        service[(resp_p == port) & ~is_icmp] = name
    return service.tolist()


def _conn_states(
    c: FlowColumns,
    s: I64,
    numbers: I64,
    is_tcp: npt.NDArray[np.bool_],
    is_udp: npt.NDArray[np.bool_],
    *,
    history: list[str],
) -> list[str]:
    """Zeek's conn_state of each record (*history*: the letters, for RSTOS0)."""
    o_seen, r_seen = numbers[:, _ORIG_PKTS] > 0, numbers[:, _RESP_PKTS] > 0
    code = np.full(s.shape[0], _OTH, np.int8)
    code[is_udp] = np.where(o_seen & r_seen, _SF, np.where(o_seen, _S0, _SHR))[is_udp]
    tcp_i = np.flatnonzero(is_tcp)
    state = c.tcp_state[s[tcp_i]].astype(np.intp)
    no_bytes = (numbers[tcp_i, _ORIG_BYTES] == 0) & (numbers[tcp_i, _RESP_BYTES] == 0)
    code[tcp_i] = _TCP_CODES[state[:, 0], state[:, 1], no_bytes.astype(np.intp)]
    states: list[str] = _STATE_TEXT[code].tolist()
    for i in np.flatnonzero(code == _BY_HISTORY).tolist():  # RSTOS0 or OTH: the letters decide
        o, r = c.tcp_state[s[i]].tolist()
        sizes = numbers[i, _ORIG_BYTES : _RESP_BYTES + 1].tolist()
        states[i] = conn_state(o, r, sizes[0], sizes[1], history[i])
    return states


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
    rows = numbers[tcp_i]
    rows[:, _IS_TCP] = 1
    rows[:, _RETX_O : _RETX_O + 2] = c.retx[t]
    rows[:, _RST_O : _RST_O + 2] = c.rst_count[t]
    rows[:, _ZW_O : _ZW_O + 2] = c.zero_win[t]
    rows[:, _HAS_RTT_C] = has_c
    rows[:, _RTT_C] = np.where(has_c, synack - syn, 0)
    rows[:, _HAS_RTT_S] = has_s
    rows[:, _RTT_S] = np.where(has_s, ack - synack, 0)
    numbers[tcp_i] = rows
    return not (np.abs(rows[:, [_RTT_C, _RTT_S]]) >= _MAX_EXACT_NS).any()


def _payload_sizes(c: FlowColumns, s: I64, is_tcp: npt.NDArray[np.bool_]) -> I64:
    """Payload bytes per direction, Zeek's way for TCP: from sequence numbers when that side's
    SYN was seen (retransmissions count once), else the sum of segment payloads."""
    seen = c.hist_seen[s]
    size = c.seq_max[s] - c.seq_start[s].astype(np.int64) - 1
    size = np.maximum(size - (((seen & H_FIN) != 0) & (size > 0)), 0)
    by_seq = is_tcp[:, None] & ((seen & H_SYN) != 0) & c.seq_ok[s]
    return np.where(by_seq, size, c.pay[s].astype(np.int64))


def _histories(
    c: FlowColumns, s: I64, slots: list[int], numbers: I64, is_udp: npt.NDArray[np.bool_]
) -> list[str]:
    hist = [h.decode() for h in c.hist[s].tolist()]  # half the cost of a str array's
    longs = c.hist_long
    if longs:
        hist = [longs.get(slot) or h for slot, h in zip(slots, hist, strict=True)]
    udp_i = np.flatnonzero(is_udp)
    if udp_i.size:
        # letters in the order each side was first seen: a flipped flow began with the responder
        flipped = c.hist[s[udp_i]] == b"^"
        sides = (numbers[udp_i, _ORIG_PKTS] > 0) * 2 + (numbers[udp_i, _RESP_PKTS] > 0)
        for i, h in zip(udp_i.tolist(), _UDP_HISTORY[flipped * 4 + sides].tolist(), strict=True):
            hist[i] = h
    return hist


def _endpoints(identity: IdentityMap, keys: list[int], at_start: list[Any]) -> list[Any]:
    # pods appear live: an address unknown at flow start may be a pod by now
    external = EndpointKind.EXTERNAL
    return [
        now if e is None or e.kind is external else e
        for now, e in zip(identity.lookup_keys(keys), at_start, strict=True)
    ]


def _tcp_stats_of(numbers: I64, is_tcp: npt.NDArray[np.bool_]) -> list[TcpStats | None]:
    """The TCP health of the TCP rows, from their numbers (None for the others)."""
    tcp: list[TcpStats | None] = [None] * numbers.shape[0]
    tcp_i = np.flatnonzero(is_tcp)
    if tcp_i.size == 0:
        return tcp
    rows = numbers[tcp_i]
    retx_o, retx_r, rst_o, rst_r, zw_o, zw_r = rows[:, _RETX_O:_HAS_RTT_C].T.tolist()
    stats = zip(
        retx_o,
        retx_r,
        rst_o,
        rst_r,
        zw_o,
        zw_r,
        _seconds(rows[:, _RTT_C], rows[:, _HAS_RTT_C] == 0),
        _seconds(rows[:, _RTT_S], rows[:, _HAS_RTT_S] == 0),
        strict=True,
    )
    for i, stat in zip(tcp_i.tolist(), map(_tcp_stats, stats), strict=True):
        tcp[i] = stat
    return tcp


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
