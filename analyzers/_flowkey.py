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
from analyzers._flowicmp import CLASS4, CLASS6

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMP6 = 58

# reply type -> request type (Zeek's counterpart pairs, ``_flowicmp``), so both share a key
_ICMP4_CLASS = np.arange(256, dtype=np.uint64)
_ICMP4_CLASS[list(CLASS4)] = list(CLASS4.values())
_ICMP6_CLASS = np.arange(256, dtype=np.uint64)
_ICMP6_CLASS[list(CLASS6)] = list(CLASS6.values())

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xC2B2AE3D27D4EB4F)
_M3 = np.uint64(0x165667B19E3779F9)
_M4 = np.uint64(0xD6E8FEB86659FD93)
_M5 = np.uint64(0xFF51AFD7ED558CCD)
_M6 = np.uint64(0xC4CEB9FE1A85EC53)
_L4 = int(Status.L4)


@dataclass(frozen=True, slots=True)
class FlowKeys:
    """Per-row key material for selected rows of a batch (parallel to ``rows``).

    The hash is symmetric in the two endpoints, so it needs no canonical ordering; the full
    canonical key (``canonical``) is built only for the rows the flow table asks about.
    """

    rows: I64
    src_hi: U64
    src_lo: U64
    dst_hi: U64
    dst_lo: U64
    sport: U64  # ICMP: type class
    dport: U64  # ICMP: code
    icmp: B
    meta: U64  # proto | vlan << 8 | tun_type << 20 | vni << 24
    src_is_a: B
    hash63: U64  # key hash with the low bit cleared: callers put the direction there
    v4_only: bool  # every address fits in 48 bits: ``src_ord``/``dst_ord`` identify endpoints
    src_ord: U64  # address << 16 | port (0 for ICMP)
    dst_ord: U64

    def canonical(self, idx: I64) -> tuple[U64, U64, U64, U64, U64, U64]:
        """``(a_hi, a_lo, b_hi, b_lo, ports, meta)`` of rows *idx*, endpoint A < B."""
        sw = ~self.src_is_a[idx]
        sh, sl, dh, dl = self.src_hi[idx], self.src_lo[idx], self.dst_hi[idx], self.dst_lo[idx]
        sp, dp = self.sport[idx], self.dport[idx]
        swp = sw & ~self.icmp[idx]
        a_p = np.where(swp, dp, sp)
        b_p = np.where(swp, sp, dp)
        return (
            np.where(sw, dh, sh),
            np.where(sw, dl, sl),
            np.where(sw, sh, dh),
            np.where(sw, sl, dl),
            (a_p << np.uint64(16)) | b_p,
            self.meta[idx],
        )


def _mix(x: U64) -> U64:
    # murmur3's 64-bit finaliser: every input bit reaches every output bit
    x ^= x >> np.uint64(33)
    x *= _M5
    x ^= x >> np.uint64(33)
    x *= _M6
    x ^= x >> np.uint64(33)
    return x


def _spread(x: U64) -> U64:
    # one xorshift-multiply round: enough for an endpoint before the symmetric sum
    x ^= x >> np.uint64(29)
    x *= _M5
    return x


def canonical_hash(  # noqa: PLR0917 - the parts of a canonical key, as ``canonical`` gives them
    a_hi: U64, a_lo: U64, b_hi: U64, b_lo: U64, ports: U64, meta: U64
) -> U64:
    """``hash63`` of flows from their canonical keys: ``flow_keys``'s formula, from the stored key.

    The flow table keeps keys, not hashes; its slot map asks for the hashes of the slots it
    probes.
    """
    proto = meta & np.uint64(0xFF)
    icmp = (proto == PROTO_ICMP) | (proto == PROTO_ICMP6)
    a_p = ports >> np.uint64(16)
    b_p = ports & np.uint64(0xFFFF)
    if icmp.any():
        a_p = np.where(icmp, 0, a_p).astype(np.uint64)
        b_p = np.where(icmp, 0, b_p).astype(np.uint64)
    h = _spread(_endpoint(a_hi, a_lo, a_p))
    h += _spread(_endpoint(b_hi, b_lo, b_p))
    h ^= meta * _M4
    if icmp.any():
        h ^= np.where(icmp, ports, 0).astype(np.uint64) * _M2
    h = _mix(h)
    h &= ~np.uint64(1)
    return h


def _endpoint(hi: U64, lo: U64, port: U64) -> U64:
    # flow_keys's endpoint word (its IPv4 shortcut leaves out terms that are zero there)
    e = ((lo << np.uint64(16)) | port) * _M1
    e ^= (hi * _M2) ^ ((lo >> np.uint64(48)) * _M3)
    return e


def flow_keys(dec: DecodedBatch, rows: I64) -> FlowKeys:
    """Key material of ``rows`` (IP rows only: the caller filters on ``status``)."""
    if rows.shape[0] == dec.status.shape[0]:
        # every row is IP (the usual case): read the columns as they are, no gathers
        sh, sl, dh, dl, proto = dec.src_hi, dec.src_lo, dec.dst_hi, dec.dst_lo, dec.proto
        sp = dec.sport.astype(np.uint64)
        dp = dec.dport.astype(np.uint64)
        status = dec.status
    else:
        sh = dec.src_hi[rows]
        sl = dec.src_lo[rows]
        dh = dec.dst_hi[rows]
        dl = dec.dst_lo[rows]
        proto = dec.proto[rows]
        sp = dec.sport[rows].astype(np.uint64)
        dp = dec.dport[rows].astype(np.uint64)
        status = dec.status[rows]
    no_ports = status != _L4
    if no_ports.any():
        sp[no_ports] = 0
        dp[no_ports] = 0
    icmp4 = proto == PROTO_ICMP
    icmp6 = proto == PROTO_ICMP6
    icmp = icmp4 | icmp6
    any_icmp = bool(icmp.any())
    if any_icmp:
        typ = sp.astype(np.intp) & 0xFF
        sp = np.where(icmp4, _ICMP4_CLASS[typ], np.where(icmp6, _ICMP6_CLASS[typ], sp))
        # ports take part in the ordering and the endpoint hash only when they are real ports
        sp_k = np.where(icmp, 0, sp)
        dp_k = np.where(icmp, 0, dp)
    else:
        sp_k, dp_k = sp, dp
    v4_only = not (sh.any() or dh.any() or ((sl | dl) >> np.uint64(48)).any())
    s_ord = (sl << np.uint64(16)) | sp_k
    d_ord = (dl << np.uint64(16)) | dp_k
    # one hash formula for every batch: the v4 shortcut must give the same value
    es = s_ord * _M1
    ed = d_ord * _M1
    if v4_only:
        # IPv4-mapped addresses fit in 48 bits: address and port order as one 64-bit number
        swap = s_ord > d_ord
    else:
        swap = (sh > dh) | ((sh == dh) & ((sl > dl) | ((sl == dl) & (sp_k > dp_k))))
        es ^= (sh * _M2) ^ ((sl >> np.uint64(48)) * _M3)
        ed ^= (dh * _M2) ^ ((dl >> np.uint64(48)) * _M3)
    meta = proto.astype(np.uint64)
    if dec.vlan.any() or dec.tun_type.any():
        full = rows.shape[0] == dec.status.shape[0]
        vlan = dec.vlan if full else dec.vlan[rows]
        tun = dec.tun_type if full else dec.tun_type[rows]
        vni = dec.tun_vni if full else dec.tun_vni[rows]
        meta |= vlan.astype(np.uint64) << np.uint64(8)
        meta |= tun.astype(np.uint64) << np.uint64(20)
        meta |= vni.astype(np.uint64) << np.uint64(24)
    h = _spread(es)
    h += _spread(ed)  # symmetric: both directions hash alike
    h ^= meta * _M4
    if any_icmp:
        # ICMP type class and code belong to the key (and only ICMP rows' ports are one-sided)
        h ^= np.where(icmp, (sp << np.uint64(16)) | dp, 0).astype(np.uint64) * _M2
    h = _mix(h)
    h &= ~np.uint64(1)
    return FlowKeys(rows, sh, sl, dh, dl, sp, dp, icmp, meta, ~swap, h, v4_only, s_ord, d_ord)
