"""Our analysis chain, assembled in-process from the components as they land.

The benchmark times the real components (pcap reader, duplicate suppression, decoder, flow table,
flow records), never stand-ins: a component that is not importable yet makes the caller report
"not available: <component>" instead of a number.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from types import ModuleType
from typing import IO, Any

from bench._gen import TrafficSpec, pod_addresses

_NS = 1_000_000_000
#: How often (in packet time) ended flows are swept out: what a service does on a timer.
_EXPIRE_EVERY_NS = _NS


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


@dataclass(frozen=True, slots=True)
class ChainStats:
    packets: int
    flows: int  # flow records written
    suppressed: int  # mirrored copies removed by duplicate suppression


class Chain:
    """reader batches -> dedup -> decode -> flow table (full analysis) -> JSON-lines records."""

    def __init__(self, spec: TrafficSpec | None, records: IO[str], *, max_flows: int) -> None:
        decode = component("analyzers._decode", "decode")
        flow_table = component("analyzers._flowtable", "FlowTable")
        identity_map = component("analyzers._identity", "IdentityMap")
        endpoint = component("analyzers._identity", "Endpoint")
        kind = component("analyzers._identity", "EndpointKind")
        identity = identity_map()
        if spec is not None:
            entries = [
                (a, endpoint(kind.POD, "bench", f"pod-{i}", "node-1"))
                for i, a in enumerate(pod_addresses(spec))
            ]
            identity.replace("bench", entries)
        self._decode = decode
        self._dedup = component("analyzers", "Deduplicator")()
        self._records = records
        self._flows = 0
        self._packets = 0
        self._next_expire = 0
        self.table = flow_table(identity, max_flows=max_flows, on_ended=self._on_ended)

    def _on_ended(self, records: list[Any]) -> None:
        self._flows += len(records)
        self._records.write("".join(r.to_json_line() + "\n" for r in records))

    def on_batch(self, batch: Any) -> None:
        n = len(batch)
        if n == 0:
            return
        self._packets += n
        dec = self._decode(batch)
        self.table.process(batch, dec, self._dedup.mask(batch, dec))
        now = int(batch.ts_ns[-1])
        if now >= self._next_expire:
            self.table.expire(now)
            self._next_expire = now + _EXPIRE_EVERY_NS

    def finish(self) -> ChainStats:
        self.table.flush()
        self._records.flush()
        return ChainStats(
            packets=self._packets, flows=self._flows, suppressed=int(self._dedup.suppressed)
        )


def devnull() -> IO[str]:
    """Where records go when only their cost matters (they are still serialised and written)."""
    return open(os.devnull, "w")  # the caller owns and closes it
