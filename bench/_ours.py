"""Our analysis chain in-process, assembled exactly as ``mirrorctl capture read`` assembles it.

The benchmark times the real components (pcap reader, capture service loop, duplicate
suppression, decoder, flow table, JSON-lines record writer), never stand-ins, built by the
service's one composition root (``mirrorctl.service.assemble``). Running in-process (rather than
timing the CLI) leaves out interpreter start and imports, which are not packet work; the CLI is
timed separately as a whole. For the truth check one more sink (``Audit``) keeps the records it
is given, one list extend per delivery, and tallies them when asked, after the clock has stopped:
the tally is the bench's check, not analysis work.
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
    """A flow sink keeping the records, to tally what they say against the generator's truth."""

    def __init__(self) -> None:
        self.records: list[FlowRecord] = []

    def on_flows_ended(self, records: list[FlowRecord]) -> None:
        self.records.extend(records)

    def counts(self) -> dict[str, int]:
        """What the records kept so far add up to."""
        counts: dict[str, int] = {}

        def add(key: str, n: int) -> None:
            counts[key] = counts.get(key, 0) + n

        for r in self.records:
            add("packets", r.orig_pkts + r.resp_pkts)
            add("wire_bytes", r.orig_l2_bytes + r.resp_l2_bytes)
            add("ipv6_flows", int(r.ip_version == 6))
            add("vlan_flows", int(r.vlan != 0))
            add(f"{r.proto} conn_state {r.conn_state}", 1)
            if r.dns is not None:
                add("dns_flows", 1)
                add("dns_nxdomain", int(r.dns.rcode == 3))
        return counts


@dataclass(frozen=True, slots=True)
class ChainStats:
    packets: int
    flows: int  # flow records written
    suppressed: int  # mirrored copies removed by duplicate suppression
    by_proto: dict[str, int]  # flow records by Zeek proto name (tcp, udp, icmp)


class Chain:
    """AnalysisPipeline (dedup -> decode -> flow table) with a JSON-lines writer as its sink.

    With *audit* the records are kept too (``Audit``), for ``audit()`` once the clock has stopped;
    a live receiver, whose run has no end in records, goes without.
    """

    def __init__(
        self, spec: TrafficSpec | None, records: IO[str], *, audit: bool = False, **options: Any
    ) -> None:
        self._audit = Audit() if audit else None
        self.assembly = assemble(
            identity_for(spec),
            Outputs(records_stream=records, sinks=() if self._audit is None else (self._audit,)),
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
        )

    def audit(self) -> dict[str, int]:
        """What the records written so far add up to (``Audit``; needs ``audit=True``)."""
        if self._audit is None:
            raise ValueError("this chain keeps no records: build it with audit=True")
        return self._audit.counts()


def devnull() -> IO[str]:
    """Where records go when only their cost matters (they are still serialised and written)."""
    return open(os.devnull, "w")  # the caller owns and closes it
