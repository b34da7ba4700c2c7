"""Test doubles for the exporter's input: a flow table made of dicts (a data structure)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from analyzers import Endpoint, EndpointKind
from exporters import FlowColumns, FlowSnapshot, FlowStats

NODE = "node-a"


def pod(namespace: str, name: str) -> Endpoint:
    return Endpoint(EndpointKind.POD, namespace=namespace, pod=name, node=NODE)


def node(name: str) -> Endpoint:
    return Endpoint(EndpointKind.NODE, node=name)


class FakeFlowTable:
    """Active flows by id; ``end`` hands the flow to the sinks and counts it, as the real table."""

    def __init__(self) -> None:
        self.active: dict[int, FlowStats] = {}
        self.ended_total = 0
        self.evictions = 0
        self.sinks: list[Callable[[FlowStats], None]] = []
        self._ids = itertools.count()

    def start(self, flow: FlowStats) -> int:
        fid = next(self._ids)
        self.active[fid] = flow
        return fid

    def update(self, fid: int, flow: FlowStats) -> None:
        self.active[fid] = flow

    def end(self, fid: int) -> FlowStats:
        flow = self.active.pop(fid)
        self.ended_total += 1
        for sink in self.sinks:
            sink(flow)
        return flow

    def flow_snapshot(self) -> FlowSnapshot:
        return FlowSnapshot(
            active=FlowColumns.from_rows(list(self.active.values())),
            evictions=self.evictions,
        )


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
