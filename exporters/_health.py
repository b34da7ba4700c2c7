"""The capture's own health as metric families: what it received, lost, rejected and suppressed.

Honest drop counts are the point: kernel drops come from PACKET_STATISTICS, malformed frames by
reason from the decoder, and the coverage ratio compares what we received with what OVS says it
mirrored, which catches loss that no counter of ours can see (a full mirror0 queue, a wrong mirror).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporters._cardinality import MAX_MALFORMED_REASONS


@dataclass(frozen=True, slots=True)
class CaptureHealth:
    """Cumulative counters of the capture pipeline, read at scrape time.

    ``received``: frames the socket delivered to the analyzers (kernel drops excluded).
    ``kernel_dropped``: frames the kernel dropped because the ring was full.
    ``malformed``: frames the decoder rejected, by reason (``analyzers.Status`` names, lower case).
    ``duplicates``: frames suppressed as copies of one already counted.
    ``encapsulated``: frames by each encapsulation they crossed (``analyzers.Encap`` names, lower
    case): a frame in VLAN and GRE counts under both.
    """

    received: int = 0
    kernel_dropped: int = 0
    malformed: Mapping[str, int] = field(default_factory=dict)
    duplicates: int = 0
    encapsulated: Mapping[str, int] = field(default_factory=dict)


def bounded_reasons(malformed: Mapping[str, int]) -> dict[str, int]:
    """At most ``MAX_MALFORMED_REASONS`` label values; the smallest extra sum into ``other``."""
    if len(malformed) <= MAX_MALFORMED_REASONS:
        return dict(malformed)
    ranked = sorted(malformed.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = dict(ranked[: MAX_MALFORMED_REASONS - 1])
    kept["other"] = kept.get("other", 0) + sum(v for _, v in ranked[MAX_MALFORMED_REASONS - 1 :])
    return kept


def health_families(
    node: str,
    health: CaptureHealth | None,
    mirror_tx_packets: int | None,
    coverage: float | None,
) -> Iterator[Metric]:
    """Families of capture health; a family whose input is unknown is left out, not zeroed."""
    if health is not None:
        for name, doc, value in (
            (
                "mirrorscope_capture_received_packets",
                "Frames the capture socket delivered to the analyzers.",
                health.received,
            ),
            (
                "mirrorscope_capture_kernel_dropped_packets",
                "Frames the kernel dropped because the capture ring was full.",
                health.kernel_dropped,
            ),
            (
                "mirrorscope_capture_duplicate_packets",
                "Frames suppressed as duplicates of a frame already counted.",
                health.duplicates,
            ),
        ):
            c = CounterMetricFamily(name, doc, labels=["node"])
            c.add_metric([node], float(value))
            yield c
        malformed = CounterMetricFamily(
            "mirrorscope_capture_malformed_packets",
            "Frames the decoder rejected, by reason.",
            labels=["node", "reason"],
        )
        for reason, value in sorted(bounded_reasons(health.malformed).items()):
            malformed.add_metric([node, reason], float(value))
        yield malformed
        encapsulated = CounterMetricFamily(
            "mirrorscope_capture_encapsulated_frames",
            "Frames by each encapsulation they crossed (VLAN, MPLS, GRE, ERSPAN, VXLAN, ...).",
            labels=["node", "encap"],
        )
        for encap, value in sorted(health.encapsulated.items()):
            encapsulated.add_metric([node, encap], float(value))
        yield encapsulated
    if mirror_tx_packets is not None:
        tx = CounterMetricFamily(
            "mirrorscope_mirror_tx_packets",
            "Packets OVS sent to the mirror output port (its Interface statistics tx_packets).",
            labels=["node"],
        )
        tx.add_metric([node], float(mirror_tx_packets))
        yield tx
    if coverage is not None:
        ratio = GaugeMetricFamily(
            "mirrorscope_capture_coverage_ratio",
            "Received / mirrored-by-OVS packets between OVS statistics writes over the coverage "
            "window (1 = nothing lost).",
            labels=["node"],
        )
        ratio.add_metric([node], coverage)
        yield ratio
