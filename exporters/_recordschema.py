"""The columns of a flow record on disk: names as in ``FlowRecord.as_conn_log`` and their types.

One table serves the JSON-lines reader (an explicit schema, so a file whose first block holds
only UDP flows still reads ``tcp_rtt_client`` as a float), the Parquet files written on rotation,
and the report, which reads only ``REPORT_COLUMNS``. Text columns the report groups by are read
dictionary-encoded: pods and namespaces repeat millions of times in a day of records.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

_I64 = pa.int64()
_F64 = pa.float64()
_STR = pa.string()

#: Every field a record may carry, conn.log names first, in the writer's order.
RECORD_FIELDS: dict[str, Any] = {
    "ts": _F64,
    "uid": _STR,
    "id.orig_h": _STR,
    "id.orig_p": _I64,
    "id.resp_h": _STR,
    "id.resp_p": _I64,
    "proto": _STR,
    "service": _STR,
    "duration": _F64,
    "orig_bytes": _I64,
    "resp_bytes": _I64,
    "conn_state": _STR,
    "missed_bytes": _I64,
    "history": _STR,
    "orig_pkts": _I64,
    "orig_ip_bytes": _I64,
    "resp_pkts": _I64,
    "resp_ip_bytes": _I64,
    "orig_l2_bytes": _I64,
    "resp_l2_bytes": _I64,
    "orig_kind": _STR,
    "orig_namespace": _STR,
    "orig_pod": _STR,
    "orig_node": _STR,
    "resp_kind": _STR,
    "resp_namespace": _STR,
    "resp_pod": _STR,
    "resp_node": _STR,
    "node": _STR,
    "vlan": _I64,
    "tunnel_vni": _I64,
    "tunnel": _STR,
    "tunnel_id": _I64,
    "tunnel_dir": _STR,
    "outer_src": _STR,
    "outer_dst": _STR,
    "ip_version": _I64,
    "tcp_retrans_orig": _I64,
    "tcp_retrans_resp": _I64,
    "tcp_rst": _I64,
    "tcp_rst_orig": _I64,
    "tcp_rst_resp": _I64,
    "tcp_zero_win_orig": _I64,
    "tcp_zero_win_resp": _I64,
    "tcp_rtt_client": _F64,
    "tcp_rtt_server": _F64,
    "dns_queries": _I64,
    "dns_responses": _I64,
    "dns_query": _STR,
    "dns_qtype": _I64,
    "dns_qtype_name": _STR,
    "dns_rcode": _I64,
    "dns_rcode_name": _STR,
    "dns_latency": _F64,
    "end_reason": _STR,
}

#: What a report reads of each record (the other columns stay on disk).
REPORT_COLUMNS: tuple[str, ...] = (
    "ts",
    "duration",
    "proto",
    "id.resp_p",
    "conn_state",
    "orig_pkts",
    "resp_pkts",
    "orig_l2_bytes",
    "resp_l2_bytes",
    "orig_kind",
    "orig_namespace",
    "orig_pod",
    "orig_node",
    "resp_kind",
    "resp_namespace",
    "resp_pod",
    "resp_node",
    "tcp_retrans_orig",
    "tcp_retrans_resp",
    "tcp_rst",
    "tcp_rtt_client",
    "dns_queries",
    "dns_rcode",
    "dns_latency",
)

#: Report columns read as pandas categoricals.
CATEGORY_COLUMNS: tuple[str, ...] = (
    "proto",
    "conn_state",
    "orig_kind",
    "orig_namespace",
    "orig_pod",
    "orig_node",
    "resp_kind",
    "resp_namespace",
    "resp_pod",
    "resp_node",
)


def record_schema(columns: tuple[str, ...] | None = None) -> pa.Schema:
    """The arrow schema of ``columns`` (all record fields when None)."""
    names = RECORD_FIELDS if columns is None else columns
    return pa.schema([(name, RECORD_FIELDS[name]) for name in names])
