"""Flow records as conn.log JSON lines, a whole delivery at a time.

The flow table's deliveries (``RecordBatch``: the records, their numbers as int64 rows and the
columns they were built from) are written by one compiled loop (``_jsonkernel``) from those rows
and the text columns, never transposed back from the records: every value parses as
``as_conn_log()``'s, times written as exact decimals of their nanoseconds. Any other list of
records takes the Python formatter below.

The Python formatter's text is ``json.dumps(record.as_conn_log(), separators=(",", ":"))`` for
every record, but built column-wise: the records (named tuples) are transposed with one ``zip``,
the optional and nested parts become text fragments per column, and each line is one ``%`` of a
fixed template over a row of the columns (C, no Python frame per field). Measured on the bench pcap
(20 k records): ~5.0 us a record, about what a per-record f-string cost (5.2 us); the text itself
(float reprs, ~30 numbers) is what costs, not reaching the values. A dict per record and an encoder
cost more: ``as_conn_log`` alone is 4.1 us, ``orjson.dumps`` 5.4 us a call, and orjson over a whole
list of dicts (0.8 us a record) still needs the dicts. Identifier fields (uid, addresses, proto,
service, state, history, end reason) are written verbatim: the flow table's are plain by
construction, any other list's once the whole delivery is checked plain; names and DNS text are
escaped by json's own string encoder.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Mapping, Sequence
from itertools import chain, repeat
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from analyzers._identity import Endpoint
    from analyzers._records import DnsStats, FlowRecord, TcpStats

I64 = npt.NDArray[np.int64]

_quote = encode_basestring_ascii  # json.dumps's own string encoder (C)

# text that needs no JSON escaping: printable ASCII without quote or backslash
_UNPLAIN = re.compile(r"[^ !#-\[\]-~]").search

_LINE = (
    '{"ts":%r,"uid":"%s","id.orig_h":"%s","id.orig_p":%d,"id.resp_h":"%s","id.resp_p":%d,'
    '"proto":"%s"%s,"duration":%r,"orig_bytes":%d,"resp_bytes":%d,"conn_state":"%s",'
    '"missed_bytes":%d%s,"orig_pkts":%d,"orig_ip_bytes":%d,"resp_pkts":%d,"resp_ip_bytes":%d,'
    '"orig_l2_bytes":%d,"resp_l2_bytes":%d,%s,%s,"node":%s,"vlan":%d,"tunnel_vni":%d%s,'
    '"ip_version":%d%s%s,"end_reason":"%s"}\n'
)
_TUNNEL = ',"tunnel":%s,"tunnel_id":%s,"tunnel_dir":%s,"outer_src":%s,"outer_dst":%s'
_NO_TUNNEL = ',"tunnel":null,"tunnel_id":null,"tunnel_dir":null,"outer_src":null,"outer_dst":null'

_TUNNEL_FIELDS = ("tunnel", "tunnel_id", "tunnel_dir", "outer_src", "outer_dst")

_TCP = (
    ',"tcp_retrans_orig":%d,"tcp_retrans_resp":%d,"tcp_rst":%d,"tcp_rst_orig":%d,'
    '"tcp_rst_resp":%d,"tcp_zero_win_orig":%d,"tcp_zero_win_resp":%d'
)


class RecordBatch(list["FlowRecord"]):
    """Records as the flow table built them, with their numbers as rows (``_jsonkernel``'s
    ``NUM_FIELDS``, one row a record) and the columns they were built from (each of
    ``FlowRecord``'s fields by name): ``json_lines`` formats those in one compiled loop.

    A list like any delivery; one changed after it was built is formatted from its records.
    """

    __slots__ = ("_built", "columns", "numbers")

    def __init__(
        self, records: list[FlowRecord], numbers: I64, columns: Mapping[str, Sequence[Any]]
    ) -> None:
        super().__init__(records)
        self._built = tuple(records)
        self.numbers = numbers
        self.columns = columns

    def intact(self) -> bool:
        """The records are still the ones the numbers were taken from."""
        built = self._built
        return len(self) == len(built) and all(map(operator.is_, self, built))


def join_deliveries(parts: Sequence[list[FlowRecord]]) -> list[FlowRecord]:
    """The records of *parts* as one delivery (a ``RecordBatch`` when every part is one)."""
    parts = [p for p in parts if p]
    if len(parts) <= 1:
        return parts[0] if parts else []
    records = list(chain.from_iterable(parts))
    batches = [p for p in parts if isinstance(p, RecordBatch) and p.intact()]
    if len(batches) == len(parts):
        columns = {
            name: list(chain.from_iterable(b.columns[name] for b in batches))
            for name in batches[0].columns
        }
        return RecordBatch(records, np.concatenate([b.numbers for b in batches]), columns)
    return records


def json_lines(records: Sequence[FlowRecord]) -> str:
    """The JSON lines of *records*, each ended by a newline, in order."""
    if not records:
        return ""
    if isinstance(records, RecordBatch) and records.intact():
        return _compiled_lines(records)
    (
        ts,
        uid,
        orig_h,
        orig_p,
        resp_h,
        resp_p,
        proto,
        service,
        duration,
        orig_bytes,
        resp_bytes,
        conn_state,
        missed_bytes,
        history,
        orig_pkts,
        orig_ip_bytes,
        resp_pkts,
        resp_ip_bytes,
        orig_l2_bytes,
        resp_l2_bytes,
        orig,
        resp,
        node,
        vlan,
        tunnel_vni,
        ip_version,
        tcp,
        dns,
        end_reason,
        tunnel,
        tunnel_id,
        tunnel_dir,
        outer_src,
        outer_dst,
    ) = zip(*records, strict=True)
    tokens = chain(uid, orig_h, resp_h, proto, conn_state, history, end_reason)
    if _UNPLAIN("".join(tokens) + "".join(s for s in service if s is not None)) is not None:
        return "".join(json.dumps(r.as_conn_log(), separators=(",", ":")) + "\n" for r in records)
    rows = zip(
        ts,
        uid,
        orig_h,
        orig_p,
        resp_h,
        resp_p,
        proto,
        ["" if s is None else f',"service":"{s}"' for s in service],
        map(round, duration, repeat(6)),
        orig_bytes,
        resp_bytes,
        conn_state,
        missed_bytes,
        [f',"history":"{h}"' if h else "" for h in history],
        orig_pkts,
        orig_ip_bytes,
        resp_pkts,
        resp_ip_bytes,
        orig_l2_bytes,
        resp_l2_bytes,
        _endpoints("orig", orig),
        _endpoints("resp", resp),
        map(_quote, node),
        vlan,
        tunnel_vni,
        _tunnels(tunnel, tunnel_id, tunnel_dir, outer_src, outer_dst),
        ip_version,
        ["" if t is None else _tcp(t) for t in tcp],
        ["" if d is None else _dns(d) for d in dns],
        end_reason,
        strict=True,
    )
    return "".join(map(_LINE.__mod__, rows))


def _compiled_lines(batch: RecordBatch) -> str:
    """The lines of a delivery as the flow table built it, from its numbers and text columns.

    No escaping check: the identifiers in these columns are plain by construction (base62 uids,
    address text, protocol, service and state names, Zeek's history letters, the table's end
    reasons); names and DNS text are quoted by json's encoder.
    """
    from analyzers._jsonkernel import (  # noqa: PLC0415 - numba loads with the first delivery
        LINE_OVERHEAD,
        NUM_FIELDS,
        NUMBER_BYTES,
        TEXT_FIELDS,
        format_lines,
    )

    c = batch.columns
    quoted = {n: _quote(n) for n in set(c["node"])}  # one node, or a few when joined
    text = "\n".join(
        chain(
            c["uid"],
            c["orig_h"],
            c["resp_h"],
            c["proto"],
            ["" if s is None else s for s in c["service"]],
            c["conn_state"],
            c["history"],
            _endpoints("orig", c["orig"]),
            _endpoints("resp", c["resp"]),
            map(quoted.__getitem__, c["node"]),
            _tunnels(*(c[f] for f in _TUNNEL_FIELDS)),
            ["" if d is None else _dns(d) for d in c["dns"]],
            c["end_reason"],
        )
    )
    data = np.frombuffer((text + "\n").encode("ascii"), np.uint8)
    room = data.shape[0] + len(batch) * (LINE_OVERHEAD + NUMBER_BYTES * len(NUM_FIELDS))
    out = np.empty(room, np.uint8)
    end = format_lines(batch.numbers, data, len(TEXT_FIELDS), out)
    return str(out[:end].data, "ascii")  # one copy, no bytes between


def _tunnels(
    tunnel: Sequence[str | None],
    tunnel_id: Sequence[int | None],
    tunnel_dir: Sequence[str | None],
    outer_src: Sequence[str | None],
    outer_dst: Sequence[str | None],
) -> Sequence[str]:
    if not any(tunnel):  # most deliveries: no flow came in a tunnel
        return [_NO_TUNNEL] * len(tunnel)
    return [
        _NO_TUNNEL
        if kind is None
        else _TUNNEL % tuple(map(_json_value, (kind, tid, direction, src, dst)))
        for kind, tid, direction, src, dst in zip(
            tunnel, tunnel_id, tunnel_dir, outer_src, outer_dst, strict=True
        )
    ]


def _json_value(value: str | int | None) -> str:
    if value is None:
        return "null"
    return _quote(value) if isinstance(value, str) else str(value)


def _endpoints(side: str, endpoints: Sequence[Endpoint]) -> list[str]:
    # a delivery's endpoints are a few shared objects (the identity map's): text once per object
    ids = list(map(id, endpoints))
    text = {
        key: f'"{side}_kind":"{e.kind}","{side}_namespace":{_quote(e.namespace)},'
        f'"{side}_pod":{_quote(e.pod)},"{side}_node":{_quote(e.node)}'
        for key, e in dict(zip(ids, endpoints, strict=True)).items()
    }
    return list(map(text.__getitem__, ids))


def _tcp(t: TcpStats) -> str:
    text = _TCP % (
        t.retrans_orig,
        t.retrans_resp,
        t.rst_orig + t.rst_resp,
        t.rst_orig,
        t.rst_resp,
        t.zero_win_orig,
        t.zero_win_resp,
    )
    if t.rtt_client is not None:
        text += f',"tcp_rtt_client":{round(t.rtt_client, 9)!r}'
    if t.rtt_server is not None:
        text += f',"tcp_rtt_server":{round(t.rtt_server, 9)!r}'
    return text


def _dns(d: DnsStats) -> str:
    text = f',"dns_queries":{d.queries},"dns_responses":{d.responses}'
    if d.query is not None:
        text += f',"dns_query":{_quote(d.query)}'
    if d.qtype is not None:
        text += f',"dns_qtype":{d.qtype}'
        name = d.qtype_name
        if name is not None:
            text += f',"dns_qtype_name":{_quote(name)}'
    if d.rcode is not None:
        text += f',"dns_rcode":{d.rcode}'
        name = d.rcode_name
        if name is not None:
            text += f',"dns_rcode_name":{_quote(name)}'
    if d.latency is not None:
        text += f',"dns_latency":{round(d.latency, 9)!r}'
    return text
