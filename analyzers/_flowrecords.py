"""Ended flows' state turned into ``FlowRecord`` objects, a whole set of slots at a time.

Every field is computed for all the slots at once in numpy and converted to Python lists, so the
per-flow loop only picks values and builds objects: a million records stay affordable.
"""

from __future__ import annotations

import socket

import numpy as np
import numpy.typing as npt

from analyzers._flowcolumns import HIST_WIDTH, FlowColumns
from analyzers._flowkey import PROTO_ICMP, PROTO_ICMP6, PROTO_TCP, PROTO_UDP
from analyzers._flowtcp import handshake_marks
from analyzers._identity import EndpointKind, IdentityMap
from analyzers._records import DnsStats, FlowRecord, TcpStats, make_uids
from analyzers._tcpstate import H_FIN, H_SYN, RESP_SHIFT, conn_state

I64 = npt.NDArray[np.int64]
_NS = 1_000_000_000
_SERVICES = {53: "dns", 80: "http", 443: "ssl", 8080: "http"}


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
    c: FlowColumns, s: I64, reason: str, *, identity: IdentityMap, seed: bytes, node: str
) -> list[FlowRecord]:
    """Records for slots *s*, ended for *reason*; uids come from *seed* and the slots' ids."""
    if s.size == 0:
        return []
    meta = c.meta[s].astype(np.int64)
    proto = meta & 0xFF
    ports = c.ports[s].astype(np.int64)
    a_p = ports >> 16
    b_p = ports & 0xFFFF
    orig_a = c.orig_a[s]
    is_icmp = (proto == PROTO_ICMP) | (proto == PROTO_ICMP6)
    a_first = orig_a | is_icmp  # ICMP: type class and code stay in their columns
    op = np.where(a_first, a_p, b_p)
    rp = np.where(a_first, b_p, a_p)
    ahi, alo, bhi, blo = c.ahi[s], c.alo[s], c.bhi[s], c.blo[s]
    okeys = address_keys(np.where(orig_a, ahi, bhi), np.where(orig_a, alo, blo))
    rkeys = address_keys(np.where(orig_a, bhi, ahi), np.where(orig_a, blo, alo))
    pk, l2, ipb, pay = c.pkts[s], c.l2[s], c.ipb[s], c.pay[s]
    # payload bytes per direction, Zeek's way for TCP: from sequence numbers when that side's
    # SYN was seen (retransmissions count once), else the sum of segment payloads
    is_tcp = proto == PROTO_TCP
    seen = c.hseen[s].astype(np.int64)
    seq_ok = c.seq_ok[s]
    size = c.seq_max[s] - c.seq_start[s].astype(np.int64) - 1
    sizes = []
    for e in (0, 1):
        sh = seen >> (RESP_SHIFT * e)
        sz = size[:, e]
        sz = np.maximum(sz - (((sh & H_FIN) != 0) & (sz > 0)), 0)
        by_seq = is_tcp & ((sh & H_SYN) != 0) & seq_ok[:, e]
        sizes.append(np.where(by_seq, sz, pay[:, e]).tolist())
    tcpm = c.tcpm[s].astype(np.int64)
    st = tcpm[:, 0]
    syn_ts, synack_ts, ack_ts = handshake_marks(tcpm[:, 8:])
    retx = c.retx[s]
    hist = c.hist[s].astype(f"U{HIST_WIDTH}").tolist()
    longs = c.hist_long
    dns_of = c.dns
    lookup = identity.lookup_key
    external = EndpointKind.EXTERNAL
    names: dict[int, str] = {}
    ep = c.ep[s]
    uids = make_uids(seed, c.fid[s])
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
        c.first[s].tolist(),
        c.last[s].tolist(),
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
        c.ipver[s].tolist(),
        uids,
        st.tolist(),
        syn_ts.tolist(),
        synack_ts.tolist(),
        ack_ts.tolist(),
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
