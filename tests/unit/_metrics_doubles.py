"""Test doubles for the exporter's input: real flow records in a flow table made of a dict."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from analyzers import ActiveFlows, Endpoint, EndpointKind, FlowRecord, TcpStats
from exporters import FlowSnapshot

NODE = "node-a"


def pod(namespace: str, name: str) -> Endpoint:
    return Endpoint(EndpointKind.POD, namespace=namespace, pod=name, node=NODE)


def node(name: str) -> Endpoint:
    return Endpoint(EndpointKind.NODE, node=name)


def record(orig: Endpoint, resp: Endpoint, proto: str = "tcp", **fields: Any) -> FlowRecord:
    """A ``FlowRecord`` between *orig* and *resp*; *fields* override its zeros and blanks."""
    values: dict[str, Any] = {
        "ts": 1_700_000_000.0,
        "uid": "CTest",
        "orig_h": "10.0.0.1",
        "orig_p": 40000,
        "resp_h": "10.0.0.2",
        "resp_p": 80,
        "proto": proto,
        "service": None,
        "duration": 0.0,
        "orig_bytes": 0,
        "resp_bytes": 0,
        "conn_state": "OTH",
        "missed_bytes": 0,
        "history": "",
        "orig_pkts": 0,
        "orig_ip_bytes": 0,
        "resp_pkts": 0,
        "resp_ip_bytes": 0,
        "orig_l2_bytes": 0,
        "resp_l2_bytes": 0,
        "orig": orig,
        "resp": resp,
        "node": NODE,
        "vlan": 0,
        "tunnel_vni": 0,
        "ip_version": 4,
    }
    values.update(fields)
    return FlowRecord(**values)


def handshake(rtt_s: float, **counts: int) -> TcpStats:
    """TCP health of a flow whose handshake took *rtt_s* from SYN to the final ACK."""
    return TcpStats(rtt_client=rtt_s, rtt_server=0.0, **counts)


def _ns(seconds: float | None) -> int:
    return -1 if seconds is None else round(seconds * 1e9)


def active_flows(records: Sequence[FlowRecord]) -> ActiveFlows:
    """What the flow table's active view shows for these flows while they are still in flight."""

    def col(values: Sequence[int], dtype: type = np.int64) -> Any:
        return np.array(values, dtype=dtype).reshape(len(records))

    def ends(values: Sequence[Endpoint]) -> Any:
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out

    def rtt(r: FlowRecord) -> int:
        t = r.tcp
        if t is None or t.rtt_client is None or t.rtt_server is None:
            return -1
        return _ns(t.rtt_client + t.rtt_server)

    rs = records
    return ActiveFlows(
        proto=col([r.ip_proto for r in rs], np.uint8),
        orig_pkts=col([r.orig_pkts for r in rs]),
        resp_pkts=col([r.resp_pkts for r in rs]),
        orig_l2_bytes=col([r.orig_l2_bytes for r in rs]),
        resp_l2_bytes=col([r.resp_l2_bytes for r in rs]),
        orig_ip_bytes=col([r.orig_ip_bytes for r in rs]),
        resp_ip_bytes=col([r.resp_ip_bytes for r in rs]),
        first_ts_ns=col([_ns(r.ts) for r in rs]),
        last_ts_ns=col([_ns(r.ts + r.duration) for r in rs]),
        orig=ends([r.orig for r in rs]),
        resp=ends([r.resp for r in rs]),
        retrans_orig=col([r.tcp_retrans_orig for r in rs]),
        retrans_resp=col([r.tcp_retrans_resp for r in rs]),
        rst_orig=col([r.tcp_rst_orig for r in rs]),
        rst_resp=col([r.tcp_rst_resp for r in rs]),
        zero_win_orig=col([r.tcp_zero_win_orig for r in rs]),
        zero_win_resp=col([r.tcp_zero_win_resp for r in rs]),
        handshake_rtt_ns=col([rtt(r) for r in rs]),
        dns_queries=col([r.dns_queries for r in rs]),
        dns_responses=col([r.dns_responses for r in rs]),
        dns_rcode=col([-1 if r.dns_rcode is None else r.dns_rcode for r in rs]),
        dns_latency_ns=col([_ns(r.dns_latency) for r in rs]),
    )


class FakeFlowTable:
    """Active flows by id; ``end`` hands the flow's record to the sinks, as the real table."""

    def __init__(self) -> None:
        self.active: dict[int, FlowRecord] = {}
        self.evictions = 0
        self.sinks: list[Callable[[list[FlowRecord]], None]] = []
        self._ids = itertools.count()

    def start(self, flow: FlowRecord) -> int:
        fid = next(self._ids)
        self.active[fid] = flow
        return fid

    def update(self, fid: int, flow: FlowRecord) -> None:
        self.active[fid] = flow

    def end(self, fid: int) -> FlowRecord:
        flow = self.active.pop(fid)
        for sink in self.sinks:
            sink([flow])
        return flow

    def flow_snapshot(self) -> FlowSnapshot:
        return FlowSnapshot(
            active=active_flows(list(self.active.values())), evictions=self.evictions
        )


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
