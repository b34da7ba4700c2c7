"""What one scrape sums: the metric inputs of many flows, one numpy column each.

Not a flow model: flows are ``analyzers.ActiveFlows`` (in flight) and ``analyzers.FlowRecord``
(ended). This is the collector's working form of either, built at scrape time so that one
grouping pass (``_aggregate``) serves both: endpoints become small integer codes, every count
one column of ``counts``, times seconds (NaN where unknown).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter

import numpy as np
import numpy.typing as npt

from analyzers import EXTERNAL, ActiveFlows, Endpoint, EndpointKind, FlowRecord

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Objects = npt.NDArray[np.object_]

#: Columns of ``ScrapeColumns.counts``, per sending side where a count has one.
COUNT_FIELDS: tuple[str, ...] = (
    "orig_packets",
    "orig_bytes",
    "resp_packets",
    "resp_bytes",
    "orig_retransmits",
    "resp_retransmits",
    "orig_resets",
    "resp_resets",
    "orig_zero_windows",
    "resp_zero_windows",
    "dns_queries",
    "dns_responses",
)

#: ``counts`` columns <- ``ActiveFlows`` attributes, in ``COUNT_FIELDS`` order.
_ACTIVE_COUNTS = (
    "orig_pkts",
    "orig_l2_bytes",
    "resp_pkts",
    "resp_l2_bytes",
    "retrans_orig",
    "retrans_resp",
    "rst_orig",
    "rst_resp",
    "zero_win_orig",
    "zero_win_resp",
    "dns_queries",
    "dns_responses",
)
# The record's L2 bytes: what tshark's frame.len sums, as the active view counts.
_RECORD_TRAFFIC = attrgetter("orig_pkts", "orig_l2_bytes", "resp_pkts", "resp_l2_bytes")
_TCP_COUNTS = attrgetter(
    "retrans_orig", "retrans_resp", "rst_orig", "rst_resp", "zero_win_orig", "zero_win_resp"
)
_TCP_RTT = attrgetter("rtt_client", "rtt_server")
_DNS_COUNTS = attrgetter("queries", "responses")
_DNS_ANSWER = attrgetter("rcode", "latency")
_PROTO_KEY = attrgetter("proto", "ip_version")
_ENDS = attrgetter("orig", "resp")


@dataclass(frozen=True, slots=True)
class ScrapeColumns:
    """Many flows' metric inputs; ``orig``/``resp`` index into ``endpoints``.

    ``counts`` has one row per flow and one column per name in ``COUNT_FIELDS``. ``dns_rcode``
    is -1 without a response; ``continues`` marks active-timeout slices of a flow still going
    (their totals count, the flow is not a new one).
    """

    endpoints: Sequence[Endpoint]
    orig: I32
    resp: I32
    proto: I32
    counts: I64
    handshake_rtt_s: F64
    dns_rcode: I32
    dns_latency_s: F64
    continues: npt.NDArray[np.bool_] | None = None  # None: no row is a slice of a live flow

    def __len__(self) -> int:
        return int(self.orig.shape[0])

    @classmethod
    def of_active(cls, view: ActiveFlows) -> ScrapeColumns:
        """The flow table's in-flight flows, with the TCP and DNS health counted so far."""
        n = len(view)
        endpoints, codes = _endpoint_codes(np.concatenate([view.orig, view.resp]))
        counts = np.zeros((n, len(COUNT_FIELDS)), dtype=np.int64)
        for column, attr in enumerate(_ACTIVE_COUNTS):
            counts[:, column] = getattr(view, attr)
        rtt_ns = view.handshake_rtt_ns
        latency_ns = view.dns_latency_ns
        return cls(
            endpoints=endpoints,
            orig=codes[:n].astype(np.int32),
            resp=codes[n:].astype(np.int32),
            proto=view.proto.astype(np.int32),
            counts=counts,
            handshake_rtt_s=np.where(rtt_ns >= 0, rtt_ns / 1e9, np.nan),
            dns_rcode=view.dns_rcode.astype(np.int32),
            dns_latency_s=np.where(latency_ns >= 0, latency_ns / 1e9, np.nan),
        )

    @classmethod
    def of_records(cls, records: Sequence[FlowRecord]) -> ScrapeColumns:
        """Ended flows' records. Attribute getters feed numpy (no per-record Python frame)."""
        n = len(records)
        ends = np.empty(2 * n, dtype=object)
        ends[:] = list(chain.from_iterable(map(_ENDS, records)))  # orig, resp of each record
        endpoints, codes = _endpoint_codes(ends)
        # An external endpoint is anonymous whatever the identity source put in its names.
        endpoints = [EXTERNAL if e.kind is EndpointKind.EXTERNAL else e for e in endpoints]
        counts = np.zeros((n, len(COUNT_FIELDS)), dtype=np.int64)
        counts[:, :4] = _ints(map(_RECORD_TRAFFIC, records), n, 4)
        rtt = np.full(n, np.nan)
        tcps = list(map(attrgetter("tcp"), records))
        rows = [i for i, t in enumerate(tcps) if t is not None]
        if rows:
            tcp = [tcps[i] for i in rows]
            counts[rows, 4:10] = _ints(map(_TCP_COUNTS, tcp), len(rows), 6)
            marks = np.array(list(map(_TCP_RTT, tcp)), dtype=np.float64)  # None -> NaN
            rtt[rows] = marks[:, 0] + marks[:, 1]  # SYN -> SYN-ACK -> ACK
        rcode = np.full(n, -1, dtype=np.int32)
        latency = np.full(n, np.nan)
        dnss = list(map(attrgetter("dns"), records))
        rows = [i for i, d in enumerate(dnss) if d is not None]
        if rows:
            dns = [dnss[i] for i in rows]
            counts[rows, 10:12] = _ints(map(_DNS_COUNTS, dns), len(rows), 2)
            answer = np.array(list(map(_DNS_ANSWER, dns)), dtype=np.float64)  # None -> NaN
            rcode[rows] = np.where(np.isnan(answer[:, 0]), -1, answer[:, 0]).astype(np.int32)
            latency[rows] = answer[:, 1]
        # One protocol number per distinct (proto, ip_version): a handful per scrape.
        keys = list(map(_PROTO_KEY, records))
        numbers = {key: rec.ip_proto for key, rec in dict(zip(keys, records, strict=True)).items()}
        reasons = map(attrgetter("end_reason"), records)
        return cls(
            endpoints=endpoints,
            orig=codes[0::2].astype(np.int32),
            resp=codes[1::2].astype(np.int32),
            proto=np.fromiter(map(numbers.__getitem__, keys), dtype=np.int32, count=n),
            counts=counts,
            handshake_rtt_s=rtt,
            dns_rcode=rcode,
            dns_latency_s=latency,
            continues=np.fromiter(map("active".__eq__, reasons), dtype=np.bool_, count=n),
        )


def _ints(rows: Iterable[Iterable[int]], n: int, width: int) -> I64:
    """*n* tuples of *width* ints as an (n, width) array, through one flat iterator."""
    flat = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=n * width)
    return flat.reshape(n, width)


def _endpoint_codes(objs: Objects) -> tuple[list[Endpoint], npt.NDArray[np.intp]]:
    """One code per element of *objs*, in order of first appearance, and the endpoint of each.

    The flow table holds the identity map's own Endpoint instances, so grouping by object
    identity (an int per flow) is exact and ~10x cheaper than hashing dataclasses; two equal
    instances merely get two codes, and the collector's EndpointIndex merges them by value.
    """
    if objs.shape[0] == 0:
        return [], np.zeros(0, dtype=np.intp)
    addrs = np.fromiter(map(id, objs), dtype=np.int64, count=objs.shape[0])
    # pandas only here: importing it costs ~0.3 s, which every short CLI command would pay.
    import pandas as pd  # noqa: PLC0415

    codes = pd.factorize(addrs)[0]
    first = np.unique(codes, return_index=True)[1]  # one instance per code, in order
    return list(objs[first]), codes
