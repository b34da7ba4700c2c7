"""How long flows live and how many the flow table holds: the one place their defaults are set.

The timeouts are Zeek's conn.log defaults, so records read like Zeek's for the same packets.
``AnalysisPipeline`` and the CLI (``--max-flows`` and its help) take their defaults from here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FlowTableOptions:
    """Flow-table bound and expiry; the defaults are the service's."""

    #: Flows held at once; beyond it the oldest idle ones end early (``end_reason`` evicted).
    max_flows: int = 2_000_000
    idle_timeout_s: float = 300.0  # TCP without packets (Zeek's tcp_inactivity_timeout)
    udp_idle_timeout_s: float = 60.0
    icmp_idle_timeout_s: float = 60.0
    tcp_closed_timeout_s: float = 5.0  # after the close completes (Zeek's tcp_close_delay)
    dns_session_timeout_s: float = 10.0  # UDP DNS flows (Zeek's dns_session_timeout)
    #: An unanswered SYN becomes a failed attempt event (Zeek's tcp_attempt_delay); its flow
    #: still ends at the idle timeout.
    tcp_attempt_timeout_s: float = 5.0
    #: A flow running longer ends in a record and goes on in a new one (``end_reason`` active).
    active_timeout_s: float = 1800.0

    def __post_init__(self) -> None:
        if self.max_flows < 1:
            raise ValueError("max_flows must be at least 1")
