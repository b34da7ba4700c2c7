"""Our analysis chain in-process, assembled exactly as ``mirrorctl capture read`` assembles it.

The benchmark times the real components (pcap reader, capture service loop, duplicate
suppression, decoder, flow table, JSON-lines record writer), never stand-ins, built by the
service's one composition root (``mirrorctl.service.assemble``). Running in-process (rather than
timing the CLI) leaves out interpreter start and imports, which are not packet work; the CLI is
timed separately as a whole. Beside the JSON-lines writer one more sink (``Audit``, a few
additions per ended flow) tallies the records for the truth check.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import IO, Any

from analyzers import Endpoint, EndpointKind, FlowRecord, IdentityMap, PipelineOptions
from bench._gen import TrafficSpec, pod_addresses
from mirrorctl.service import Outputs, assemble


class UnavailableError(Exception):
    """A tool the measurement needs (a comparison's library) is not installed."""

    def __init__(self, component: str) -> None:
        super().__init__(f"not available: {component}")
        self.component = component


def identity_for(spec: TrafficSpec | None) -> IdentityMap:
    """An identity map naming the generator's pod addresses (empty without a spec)."""
    identity = IdentityMap()
    if spec is not None:
        entries = [
            (a, Endpoint(EndpointKind.POD, "bench", f"pod-{i}", "node-1"))
            for i, a in enumerate(pod_addresses(spec))
        ]
        identity.replace("bench", entries)
    return identity


class Audit:
    """A flow sink tallying what the records say, to hold against the generator's truth."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def _add(self, key: str, n: int) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def on_flows_ended(self, records: list[FlowRecord]) -> None:
        for r in records:
            self._add("packets", r.orig_pkts + r.resp_pkts)
            self._add("wire_bytes", r.orig_l2_bytes + r.resp_l2_bytes)
            self._add("ipv6_flows", int(r.ip_version == 6))
            self._add("vlan_flows", int(r.vlan != 0))
            self._add(f"{r.proto} conn_state {r.conn_state}", 1)
            if r.dns is not None:
                self._add("dns_flows", 1)
                self._add("dns_nxdomain", int(r.dns.rcode == 3))


@dataclass(frozen=True, slots=True)
class ChainStats:
    packets: int
    flows: int  # flow records written
    suppressed: int  # mirrored copies removed by duplicate suppression
    by_proto: dict[str, int]  # flow records by Zeek proto name (tcp, udp, icmp)
    audit: dict[str, int]  # what the records add up to (``Audit``)


class Chain:
    """AnalysisPipeline (dedup -> decode -> flow table) with a JSON-lines writer as its sink."""

    def __init__(self, spec: TrafficSpec | None, records: IO[str], **options: Any) -> None:
        self._audit = Audit()
        self.assembly = assemble(
            identity_for(spec),
            Outputs(records_stream=records, sinks=(self._audit,)),
            options=PipelineOptions(**options),
        )
        self.pipeline = self.assembly.pipeline

    def finish(self) -> ChainStats:
        """Flush every active flow (end of file / shutdown) and report what went through."""
        self.assembly.close()
        c = self.pipeline.counters()
        return ChainStats(
            packets=c.packets,
            flows=c.flows_ended,
            suppressed=c.duplicates,
            by_proto=dict(c.records_by_proto),
            audit=dict(self._audit.counts),
        )


def devnull() -> IO[str]:
    """Where records go when only their cost matters (they are still serialised and written)."""
    return open(os.devnull, "w")  # the caller owns and closes it
