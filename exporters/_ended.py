"""The ended-flow sink: a queue the flow table appends to and the collector drains at scrape time.

Appending is all the flow table's thread pays (``deque.append`` is atomic, no lock shared with a
scrape); converting records into ``FlowStats`` happens at scrape time in the scraping thread.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Protocol

from analyzers import Endpoint, EndpointKind
from exporters._flowstats import FlowStats

_PROTO_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "sctp": 132}


class FlowRecordLike(Protocol):
    """The fields of ``analyzers``' FlowRecord (Zeek conn.log names) the metrics read."""

    @property
    def proto(self) -> str: ...
    @property
    def ip_version(self) -> int: ...
    @property
    def orig_pkts(self) -> int: ...
    @property
    def resp_pkts(self) -> int: ...
    @property
    def orig_l2_bytes(self) -> int: ...
    @property
    def resp_l2_bytes(self) -> int: ...
    @property
    def orig_kind(self) -> str: ...
    @property
    def orig_namespace(self) -> str: ...
    @property
    def orig_pod(self) -> str: ...
    @property
    def orig_node(self) -> str: ...
    @property
    def resp_kind(self) -> str: ...
    @property
    def resp_namespace(self) -> str: ...
    @property
    def resp_pod(self) -> str: ...
    @property
    def resp_node(self) -> str: ...
    @property
    def tcp_retrans_orig(self) -> int: ...
    @property
    def tcp_retrans_resp(self) -> int: ...
    @property
    def tcp_rst_orig(self) -> int: ...
    @property
    def tcp_rst_resp(self) -> int: ...
    @property
    def tcp_zero_win_orig(self) -> int: ...
    @property
    def tcp_zero_win_resp(self) -> int: ...
    @property
    def tcp_rtt_client(self) -> float | None: ...
    @property
    def tcp_rtt_server(self) -> float | None: ...
    @property
    def dns_rcode(self) -> int | None: ...
    @property
    def dns_latency(self) -> float | None: ...
    @property
    def dns_queries(self) -> int: ...
    @property
    def dns_responses(self) -> int: ...
    @property
    def end_reason(self) -> str: ...


def proto_number(proto: str, ip_version: int) -> int:
    """IP protocol number of a conn.log ``proto`` (Zeek writes ICMPv6 as ``icmp``)."""
    if proto == "icmp" and ip_version == 6:
        return 58
    if proto in _PROTO_NUMBERS:
        return _PROTO_NUMBERS[proto]
    return int(proto) if proto.isdigit() else 255


def _endpoint(kind: str, namespace: str, pod: str, node: str) -> Endpoint:
    try:
        k = EndpointKind(kind)
    except ValueError:
        k = EndpointKind.EXTERNAL
    if k is EndpointKind.EXTERNAL:
        return Endpoint(k)
    return Endpoint(k, namespace=namespace, pod=pod, node=node)


def stats_from_record(rec: FlowRecordLike) -> FlowStats:
    """The metrics' view of one flow record: L2 bytes (what tshark's frame.len sums)."""
    rtt = math.nan
    if rec.tcp_rtt_client is not None and rec.tcp_rtt_server is not None:
        rtt = rec.tcp_rtt_client + rec.tcp_rtt_server  # SYN -> SYN-ACK -> ACK
    return FlowStats(
        orig=_endpoint(rec.orig_kind, rec.orig_namespace, rec.orig_pod, rec.orig_node),
        resp=_endpoint(rec.resp_kind, rec.resp_namespace, rec.resp_pod, rec.resp_node),
        proto=proto_number(rec.proto, rec.ip_version),
        orig_packets=rec.orig_pkts,
        orig_bytes=rec.orig_l2_bytes,
        resp_packets=rec.resp_pkts,
        resp_bytes=rec.resp_l2_bytes,
        orig_retransmits=rec.tcp_retrans_orig,
        resp_retransmits=rec.tcp_retrans_resp,
        orig_resets=rec.tcp_rst_orig,
        resp_resets=rec.tcp_rst_resp,
        orig_zero_windows=rec.tcp_zero_win_orig,
        resp_zero_windows=rec.tcp_zero_win_resp,
        handshake_rtt_s=rtt,
        dns_queries=rec.dns_queries,
        dns_responses=rec.dns_responses,
        dns_rcode=-1 if rec.dns_rcode is None else rec.dns_rcode,
        dns_latency_s=math.nan if rec.dns_latency is None else rec.dns_latency,
        continues=rec.end_reason == "active",
    )


class EndedFlows:
    """Ended flows waiting for the next scrape. Give it to the flow table as a sink."""

    def __init__(self) -> None:
        self._queue: deque[FlowStats | FlowRecordLike] = deque()

    def on_flow_end(self, flow: FlowStats) -> None:
        self._queue.append(flow)

    def on_flows_ended(self, records: Sequence[FlowRecordLike]) -> None:
        """``analyzers``' FlowSink protocol: records are converted at scrape time, not here."""
        self._queue.extend(records)

    def __len__(self) -> int:
        return len(self._queue)

    def drain(self) -> list[FlowStats]:
        """Everything queued so far, oldest first, as ``FlowStats``."""
        out: list[FlowStats] = []
        while True:
            try:
                item = self._queue.popleft()
            except IndexError:
                return out
            out.append(item if isinstance(item, FlowStats) else stats_from_record(item))
