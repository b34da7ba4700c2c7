"""IPFIX data records from flow records, packed into data sets that fit the path MTU.

A record carries *deltas* (RFC 7011's ``octetDeltaCount``: what happened since the previous
record of the same flow), so a collector sums a long flow's interim records into the flow. Octets
are IP bytes (IP header included), as softflowd and routers count them.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from analyzers import EndpointKind, FlowRecord
from exporters._ipfix_elements import FIXED_TAIL, TEMPLATE_V4, TEMPLATE_V6, varlen

HEADER = struct.Struct("!HHIII")  # version, length, export time, sequence, observation domain
VERSION = 10
SET_HEADER = 4
_U32 = 0xFFFF_FFFF

#: flowEndReason (IANA): idle 1, active 2, end of flow 3, forced end 4, lack of resources 5.
END_REASONS = {"idle": 1, "active": 2, "end": 3, "flush": 4, "evicted": 5}
INTERIM = "interim"  # our reason for a record of a flow that goes on (flowEndReason active)

#: Zeek conn_state to the conntrack state names Antrea exports as ``tcpState``.
TCP_STATES = {
    "S0": "SYN_SENT",
    "SH": "SYN_SENT",
    "SHR": "SYN_RECV",
    "S1": "ESTABLISHED",
    "S2": "FIN_WAIT",
    "S3": "CLOSE_WAIT",
    "SF": "TIME_WAIT",
    "REJ": "CLOSE",
    "RSTO": "CLOSE",
    "RSTR": "CLOSE",
    "RSTOS0": "CLOSE",
    "RSTRH": "CLOSE",
}

# TCP flags (RFC 9293) a Zeek history letter implies, for the side whose case it has
_FIN, _SYN, _RST, _PSH, _ACK = 0x01, 0x02, 0x04, 0x08, 0x10
_HISTORY_FLAGS = {"s": _SYN, "h": _SYN | _ACK, "a": _ACK, "d": _ACK | _PSH, "f": _FIN, "r": _RST}


@dataclass(frozen=True, slots=True)
class Delta:
    """What a record reports beyond what earlier records of its flow did."""

    orig_pkts: int
    resp_pkts: int
    orig_bytes: int  # IP bytes
    resp_bytes: int
    retrans_orig: int
    retrans_resp: int

    @classmethod
    def of(cls, r: FlowRecord) -> Delta:
        """A flow's totals so far (the delta against nothing sent yet)."""
        return cls(
            r.orig_pkts,
            r.resp_pkts,
            r.orig_ip_bytes,
            r.resp_ip_bytes,
            r.tcp_retrans_orig,
            r.tcp_retrans_resp,
        )

    def minus(self, sent: Delta) -> Delta:
        return Delta(
            self.orig_pkts - sent.orig_pkts,
            self.resp_pkts - sent.resp_pkts,
            self.orig_bytes - sent.orig_bytes,
            self.resp_bytes - sent.resp_bytes,
            self.retrans_orig - sent.retrans_orig,
            self.retrans_resp - sent.retrans_resp,
        )


def tcp_flags(history: str) -> tuple[int, int]:
    """tcpControlBits of each side (originator: upper-case letters), from the Zeek history."""
    orig = resp = 0
    for letter in history:
        bits = _HISTORY_FLAGS.get(letter.lower(), 0)
        if letter.isupper():
            orig |= bits
        else:
            resp |= bits
    return orig, resp


def flow_type(r: FlowRecord) -> int:
    """Antrea's flowType: 1 intra-node, 2 inter-node, 3 to external, 4 from external, 0 else."""
    o, p = r.orig, r.resp
    if o.kind is EndpointKind.POD and p.kind is EndpointKind.POD:
        return 1 if o.node == p.node else 2
    if o.kind is EndpointKind.POD:
        return 3
    if p.kind is EndpointKind.POD:
        return 4
    return 0


def _ms(seconds: float | None) -> int:
    """ntop's latency elements: half the round trip, in whole milliseconds (0: not measured)."""
    if seconds is None:
        return 0
    return min(round(seconds * 500), _U32)


def encode_record(r: FlowRecord, delta: Delta, reason: str) -> tuple[int, bytes]:
    """(template id, data record) for *r* reporting *delta*; ``reason`` may be ``INTERIM``."""
    v6 = r.ip_version == 6
    family = socket.AF_INET6 if v6 else socket.AF_INET
    proto = r.ip_proto
    icmp = proto in (1, 58)
    start_ms = round(r.ts * 1000)
    flags_o, flags_r = tcp_flags(r.history) if proto == 6 else (0, 0)
    o, p = r.orig, r.resp
    # ntop: server latency from SYN to SYN-ACK, client latency from SYN-ACK to the ACK, each
    # half of the round trip the mirror saw on that side
    fixed = FIXED_TAIL.pack(
        0 if icmp else r.orig_p,
        0 if icmp else r.resp_p,
        proto,
        ((r.orig_p & 0xFF) << 8 | (r.resp_p & 0xFF)) if icmp else 0,
        r.vlan,
        start_ms,
        start_ms + round(r.duration * 1000),
        delta.orig_bytes,
        delta.orig_pkts,
        delta.resp_bytes,
        delta.resp_pkts,
        flags_o,
        flags_r,
        END_REASONS["active"] if reason == INTERIM else END_REASONS.get(reason, 0),
        flow_type(r),
        min(max(delta.retrans_orig, 0), _U32),
        min(max(delta.retrans_resp, 0), _U32),
        _ms(r.tcp_rtt_server),
        _ms(r.tcp_rtt_client),
    )
    strings = (
        o.namespace if o.kind is EndpointKind.POD else "",
        o.pod,
        p.namespace if p.kind is EndpointKind.POD else "",
        p.pod,
        o.node,
        p.node,
        TCP_STATES.get(r.conn_state, "") if proto == 6 else "",
    )
    return (
        TEMPLATE_V6 if v6 else TEMPLATE_V4,
        socket.inet_pton(family, r.orig_h)
        + socket.inet_pton(family, r.resp_h)
        + fixed
        + b"".join(varlen(s) for s in strings),
    )


@dataclass(frozen=True, slots=True)
class Body:
    """Everything of one message but its header: sets, and how many data records they hold."""

    sets: bytes
    records: int


def pack_sets(records: list[tuple[int, bytes]], mtu: int) -> list[Body]:
    """Data sets, one per message body, each message at most *mtu* bytes (header included)."""
    room = mtu - HEADER.size - SET_HEADER
    out: list[Body] = []
    for tid in (TEMPLATE_V4, TEMPLATE_V6):
        chunk: list[bytes] = []
        size = 0
        for t, data in records:
            if t != tid:
                continue
            if chunk and size + len(data) > room:
                out.append(_data_set(tid, chunk))
                chunk, size = [], 0
            chunk.append(data)  # a record longer than the room still goes, alone
            size += len(data)
        if chunk:
            out.append(_data_set(tid, chunk))
    return out


def _data_set(tid: int, chunk: list[bytes]) -> Body:
    body = b"".join(chunk)
    return Body(struct.pack("!HH", tid, SET_HEADER + len(body)) + body, len(chunk))


def message(sets: bytes, *, export_s: int, sequence: int, domain: int) -> bytes:
    """A whole message: RFC 7011 §3.1 header (sequence modulo 2**32), then the sets."""
    return HEADER.pack(VERSION, HEADER.size + len(sets), export_s, sequence & _U32, domain) + sets
