"""Reduce many flows to one counter vector per (local pod, remote endpoint, protocol).

Every per-pod family is a sum over these vectors, so one grouping pass over the flow columns (numpy,
no per-flow Python) feeds the whole exposition. Vectors are additive: ended flows are summed
into cumulative vectors once, active flows are reduced again at each scrape, and a family's value
is the sum of both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analyzers import Endpoint, EndpointKind
from exporters._scrapecolumns import COUNT_FIELDS, ScrapeColumns

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: IP protocol numbers that get their own ``protocol`` label value; every other number is ``other``,
#: so a scan of odd protocol numbers cannot add label values.
PROTOCOL_NAMES: dict[int, str] = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp"}
#: ``protocol`` label values, in vector index order.
PROTOCOLS: tuple[str, ...] = (*PROTOCOL_NAMES.values(), "other")
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


def protocol_counts(cols: ScrapeColumns) -> I64:
    """Number of flows per ``PROTOCOLS`` entry; slices of a still-active flow do not count."""
    idx = _PROTO_INDEX[np.clip(cols.proto, 0, 255)]
    if cols.continues is not None:
        idx = idx[~cols.continues]
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


#: Stand-in remote for everything folded: deleted pods and remotes beyond the top-K.
OTHER = Endpoint(EndpointKind.EXTERNAL, pod="other")
OTHER_ID = 0
_LOCAL_SHIFT = 40
_REMOTE_SHIFT = 8
_REMOTE_MASK = (1 << (_LOCAL_SHIFT - _REMOTE_SHIFT)) - 1


class EndpointIndex:
    """Small integer ids for endpoints, so keys are int64 and grouping stays in numpy.

    The index grows with the endpoints seen; the collector compacts it (``compacted``) when most
    ids belong to pods long deleted, so pod churn does not grow memory without bound.
    """

    def __init__(self, node: str) -> None:
        self._node = node
        self._ids: dict[Endpoint, int] = {OTHER: OTHER_ID}
        self.endpoints: list[Endpoint] = [OTHER]
        self._is_pod: list[bool] = [False]
        self._is_local: list[bool] = [False]

    def ids(self, endpoints: Sequence[Endpoint]) -> I64:
        out = np.empty(len(endpoints), dtype=np.int64)
        for i, e in enumerate(endpoints):
            got = self._ids.get(e)
            if got is None:
                got = self._ids[e] = len(self.endpoints)
                self.endpoints.append(e)
                self._is_pod.append(e.kind is EndpointKind.POD)
                self._is_local.append(self.is_local_pod(e))
            out[i] = got
        return out

    def id_of(self, endpoint: Endpoint) -> int | None:
        return self._ids.get(endpoint)

    def is_local_pod(self, e: Endpoint) -> bool:
        """A pod on this node (or of unknown node): only those get per-pod series here, so that
        summing a pod's series over all nodes' exporters counts each packet once."""
        return e.kind is EndpointKind.POD and e.node in ("", self._node)

    def is_pod(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self._is_pod, dtype=bool)

    def is_local(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self._is_local, dtype=bool)

    def __len__(self) -> int:
        return len(self.endpoints)

    def compacted(self, keep: I64) -> tuple[EndpointIndex, I64]:
        """A new index holding only ids ``keep`` (plus OTHER), and the old-to-new id map."""
        fresh = EndpointIndex(self._node)
        kept = np.unique(keep[keep != OTHER_ID])
        remap = np.full(len(self.endpoints), -1, dtype=np.int64)
        remap[OTHER_ID] = OTHER_ID
        remap[kept] = fresh.ids([self.endpoints[i] for i in kept.tolist()])
        return fresh, remap


def make_keys(local: I64, remote: I64, proto: I64) -> I64:
    return (local << _LOCAL_SHIFT) | (remote << _REMOTE_SHIFT) | proto


def key_local(keys: I64) -> I64:
    return keys >> _LOCAL_SHIFT


def key_remote(keys: I64) -> I64:
    return (keys >> _REMOTE_SHIFT) & _REMOTE_MASK


def key_pair(keys: I64) -> I64:
    """(local, remote) part of a key: sorted keys stay sorted by it."""
    return keys >> _REMOTE_SHIFT


@dataclass(frozen=True, slots=True)
class KeyedVectors:
    """Counter vectors (rows of ``vecs``) under sorted, unique int64 keys (local, remote, proto)."""

    keys: I64
    vecs: F64

    @classmethod
    def empty(cls) -> KeyedVectors:
        return cls(np.zeros(0, dtype=np.int64), np.zeros((0, WIDTH)))

    @classmethod
    def grouped(cls, keys: I64, vecs: F64) -> KeyedVectors:
        """Sum rows with equal keys."""
        if keys.size == 0:
            return cls.empty()
        order = np.argsort(keys, kind="stable")
        k = keys[order]
        starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
        return cls(k[starts], np.add.reduceat(vecs[order], starts, axis=0))

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def plus(self, other: KeyedVectors) -> KeyedVectors:
        if len(other) == 0:
            return self
        if len(self) == 0:
            return other
        return KeyedVectors.grouped(
            np.concatenate([self.keys, other.keys]), np.concatenate([self.vecs, other.vecs])
        )

    def remapped(self, remap: I64) -> KeyedVectors:
        """The same rows under new endpoint ids (``EndpointIndex.compacted``)."""
        if len(self) == 0:
            return self
        proto = self.keys & ((1 << _REMOTE_SHIFT) - 1)
        keys = make_keys(remap[key_local(self.keys)], remap[key_remote(self.keys)], proto)
        return KeyedVectors.grouped(keys, self.vecs)

    def folded(self, expired: npt.NDArray[np.bool_]) -> KeyedVectors:
        """Drop rows of expired local pods; move expired remotes to ``OTHER``."""
        if len(self) == 0 or not expired.any():
            return self
        local, remote = key_local(self.keys), key_remote(self.keys)
        keep = ~expired[local]
        remote = np.where(expired[remote], OTHER_ID, remote)
        proto = self.keys & ((1 << _REMOTE_SHIFT) - 1)
        return KeyedVectors.grouped(
            make_keys(local[keep], remote[keep], proto[keep]), self.vecs[keep]
        )


def aggregate(cols: ScrapeColumns, index: EndpointIndex) -> KeyedVectors:
    """One vector per (local pod, remote endpoint, protocol) over every local pod side of a flow.

    A flow between two local pods contributes to both (each sees its own tx/rx). Handshake RTT
    and DNS are attributed to the originator (the client) only, so summing them over pods counts
    each once.
    """
    if len(cols) == 0:
        return KeyedVectors.empty()
    gid = index.ids(cols.endpoints)
    is_local = index.is_local()
    proto = _PROTO_INDEX[np.clip(cols.proto, 0, 255)]
    parts = []
    for side in ("orig", "resp"):
        local = gid[cols.orig if side == "orig" else cols.resp]
        remote = gid[cols.resp if side == "orig" else cols.orig]
        mask = is_local[local]
        if not mask.any():
            continue
        key = make_keys(local[mask], remote[mask], proto[mask])
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
        parts.append(KeyedVectors(uniq, out))
    result = KeyedVectors.empty()
    for part in parts:
        result = result.plus(part)
    return result
