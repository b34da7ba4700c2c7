"""What a scrape reads from the flow table: its in-flight flows and its eviction count.

The flow table (analyzers) owns the state; the exporter takes a copy at scrape time. With
``--workers N`` the service's parent serves the same snapshot merged from every worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from analyzers import ActiveFlows, FlowTable


@dataclass(frozen=True, slots=True)
class FlowSnapshot:
    """The flow table at one instant: a copy of its active flows and its evictions so far."""

    active: ActiveFlows = field(default_factory=ActiveFlows.empty)
    evictions: int = 0


class FlowSnapshotSource(Protocol):
    """The flow table as the exporter sees it."""

    def flow_snapshot(self) -> FlowSnapshot:
        """Copy of the active flows. A flow whose end was already delivered to the exporter must
        not be in it (end it under the lock, deliver after: that is fine)."""
        ...


class FlowTableSource:
    """``FlowSnapshotSource`` over one real flow table.

    The active view carries packets, bytes, identities and the TCP and DNS health counted so far,
    so a long connection's retransmits, resets, zero windows, handshake RTT and DNS show while it
    runs. When it ends, its record carries the same counts and the view no longer has the flow;
    the collector's drain-then-snapshot order counts it exactly once.
    """

    def __init__(self, table: FlowTable) -> None:
        self._table = table

    def flow_snapshot(self) -> FlowSnapshot:
        active = self._table.active_view()
        return FlowSnapshot(active=active, evictions=self._table.counters().flows_evicted)
