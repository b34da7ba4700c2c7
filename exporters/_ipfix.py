"""The IPFIX exporter: a flow sink that sends ended flows at once and long flows' interim records.

Ended flows arrive as ``FlowRecord`` lists (``on_flows_ended``). Every ``active_timeout_s`` the
owner passes the records of the flows still running (``on_interim``); the exporter sends what
each did since its previous record and remembers the totals by uid, so the record sent when the
flow ends carries only the rest and a collector's sum equals the flow's record. Encoding happens
in the caller's thread (the capture thread), sending in one thread per collector.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from analyzers import FlowRecord
from exporters._ipfix_elements import template_set
from exporters._ipfix_message import INTERIM, Delta, encode_record, pack_sets
from exporters._ipfix_transport import IpfixSender, IpfixTarget, SenderCounters

log = logging.getLogger(__name__)

DEFAULT_MTU = 1400
DEFAULT_ACTIVE_TIMEOUT_S = 60.0
_MIN_MTU = 512  # room for the templates (under 400 bytes) and a record with long pod names


@dataclass(frozen=True, slots=True)
class IpfixOptions:
    """Where and how to export (picklable: ``--workers N`` gives it to each worker)."""

    targets: tuple[IpfixTarget, ...]
    #: Largest message, IPFIX header included (UDP: one datagram; keep it under the path MTU).
    mtu: int = DEFAULT_MTU
    #: Running flows are exported this often (what they did since their previous record).
    active_timeout_s: float = DEFAULT_ACTIVE_TIMEOUT_S
    #: Observation domain id (``--workers N``: the worker's index, one sequence each).
    domain: int = 0
    template_refresh_s: float = 60.0  # UDP: templates again this often (RFC 7011 §8.4)
    queue_max: int = 4096  # messages waiting per collector; beyond, the oldest is dropped

    def __post_init__(self) -> None:
        if self.mtu < _MIN_MTU:
            raise ValueError(f"mtu must be at least {_MIN_MTU} bytes, not {self.mtu}")
        if self.active_timeout_s <= 0:
            raise ValueError(f"active_timeout_s must be positive, not {self.active_timeout_s}")


class IpfixExporter:
    """Flow records to one or more IPFIX collectors (one sender thread each)."""

    def __init__(self, options: IpfixOptions) -> None:
        self.mtu = options.mtu
        self.active_timeout_s = options.active_timeout_s
        self._sent: dict[str, Delta] = {}  # uid -> totals already exported (running flows)
        templates = template_set()
        self.senders = [
            IpfixSender(
                t,
                templates,
                domain=options.domain,
                queue_max=options.queue_max,
                template_refresh_s=options.template_refresh_s,
            )
            for t in options.targets
        ]

    def on_flows_ended(self, records: list[FlowRecord]) -> None:
        encoded = []
        for r in records:
            total = Delta.of(r)
            sent = self._sent.pop(r.uid, None)
            delta = total if sent is None else total.minus(sent)
            encoded.append(encode_record(r, delta, r.end_reason))
        self._send(encoded)

    def on_interim(self, records: Iterable[FlowRecord]) -> None:
        """Records of running flows (their totals so far): send what changed since the last."""
        encoded = []
        for r in records:
            total = Delta.of(r)
            sent = self._sent.get(r.uid)
            delta = total if sent is None else total.minus(sent)
            if delta.orig_pkts == 0 and delta.resp_pkts == 0:
                continue
            self._sent[r.uid] = total
            encoded.append(encode_record(r, delta, INTERIM))
        self._send(encoded)

    def _send(self, encoded: list[tuple[int, bytes]]) -> None:
        if not encoded:
            return
        bodies = pack_sets(encoded, self.mtu)
        for sender in self.senders:
            sender.send(bodies)

    def counters(self) -> dict[str, SenderCounters]:
        """Each collector's counts, by its label (``udp:HOST:PORT``)."""
        return {str(s.target): s.counters() for s in self.senders}

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (each collector at most *timeout* seconds), then stop."""
        for sender in self.senders:
            sender.close(timeout)


class IpfixMetricsCollector(Collector):
    """Prometheus families of the exporters' counters, labelled by collector.

    *read* returns every collector's counters at scrape time (one exporter's ``counters``, or
    the sum the ``--workers N`` parent builds from its workers' reports).
    """

    def __init__(self, read: Callable[[], Mapping[str, SenderCounters]]) -> None:
        self._read = read

    def describe(self) -> Iterable[Metric]:
        return []  # families are known at collect; describing would run a scrape at register

    def collect(self) -> Iterable[Metric]:
        counts = self._read()
        families = (
            ("records", "Flow records exported over IPFIX."),
            ("messages", "IPFIX messages sent (templates included)."),
            ("send_errors", "IPFIX connects and sends that failed (each is retried)."),
            ("dropped_records", "Flow records dropped: the queue was full or closed unsent."),
        )
        for name, doc in families:
            family = CounterMetricFamily(f"mirrorscope_ipfix_{name}", doc, labels=["collector"])
            for label, c in sorted(counts.items()):
                family.add_metric([label], getattr(c, name))
            yield family
        queued = GaugeMetricFamily(
            "mirrorscope_ipfix_queued_messages",
            "IPFIX messages waiting to be sent.",
            labels=["collector"],
        )
        for label, c in sorted(counts.items()):
            queued.add_metric([label], c.queued)
        yield queued


def merge_counters(parts: Iterable[Mapping[str, SenderCounters]]) -> dict[str, SenderCounters]:
    """Sum counters of the same collector (the ``--workers N`` parent over its workers)."""
    out: dict[str, SenderCounters] = {}
    for part in parts:
        for label, c in part.items():
            o = out.get(label, SenderCounters())
            out[label] = SenderCounters(
                o.records + c.records,
                o.messages + c.messages,
                o.send_errors + c.send_errors,
                o.dropped_records + c.dropped_records,
                o.queued + c.queued,
            )
    return out
