"""Reduce many flows to one counter vector per (local pod, remote endpoint, protocol).

Every per-pod family is a sum over these vectors, so one grouping pass over the flow columns (numpy,
no per-flow Python) feeds the whole exposition. Vectors are additive: ended flows are summed
into cumulative vectors once, active flows are reduced again at each scrape, and a family's value
is the sum of both.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import numpy.typing as npt

from analyzers import Endpoint, EndpointKind
from exporters._flowstats import COUNT_FIELDS, PROTOCOL_NAMES, PROTOCOL_OTHER, FlowColumns

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: ``protocol`` label values, in vector index order.
PROTOCOLS: tuple[str, ...] = (*PROTOCOL_NAMES.values(), PROTOCOL_OTHER)
_PROTO_INDEX = np.full(256, len(PROTOCOLS) - 1, dtype=np.int64)
for _i, _num in enumerate(PROTOCOL_NAMES):
    _PROTO_INDEX[_num] = _i

#: DNS RCODE mnemonics (RFC 1035 §4.1.1, RFC 2136 §2.2) for the ``rcode`` label; other codes fold
#: into ``other`` so a hostile responder cannot mint label values.
RCODES: tuple[str, ...] = (
    "NOERROR",
    "FORMERR",
    "SERVFAIL",
    "NXDOMAIN",
    "NOTIMP",
    "REFUSED",
    "YXDOMAIN",
    "YXRRSET",
    "NXRRSET",
    "NOTAUTH",
    "NOTZONE",
    "other",
)

#: Upper bounds (seconds) of the handshake RTT buckets: in-cluster RTTs are tens of microseconds to
#: a few milliseconds; the tail covers cross-region externals and SYN retries (1 s, 3 s).
RTT_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 3.0,
)  # fmt: skip
#: Upper bounds (seconds) of the DNS latency buckets: cache hits (sub-ms) to resolver timeouts
#: (5 s).
DNS_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip

# Vector layout. Histogram slots hold non-cumulative bucket counts; the last slot of each is +Inf.
TX_PACKETS, TX_BYTES, RX_PACKETS, RX_BYTES, RETRANSMITS, RESETS, ZERO_WINDOWS, DNS_QUERIES = range(
    8
)
RCODE0 = 8
RTT0 = RCODE0 + len(RCODES)
RTT_SUM = RTT0 + len(RTT_BUCKETS) + 1
RTT_COUNT = RTT_SUM + 1
DNS0 = RTT_COUNT + 1
DNS_SUM = DNS0 + len(DNS_BUCKETS) + 1
DNS_COUNT = DNS_SUM + 1
WIDTH = DNS_COUNT + 1

Key = tuple[Endpoint, Endpoint, str]
K = TypeVar("K")

_F = {name: i for i, name in enumerate(COUNT_FIELDS)}


def _side_columns(side: str) -> tuple[list[int], list[int]]:
    """Which ``counts`` columns feed slots TX_PACKETS..ZERO_WINDOWS for the pod on ``side``."""
    other = "resp" if side == "orig" else "orig"
    src = [
        _F[f"{side}_packets"],
        _F[f"{side}_bytes"],
        _F[f"{other}_packets"],
        _F[f"{other}_bytes"],
        _F[f"{side}_retransmits"],
        _F[f"{side}_resets"],
        _F[f"{side}_zero_windows"],
    ]
    return src, list(range(TX_PACKETS, ZERO_WINDOWS + 1))


def protocol_counts(cols: FlowColumns) -> I64:
    """Number of flows per ``PROTOCOLS`` entry."""
    idx = _PROTO_INDEX[np.clip(cols.proto, 0, 255)]
    return np.bincount(idx, minlength=len(PROTOCOLS)).astype(np.int64)


def _histogram(
    out: F64, group: I64, values: npt.NDArray[np.float64], first: int, bounds: tuple[float, ...]
) -> None:
    ok = ~np.isnan(values)
    g, v = group[ok], values[ok]
    nb = len(bounds) + 1
    bucket = np.searchsorted(np.asarray(bounds), v, side="left")  # v <= bound, as Prometheus' le
    hist = np.bincount(g * nb + bucket, minlength=out.shape[0] * nb).reshape(-1, nb)
    out[:, first : first + nb] += hist
    out[:, first + nb] += np.bincount(g, weights=v, minlength=out.shape[0])
    out[:, first + nb + 1] += np.bincount(g, minlength=out.shape[0])


def aggregate(cols: FlowColumns) -> dict[Key, F64]:
    """One vector per (local pod, remote endpoint, protocol) over every pod side of every flow.

    A flow between two pods contributes to both pods (each sees its own tx/rx). Handshake RTT and
    DNS are attributed to the originator (the client) only, so summing them over pods counts each
    once.
    """
    result: dict[Key, F64] = {}
    if len(cols) == 0:
        return result
    eps = list(cols.endpoints)
    is_pod = np.fromiter((e.kind is EndpointKind.POD for e in eps), dtype=bool, count=len(eps))
    proto = _PROTO_INDEX[np.clip(cols.proto, 0, 255)]
    n_ep, n_proto = len(eps), len(PROTOCOLS)
    for side in ("orig", "resp"):
        local = cols.orig if side == "orig" else cols.resp
        remote = cols.resp if side == "orig" else cols.orig
        mask = is_pod[local]
        if not mask.any():
            continue
        key = (local[mask].astype(np.int64) * n_ep + remote[mask]) * n_proto + proto[mask]
        uniq, group = np.unique(key, return_inverse=True)
        group = group.reshape(-1).astype(np.int64)
        out = np.zeros((uniq.shape[0], WIDTH), dtype=np.float64)
        src, dst = _side_columns(side)
        counts = cols.counts[mask]
        for s, d in zip(src, dst, strict=True):
            out[:, d] = np.bincount(group, weights=counts[:, s], minlength=uniq.shape[0])
        if side == "orig":
            out[:, DNS_QUERIES] = np.bincount(
                group, weights=counts[:, _F["dns_queries"]], minlength=uniq.shape[0]
            )
            rcode = cols.dns_rcode[mask]
            slot = np.where((rcode >= 0) & (rcode < len(RCODES) - 1), rcode, len(RCODES) - 1)
            answered = rcode >= 0
            nr = len(RCODES)
            rc = np.bincount(
                group[answered] * nr + slot[answered],
                weights=counts[answered, _F["dns_responses"]],
                minlength=uniq.shape[0] * nr,
            )
            out[:, RCODE0 : RCODE0 + nr] = rc.reshape(-1, nr)
            _histogram(out, group, cols.handshake_rtt_s[mask], RTT0, RTT_BUCKETS)
            _histogram(out, group, cols.dns_latency_s[mask], DNS0, DNS_BUCKETS)
        for j, k in enumerate(uniq.tolist()):
            rest, p = divmod(k, n_proto)
            lo, re = divmod(rest, n_ep)
            vec = result.get((eps[lo], eps[re], PROTOCOLS[p]))
            if vec is None:
                result[(eps[lo], eps[re], PROTOCOLS[p])] = out[j]
            else:
                vec += out[j]
    return result


def add_vec(total: dict[K, F64], key: K, vec: F64) -> None:
    """``total[key] += vec``, copying on first sight so callers may keep ``vec``."""
    cur = total.get(key)
    if cur is None:
        total[key] = vec.copy()
    else:
        cur += vec


def add_into(total: dict[K, F64], part: dict[K, F64]) -> None:
    """``total += part``, key by key."""
    for k, v in part.items():
        add_vec(total, k, v)
