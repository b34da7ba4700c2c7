"""Adapter from the flow table (``active_view()``, ``counters()``) to ``FlowStatsSource``.

Typed by structure, so the exporter depends on the shape of the table's read API, not its module.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from exporters._flowstats import COUNT_FIELDS, FlowColumns, FlowSnapshot

_ORIG_PACKETS = COUNT_FIELDS.index("orig_packets")
_ORIG_BYTES = COUNT_FIELDS.index("orig_bytes")
_RESP_PACKETS = COUNT_FIELDS.index("resp_packets")
_RESP_BYTES = COUNT_FIELDS.index("resp_bytes")


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
    def __len__(self) -> int: ...


class TableCountersLike(Protocol):
    @property
    def flows_evicted(self) -> int: ...


class FlowTableLike(Protocol):
    def active_view(self) -> ActiveFlowsLike: ...
    def counters(self) -> TableCountersLike: ...


class FlowTableSource:
    """``FlowStatsSource`` over the real flow table.

    The active view carries packets, bytes and identities; TCP and DNS health of a flow reach the
    metrics when the flow ends (or is sliced by the active timeout).
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
        codes = pd.factorize(addrs)[0]
        uniques = objs[np.unique(codes, return_index=True)[1]]  # one instance per code, in order
        counts = np.zeros((n, len(COUNT_FIELDS)), dtype=np.int64)
        counts[:, _ORIG_PACKETS] = view.orig_pkts
        counts[:, _ORIG_BYTES] = view.orig_l2_bytes
        counts[:, _RESP_PACKETS] = view.resp_pkts
        counts[:, _RESP_BYTES] = view.resp_l2_bytes
        active = FlowColumns(
            endpoints=list(uniques),
            orig=codes[:n].astype(np.int32),
            resp=codes[n:].astype(np.int32),
            proto=view.proto.astype(np.int32),
            counts=counts,
            handshake_rtt_s=np.full(n, np.nan),
            dns_rcode=np.full(n, -1, dtype=np.int32),
            dns_latency_s=np.full(n, np.nan),
        )
        return FlowSnapshot(active=active, evictions=evictions)
