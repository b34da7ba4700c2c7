"""The service's flows for a window: stored records that ended in it, plus the flows still active.

What ``GET /api/v1/flows`` and ``GET /report`` answer from. Stored records come from the records
directory by window (``load_table``); the active flows come from the flow table's *active view*
(``FlowSnapshotSource.flow_snapshot``, the copy /metrics reads), not from
``FlowTable.active_records``: the view exists in both the single-worker service and the
``--workers N`` parent (which holds no table), and it carries the same counters /metrics exports,
so a report over the service agrees with its Prometheus counters. An active flow counts in the
window its *last packet so far* falls in, as if it ended then; it has no ports, addresses or
state yet (those columns are null) and ``end_reason`` is ``active``.

The records are read before the snapshot is taken: a flow ending in between is in neither (its
bytes show in the next answer), never in both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analyzers import ActiveFlows
from exporters._recordschema import RECORD_FIELDS
from exporters._reportload import encoded, ended_in, load_table
from exporters._reportwindow import Window
from exporters._tablesource import FlowSnapshotSource

_PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmp", 132: "sctp"}  # ICMPv6: "icmp" as Zeek


@dataclass(frozen=True, slots=True)
class FlowFilter:
    """Which flows to keep: a pod (``namespace/name``) or namespace on either side, a protocol."""

    pod: str | None = None
    namespace: str | None = None
    protocol: str | None = None

    def __post_init__(self) -> None:
        if self.pod is not None and self.pod.count("/") != 1:
            raise ValueError(f"pod {self.pod!r} is not namespace/name")

    def apply(self, table: pa.Table) -> pa.Table:
        """The rows of ``table`` (record columns) that pass."""
        mask = None
        if self.pod is not None:
            ns, name = self.pod.split("/")
            mask = _either(table, lambda s: _is_pod(table, s, ns, name))
        if self.namespace is not None:
            ns_mask = _either(table, lambda s: _is_pod(table, s, self.namespace, None))
            mask = ns_mask if mask is None else pc.and_(mask, ns_mask)
        if self.protocol is not None:
            proto = pc.equal(table.column("proto").cast(pa.string()), self.protocol.lower())
            mask = proto if mask is None else pc.and_(mask, proto)
        if mask is None:
            return table
        return table.filter(pc.fill_null(mask, False))


def _is_pod(table: pa.Table, side: str, ns: str | None, name: str | None) -> pa.ChunkedArray:
    def text(column: str) -> pa.ChunkedArray:
        return table.column(f"{side}_{column}").cast(pa.string())

    mask = pc.equal(text("kind"), "pod")
    mask = pc.and_(mask, pc.equal(text("namespace"), ns))
    if name is not None:
        mask = pc.and_(mask, pc.equal(text("pod"), name))
    return mask


def _either(table: pa.Table, side: Callable[[str], pa.ChunkedArray]) -> pa.ChunkedArray:
    return pc.or_(pc.fill_null(side("orig"), False), pc.fill_null(side("resp"), False))


def active_table(active: ActiveFlows, columns: tuple[str, ...]) -> pa.Table:
    """The in-flight flows as record rows of ``columns`` (what the view lacks is null)."""
    n = len(active)
    first = active.first_ts_ns.astype(np.float64) / 1e9
    last = active.last_ts_ns.astype(np.float64) / 1e9
    values: dict[str, object] = {
        "ts": first,
        "duration": last - first,
        "proto": [_PROTO_NAMES.get(p, str(p)) for p in active.proto.tolist()],
        "orig_pkts": active.orig_pkts,
        "resp_pkts": active.resp_pkts,
        "orig_ip_bytes": active.orig_ip_bytes,
        "resp_ip_bytes": active.resp_ip_bytes,
        "orig_l2_bytes": active.orig_l2_bytes,
        "resp_l2_bytes": active.resp_l2_bytes,
        "tcp_retrans_orig": active.retrans_orig,
        "tcp_retrans_resp": active.retrans_resp,
        "tcp_rst": active.rst_orig + active.rst_resp,
        "tcp_rst_orig": active.rst_orig,
        "tcp_rst_resp": active.rst_resp,
        "tcp_zero_win_orig": active.zero_win_orig,
        "tcp_zero_win_resp": active.zero_win_resp,
        "end_reason": ["active"] * n,
    }
    rtt = active.handshake_rtt_ns
    values["tcp_rtt_client"] = pa.array(rtt / 1e9, mask=rtt < 0, type=pa.float64())
    dns = (active.dns_queries > 0) | (active.dns_responses > 0)
    values["dns_queries"] = pa.array(active.dns_queries, mask=~dns, type=pa.int64())
    values["dns_responses"] = pa.array(active.dns_responses, mask=~dns, type=pa.int64())
    values["dns_rcode"] = pa.array(active.dns_rcode, mask=active.dns_rcode < 0, type=pa.int64())
    latency = active.dns_latency_ns
    values["dns_latency"] = pa.array(latency / 1e9, mask=latency < 0, type=pa.float64())
    for side, eps in (("orig", active.orig), ("resp", active.resp)):
        values[f"{side}_kind"] = [str(e.kind) for e in eps]
        values[f"{side}_namespace"] = [e.namespace for e in eps]
        values[f"{side}_pod"] = [e.pod for e in eps]
        values[f"{side}_node"] = [e.node for e in eps]
    arrays = [
        pa.array(values[c], type=RECORD_FIELDS[c]) if c in values else pa.nulls(n, RECORD_FIELDS[c])
        for c in columns
    ]
    return pa.Table.from_arrays(arrays, names=list(columns))


class FlowQuery:
    """Flows for a window from a records directory (None: the service keeps none) and a table."""

    def __init__(self, records: Path | None, active: FlowSnapshotSource | None) -> None:
        self.records = records
        self.active = active

    def table(self, window: Window, flt: FlowFilter, columns: tuple[str, ...]) -> pa.Table:
        """``columns`` of the flows that ended (or last saw a packet) in ``window``, filtered."""
        needed = tuple(dict.fromkeys([*columns, *_FILTER_COLUMNS]))
        parts = []
        if self.records is not None and self.records.is_dir():
            stored, _ = load_table(self.records, window, needed)
            parts.append(stored)
        if self.active is not None:
            live = active_table(self.active.flow_snapshot().active, needed)
            parts.append(ended_in(encoded(live), window))
        if not parts:
            return encoded(pa.schema([(c, RECORD_FIELDS[c]) for c in columns]).empty_table())
        # the same columns in both, dictionaries differ per chunk: unify to one schema
        tables = [encoded(t).select(list(needed)) for t in parts]
        schema = tables[0].schema
        table = pa.concat_tables([t.cast(schema) for t in tables])
        return flt.apply(table).select(list(columns))


_FILTER_COLUMNS = (
    "proto",
    "orig_kind",
    "orig_namespace",
    "orig_pod",
    "resp_kind",
    "resp_namespace",
    "resp_pod",
    "ts",
    "duration",
)
