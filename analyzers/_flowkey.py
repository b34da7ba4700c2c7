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
from capture import njit, njit_inline

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
    canonical key is built by the grouping (``_groupkernel``), once per flow of a pass.
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


@njit
def _hash(  # noqa: PLR0917 - a compiled helper takes its values positionally
    a_hi: np.uint64,
    a_lo: np.uint64,
    a_port: np.uint64,
    b_hi: np.uint64,
    b_lo: np.uint64,
    b_port: np.uint64,
    meta: np.uint64,
    icmp_ports: np.uint64,
) -> np.uint64:
    """The 63-bit key hash (low bit clear) of a flow between two endpoints, either way round.

    An endpoint is its address and port (0 for ICMP) in one word, one xorshift-multiply round
    each before the symmetric sum; ICMP's type class and code (*icmp_ports*, 0 otherwise) and
    *meta* are folded in after it; murmur3's 64-bit finaliser makes every input bit reach every
    output bit.
    """
    h = _spread(_endpoint(a_hi, a_lo, a_port)) + _spread(_endpoint(b_hi, b_lo, b_port))
    h ^= meta * _M4
    h ^= icmp_ports * _M2
    h ^= h >> np.uint64(33)
    h *= _M5
    h ^= h >> np.uint64(33)
    h *= _M6
    h ^= h >> np.uint64(33)
    return h & ~np.uint64(1)


@njit
def _endpoint(hi: np.uint64, lo: np.uint64, port: np.uint64) -> np.uint64:
    return (((lo << np.uint64(16)) | port) * _M1) ^ (hi * _M2) ^ ((lo >> np.uint64(48)) * _M3)


@njit
def _spread(x: np.uint64) -> np.uint64:
    x ^= x >> np.uint64(29)
    return x * _M5


@njit
def canonical_key_hash(  # noqa: PLR0917 - a compiled helper takes its values positionally
    a_hi: np.uint64,
    a_lo: np.uint64,
    b_hi: np.uint64,
    b_lo: np.uint64,
    ports: np.uint64,
    meta: np.uint64,
) -> np.uint64:
    """``hash63`` of a flow from its canonical key (``Groups.keys``' row): ``flow_keys``'s hash,
    from the stored key.

    The flow table keeps keys, not hashes; its slot map hashes the slots it probes with this.
    """
    proto = meta & np.uint64(0xFF)
    icmp = proto in (PROTO_ICMP, PROTO_ICMP6)
    a_p = np.uint64(0) if icmp else ports >> np.uint64(16)
    b_p = np.uint64(0) if icmp else ports & np.uint64(0xFFFF)
    icmp_ports = ports if icmp else np.uint64(0)
    return _hash(a_hi, a_lo, a_p, b_hi, b_lo, b_p, meta, icmp_ports)


#: The decoder's columns a row's key is read from, in ``row_key``'s order.
KeySource = tuple[
    U64, U64, U64, U64,
    npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint16], npt.NDArray[np.uint16],
    npt.NDArray[np.uint16], npt.NDArray[np.uint8], npt.NDArray[np.uint32],
]  # fmt: skip


def key_source(dec: DecodedBatch) -> KeySource:
    """*dec*'s columns ``row_key`` reads: addresses, protocol, status, ports, VLAN, tunnel."""
    return (
        dec.src_hi, dec.src_lo, dec.dst_hi, dec.dst_lo, dec.proto, dec.status, dec.sport,
        dec.dport, dec.vlan, dec.tun_type, dec.tun_vni,
    )  # fmt: skip


@njit_inline
def row_key(  # noqa: PLR0917 - a compiled helper takes its values positionally
    sh: np.uint64,
    sl: np.uint64,
    dh: np.uint64,
    dl: np.uint64,
    proto: np.uint8,
    l4: bool,
    sport: np.uint16,
    dport: np.uint16,
    vlan: np.uint16,
    tun_type: np.uint8,
    vni: np.uint32,
) -> tuple[np.uint64, np.uint64, np.uint64, np.uint64, bool, bool]:
    """A row's (sport, dport, meta, hash63, ICMP, src is A) from its decoded values (*l4*: its
    status is ``L4``; values, not columns: a helper taking the columns costs each row a
    reference count up and down per column)."""
    sp = np.uint64(sport) if l4 else np.uint64(0)
    dp = np.uint64(dport) if l4 else np.uint64(0)
    is_icmp = proto in (PROTO_ICMP, PROTO_ICMP6)
    if is_icmp:
        # the reply type is keyed as its request type; ports take part in the ordering and
        # the endpoint hash only when they are real ports
        table = _ICMP4_CLASS if proto == PROTO_ICMP else _ICMP6_CLASS
        sp = table[sp & np.uint64(0xFF)]
        sp_k = dp_k = np.uint64(0)
        icmp_ports = (sp << np.uint64(16)) | dp
    else:
        sp_k, dp_k, icmp_ports = sp, dp, np.uint64(0)
    meta = (
        np.uint64(proto)
        | (np.uint64(vlan) << np.uint64(8))
        | (np.uint64(tun_type) << np.uint64(20))
        | (np.uint64(vni) << np.uint64(24))
    )
    swap = sh > dh or (sh == dh and (sl > dl or (sl == dl and sp_k > dp_k)))
    h = _hash(sh, sl, sp_k, dh, dl, dp_k, meta, icmp_ports)
    return sp, dp, meta, h, is_icmp, not swap


@njit_inline
def canonical(  # noqa: PLR0917 - a compiled helper takes its values positionally
    src_hi: np.uint64,
    src_lo: np.uint64,
    dst_hi: np.uint64,
    dst_lo: np.uint64,
    sport: np.uint64,
    dport: np.uint64,
    icmp: bool,
    src_is_a: bool,
) -> tuple[np.uint64, np.uint64, np.uint64, np.uint64, np.uint64]:
    """A row's canonical key but its meta: (a hi, a lo, b hi, b lo, ports), endpoint A < B;
    ICMP's "ports" are its type class and code, one-sided, never swapped."""
    a = src_is_a
    swap = not a and not icmp
    k0 = src_hi if a else dst_hi
    k1 = src_lo if a else dst_lo
    k2 = dst_hi if a else src_hi
    k3 = dst_lo if a else src_lo
    k4 = ((dport if swap else sport) << np.uint64(16)) | (sport if swap else dport)
    return k0, k1, k2, k3, k4


@njit
def _row_keys(rows: I64, src: KeySource, out: U64, icmp: B, src_is_a: B) -> None:
    """Per row: *out* gets (src hi, src lo, dst hi, dst lo, sport, dport, meta, hash)."""
    src_hi, src_lo, dst_hi, dst_lo, proto, status, sport, dport, vlan, tun_type, vni = src
    for k in range(rows.shape[0]):
        r = rows[k]
        sh, sl, dh, dl = src_hi[r], src_lo[r], dst_hi[r], dst_lo[r]
        sp, dp, meta, h, is_icmp, a = row_key(
            sh, sl, dh, dl, proto[r], status[r] == _L4, sport[r], dport[r], vlan[r],
            tun_type[r], vni[r],
        )  # fmt: skip
        out[k, 0] = sh
        out[k, 1] = sl
        out[k, 2] = dh
        out[k, 3] = dl
        out[k, 4] = sp
        out[k, 5] = dp
        out[k, 6] = meta
        out[k, 7] = h
        icmp[k] = is_icmp
        src_is_a[k] = a


def flow_keys(dec: DecodedBatch, rows: I64) -> FlowKeys:
    """Key material of ``rows`` (IP rows only: the caller filters on ``status``), one compiled
    loop over them."""
    n = rows.shape[0]
    out = np.empty((8, n), np.uint64).T  # each field a contiguous column
    icmp = np.empty(n, np.bool_)
    src_is_a = np.empty(n, np.bool_)
    _row_keys(rows, key_source(dec), out, icmp, src_is_a)
    sh, sl, dh, dl, sp, dp, meta, h = out.T
    return FlowKeys(rows, sh, sl, dh, dl, sp, dp, icmp, meta, src_is_a, h)
