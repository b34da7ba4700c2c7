"""What the exporter reads from the flow table: flow statistics as rows or numpy columns.

The flow table (analyzers) owns the state; the exporter only needs per-flow totals and the pod
identity of both sides. Active flows come as a columnar snapshot taken at scrape time; ended flows
are pushed to the exporter as rows (``FlowStats``) and kept as cumulative totals, so a counter never
drops when a flow moves from the active table to the ended ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import Protocol

import numpy as np
import numpy.typing as npt

from analyzers import Endpoint

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

#: IP protocol numbers that get their own ``protocol`` label value; every other number is ``other``,
#: so a scan of odd protocol numbers cannot add label values.
PROTOCOL_NAMES: dict[int, str] = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp"}
PROTOCOL_OTHER = "other"


def protocol_name(proto: int) -> str:
    return PROTOCOL_NAMES.get(proto, PROTOCOL_OTHER)


@dataclass(frozen=True, slots=True)
class FlowStats:
    """Totals of one bidirectional flow. ``orig`` is the side that sent the first packet.

    TCP counters are per sending side: ``orig_retransmits`` are segments the originator sent again,
    ``orig_resets`` RSTs it sent, ``orig_zero_windows`` zero-window advertisements it sent.
    ``handshake_rtt_s`` is NaN until the three-way handshake completed. ``dns_rcode`` is -1 without
    a response; ``dns_latency_s`` is NaN without a matched query/response pair.
    """

    orig: Endpoint
    resp: Endpoint
    proto: int
    orig_packets: int = 0
    orig_bytes: int = 0
    resp_packets: int = 0
    resp_bytes: int = 0
    orig_retransmits: int = 0
    resp_retransmits: int = 0
    orig_resets: int = 0
    resp_resets: int = 0
    orig_zero_windows: int = 0
    resp_zero_windows: int = 0
    handshake_rtt_s: float = math.nan
    dns_queries: int = 0
    dns_responses: int = 0
    dns_rcode: int = -1
    dns_latency_s: float = math.nan
    continues: bool = False  # an active-timeout slice: totals count, the flow is not a new one


#: Integer columns of ``FlowColumns``, in ``FlowStats`` field order.
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


_ROW_FIELDS = ("proto", *COUNT_FIELDS, "handshake_rtt_s", "dns_rcode", "dns_latency_s", "continues")
_ROW = attrgetter(*_ROW_FIELDS)


@dataclass(frozen=True, slots=True)
class FlowColumns:
    """Many flows as parallel columns; ``orig``/``resp`` index into ``endpoints``.

    ``counts`` has one row per flow and one column per name in ``COUNT_FIELDS``.
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
    def empty(cls) -> FlowColumns:
        return cls.from_rows(())

    @classmethod
    def from_rows(cls, rows: Sequence[FlowStats]) -> FlowColumns:
        """Columns of a few rows: ended flows drained at a scrape, test doubles."""
        index: dict[Endpoint, int] = {}

        def ep(e: Endpoint) -> int:
            return index.setdefault(e, len(index))

        n = len(rows)
        # One attrgetter call per row into one flat array: a pass per column costs twice as much.
        width = len(_ROW_FIELDS)
        flat = np.fromiter(chain.from_iterable(map(_ROW, rows)), np.float64, count=n * width)
        table = flat.reshape(n, width)
        ends = np.array([(ep(r.orig), ep(r.resp)) for r in rows], dtype=np.int32).reshape(n, 2)
        k = len(COUNT_FIELDS)
        return cls(
            endpoints=tuple(index),
            orig=ends[:, 0].copy(),
            resp=ends[:, 1].copy(),
            proto=table[:, 0].astype(np.int32),
            counts=table[:, 1 : 1 + k].astype(np.int64),
            handshake_rtt_s=table[:, 1 + k].copy(),
            dns_rcode=table[:, 2 + k].astype(np.int32),
            dns_latency_s=table[:, 3 + k].copy(),
            continues=table[:, 4 + k] != 0,
        )


@dataclass(frozen=True, slots=True)
class FlowSnapshot:
    """The flow table at one instant: a copy of the active flows' totals and its own counters."""

    active: FlowColumns
    evictions: int = 0


class FlowStatsSource(Protocol):
    """The flow table as the exporter sees it."""

    def flow_snapshot(self) -> FlowSnapshot:
        """Copy of the active flows' totals. A flow whose end was already delivered to the
        exporter must not be in it (end it under the lock, deliver after: that is fine)."""
        ...


class FlowEndSink(Protocol):
    """Receives every ended flow (idle, finished, evicted, sliced), once."""

    def on_flow_end(self, flow: FlowStats) -> None: ...
