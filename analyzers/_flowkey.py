"""Bidirectional flow keys for a whole batch at once.

A flow is the unordered pair of endpoints ``(address, port)`` plus protocol, VLAN and tunnel
(type, VNI). Each row's two endpoints are put in canonical order (A < B) so both directions of a
conversation get the same key; ``src_is_a`` remembers which way the row went. The key is folded
into a 63-bit hash for grouping; the flow table checks the full key, so the hash only has to be
good, not collision-free.

ICMP has no ports: as Zeek does, the "ports" are the message type and code, and a request and its
reply (echo 8/0, ICMPv6 128/129, …) share one key because the type is mapped to its request type.
Endpoints of ICMP flows are then ordered by address alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analyzers._decoded import DecodedBatch, Status

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMP6 = 58

# reply type -> request type (RFC 792 / RFC 4443 pairs), so both share a key
_ICMP4_CLASS = np.arange(256, dtype=np.uint64)
_ICMP4_CLASS[[0, 14, 16, 18, 9]] = [8, 13, 15, 17, 10]
_ICMP6_CLASS = np.arange(256, dtype=np.uint64)
_ICMP6_CLASS[[129, 134, 136]] = [128, 133, 135]

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xC2B2AE3D27D4EB4F)
_M3 = np.uint64(0x165667B19E3779F9)
_M4 = np.uint64(0xD6E8FEB86659FD93)
_M5 = np.uint64(0xFF51AFD7ED558CCD)
_M6 = np.uint64(0xC4CEB9FE1A85EC53)


@dataclass(frozen=True, slots=True)
class FlowKeys:
    """Canonical key columns for selected rows of a batch (parallel to ``rows``)."""

    rows: I64
    a_hi: U64
    a_lo: U64
    b_hi: U64
    b_lo: U64
    ports: U64  # a_port << 16 | b_port (ICMP: type class << 16 | code)
    meta: U64  # proto | vlan << 8 | tun_type << 20 | vni << 24
    src_is_a: B
    hash63: U64  # key hash with the low bit cleared: callers put the direction there


def _mix(x: U64) -> U64:
    # murmur3's 64-bit finaliser: every input bit reaches every output bit
    x = x ^ (x >> np.uint64(33))
    x = x * _M5
    x = x ^ (x >> np.uint64(33))
    x = x * _M6
    return x ^ (x >> np.uint64(33))


def flow_keys(dec: DecodedBatch, rows: I64) -> FlowKeys:
    """Canonical keys of ``rows`` (IP rows only: the caller filters on ``status``)."""
    sh = dec.src_hi[rows]
    sl = dec.src_lo[rows]
    dh = dec.dst_hi[rows]
    dl = dec.dst_lo[rows]
    proto = dec.proto[rows]
    has_ports = dec.status[rows] == Status.L4
    sp = np.where(has_ports, dec.sport[rows], 0).astype(np.uint64)
    dp = np.where(has_ports, dec.dport[rows], 0).astype(np.uint64)
    icmp4 = proto == PROTO_ICMP
    icmp6 = proto == PROTO_ICMP6
    icmp = icmp4 | icmp6
    if icmp.any():
        typ = sp.astype(np.intp) & 0xFF
        sp = np.where(icmp4, _ICMP4_CLASS[typ], np.where(icmp6, _ICMP6_CLASS[typ], sp))
    # ports take part in the ordering only when they are real ports
    sp_cmp = np.where(icmp, 0, sp)
    dp_cmp = np.where(icmp, 0, dp)
    swap = (sh > dh) | ((sh == dh) & ((sl > dl) | ((sl == dl) & (sp_cmp > dp_cmp))))
    a_hi = np.where(swap, dh, sh)
    a_lo = np.where(swap, dl, sl)
    b_hi = np.where(swap, sh, dh)
    b_lo = np.where(swap, sl, dl)
    swap_ports = swap & ~icmp
    a_p = np.where(swap_ports, dp, sp)
    b_p = np.where(swap_ports, sp, dp)
    ports = (a_p << np.uint64(16)) | b_p
    meta = (
        proto.astype(np.uint64)
        | (dec.vlan[rows].astype(np.uint64) << np.uint64(8))
        | (dec.tun_type[rows].astype(np.uint64) << np.uint64(20))
        | (dec.tun_vni[rows].astype(np.uint64) << np.uint64(24))
    )
    h = a_hi * _M1
    h = _mix(h ^ a_lo) * _M2
    h = _mix(h ^ b_hi) * _M3
    h = _mix(h ^ b_lo) * _M4
    h = _mix(h ^ ports ^ (meta << np.uint64(32)) ^ (meta >> np.uint64(32)))
    h &= ~np.uint64(1)
    return FlowKeys(rows, a_hi, a_lo, b_hi, b_lo, ports, meta, ~swap, h)
