"""Our analysis chain in-process, composed exactly as ``mirrorctl capture read`` composes it.

The benchmark times the real components (pcap reader, capture service loop, duplicate
suppression, decoder, flow table, JSON-lines record writer), never stand-ins: a component that is
not importable yet makes the caller report "not available: <component>" instead of a number.
Running in-process (rather than timing the CLI) leaves out interpreter start and imports, which
are not packet work; the CLI is timed separately as a whole. Beside the JSON-lines writer one
more sink (``Audit``, a few additions per ended flow) tallies the records for the truth check.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from types import ModuleType
from typing import IO, Any

from bench._gen import TrafficSpec, pod_addresses


class UnavailableError(Exception):
    """A component the measurement needs is not in the tree yet."""

    def __init__(self, component: str) -> None:
        super().__init__(f"not available: {component}")
        self.component = component


def component(module: str, attr: str) -> Any:
    """``module.attr``, or ``UnavailableError`` naming it."""
    try:
        mod: ModuleType = importlib.import_module(module)
    except ImportError as e:
        raise UnavailableError(f"{module} ({e})") from None
    if not hasattr(mod, attr):
        raise UnavailableError(f"{module}.{attr}")
    return getattr(mod, attr)


def identity_for(spec: TrafficSpec | None) -> Any:
    """An identity map naming the generator's pod addresses (empty without a spec)."""
    identity = component("analyzers._identity", "IdentityMap")()
    if spec is not None:
        endpoint = component("analyzers._identity", "Endpoint")
        kind = component("analyzers._identity", "EndpointKind")
        entries = [
            (a, endpoint(kind.POD, "bench", f"pod-{i}", "node-1"))
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

    def on_flows_ended(self, records: list[Any]) -> None:
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
        pipeline_cls = component("analyzers._pipeline", "AnalysisPipeline")
        options_cls = component("analyzers._pipeline", "PipelineOptions")
        writer_cls = component("exporters._jsonl", "JsonLinesWriter")
        self.service_cls = component("capture._service", "CaptureService")
        self._writer = writer_cls(records)
        self._audit = Audit()
        self.pipeline = pipeline_cls(
            identity_for(spec), [self._writer, self._audit], options=options_cls(**options)
        )

    def finish(self) -> ChainStats:
        """Flush every active flow (end of file / shutdown) and report what went through."""
        self.pipeline.flush()
        self._writer.close()
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
