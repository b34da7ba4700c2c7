"""Adapter from the flow table (``active_view()``, ``counters()``) to ``FlowStatsSource``.

Typed by structure, so the exporter depends on the shape of the table's read API, not its module.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from exporters._flowstats import COUNT_FIELDS, FlowColumns, FlowSnapshot

#: ``counts`` column <- active-view attribute: every count the view carries, per side.
_VIEW_COUNTS: tuple[tuple[int, str], ...] = tuple(
    (COUNT_FIELDS.index(field), attr)
    for field, attr in (
        ("orig_packets", "orig_pkts"),
        ("orig_bytes", "orig_l2_bytes"),
        ("resp_packets", "resp_pkts"),
        ("resp_bytes", "resp_l2_bytes"),
        ("orig_retransmits", "retrans_orig"),
        ("resp_retransmits", "retrans_resp"),
        ("orig_resets", "rst_orig"),
        ("resp_resets", "rst_resp"),
        ("orig_zero_windows", "zero_win_orig"),
        ("resp_zero_windows", "zero_win_resp"),
        ("dns_queries", "dns_queries"),
        ("dns_responses", "dns_responses"),
    )
)


class ActiveFlowsLike(Protocol):
    @property
    def proto(self) -> npt.NDArray[np.uint8]: ...
    @property
    def orig_pkts(self) -> npt.NDArray[np.int64]: ...
    @property
    def resp_pkts(self) -> npt.NDArray[np.int64]: ...
    @property
    def orig_l2_bytes(self) -> npt.NDArray[np.int64]: ...
    @property
    def resp_l2_bytes(self) -> npt.NDArray[np.int64]: ...
    @property
    def orig(self) -> npt.NDArray[np.object_]: ...
    @property
    def resp(self) -> npt.NDArray[np.object_]: ...
    @property
    def retrans_orig(self) -> npt.NDArray[np.int64]: ...
    @property
    def retrans_resp(self) -> npt.NDArray[np.int64]: ...
    @property
    def rst_orig(self) -> npt.NDArray[np.int64]: ...
    @property
    def rst_resp(self) -> npt.NDArray[np.int64]: ...
    @property
    def zero_win_orig(self) -> npt.NDArray[np.int64]: ...
    @property
    def zero_win_resp(self) -> npt.NDArray[np.int64]: ...
    @property
    def handshake_rtt_ns(self) -> npt.NDArray[np.int64]: ...
    @property
    def dns_queries(self) -> npt.NDArray[np.int64]: ...
    @property
    def dns_responses(self) -> npt.NDArray[np.int64]: ...
    @property
    def dns_rcode(self) -> npt.NDArray[np.int64]: ...
    @property
    def dns_latency_ns(self) -> npt.NDArray[np.int64]: ...
    def __len__(self) -> int: ...


class TableCountersLike(Protocol):
    @property
    def flows_evicted(self) -> int: ...


class FlowTableLike(Protocol):
    def active_view(self) -> ActiveFlowsLike: ...
    def counters(self) -> TableCountersLike: ...


class FlowTableSource:
    """``FlowStatsSource`` over the real flow table.

    The active view carries packets, bytes, identities and the TCP and DNS health counted so far,
    so a long connection's retransmits, resets, zero windows, handshake RTT and DNS show while it
    runs. When it ends, its record carries the same counts and the view no longer has the flow;
    the collector's drain-then-snapshot order counts it exactly once.
    """

    def __init__(self, table: FlowTableLike) -> None:
        self._table = table

    def flow_snapshot(self) -> FlowSnapshot:
        view = self._table.active_view()
        evictions = self._table.counters().flows_evicted
        n = len(view)
        # The table holds the identity map's own Endpoint instances, so grouping by object
        # identity (an int per flow) is exact and ~10x cheaper than hashing dataclasses; two
        # equal instances merely get two codes, and EndpointIndex merges them by value.
        objs = np.concatenate([view.orig, view.resp])
        addrs = np.fromiter(map(id, objs), dtype=np.int64, count=objs.shape[0])
        # pandas only here: importing it costs ~0.3 s, which every short CLI command would pay.
        import pandas as pd  # noqa: PLC0415

        codes = pd.factorize(addrs)[0]
        uniques = objs[np.unique(codes, return_index=True)[1]]  # one instance per code, in order
        counts = np.zeros((n, len(COUNT_FIELDS)), dtype=np.int64)
        for column, attr in _VIEW_COUNTS:
            counts[:, column] = getattr(view, attr)
        rtt_ns = view.handshake_rtt_ns
        latency_ns = view.dns_latency_ns
        active = FlowColumns(
            endpoints=list(uniques),
            orig=codes[:n].astype(np.int32),
            resp=codes[n:].astype(np.int32),
            proto=view.proto.astype(np.int32),
            counts=counts,
            handshake_rtt_s=np.where(rtt_ns >= 0, rtt_ns / 1e9, np.nan),
            dns_rcode=view.dns_rcode.astype(np.int32),
            dns_latency_s=np.where(latency_ns >= 0, latency_ns / 1e9, np.nan),
        )
        return FlowSnapshot(active=active, evictions=evictions)
