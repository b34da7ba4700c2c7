"""Where notices go: a JSON-lines notice log and ``mirrorscope_notices_total`` on /metrics.

``NoticeLog`` writes through the records writers (``notices-*.jsonl`` beside ``flows-*.jsonl``
in ``--records DIR``, rotated the same way, or one stream for ``capture read --notices``).
``NoticeCounts`` counts notices by (note, namespace, pod) of the source, labelled like the
remote labels of the flow families (``external`` for addresses without a pod); sources past
``max_sources`` fold into ``pod="other"`` so an attacker choosing addresses cannot grow the
exposition. ``NoticeMetricsCollector`` exports the counts, also summed over ``--workers N``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from analyzers import Notice
from exporters._collector import remote_labels
from exporters._jsonl import JsonLinesWriter, RotatingJsonLinesWriter

#: (note, namespace, pod) → notices raised
NoticeKey = tuple[str, str, str]
DEFAULT_MAX_SOURCES = 1000


class NoticeLog:
    """A ``NoticeSink`` writing each notice as one JSON line."""

    def __init__(self, writer: JsonLinesWriter[Notice] | RotatingJsonLinesWriter[Notice]) -> None:
        self.writer = writer

    def on_notices(self, notices: Sequence[Notice]) -> None:
        self.writer.on_flows_ended(notices)

    def rotate_if_due(self) -> None:
        if isinstance(self.writer, RotatingJsonLinesWriter):
            self.writer.rotate_if_due()

    def close(self) -> None:
        self.writer.close()


class NoticeCounts:
    """A ``NoticeSink`` counting notices by note and source pod (thread-safe)."""

    def __init__(self, max_sources: int = DEFAULT_MAX_SOURCES) -> None:
        self._lock = threading.Lock()
        self._counts: dict[NoticeKey, int] = {}
        self._sources: set[tuple[str, str]] = set()
        self.max_sources = max_sources

    def on_notices(self, notices: Sequence[Notice]) -> None:
        with self._lock:
            for n in notices:
                namespace, pod, _ = remote_labels(n.src_endpoint)
                source = (namespace, pod)
                if source not in self._sources:
                    if len(self._sources) < self.max_sources:
                        self._sources.add(source)
                    else:  # sticky: a folded source stays folded, "other" never shrinks
                        source = ("", "other")
                key = (n.note, *source)
                self._counts[key] = self._counts.get(key, 0) + 1

    def snapshot(self) -> dict[NoticeKey, int]:
        with self._lock:
            return dict(self._counts)


def merge_notice_counts(parts: Iterable[Mapping[NoticeKey, int]]) -> dict[NoticeKey, int]:
    """Sum the counts of several workers."""
    out: dict[NoticeKey, int] = {}
    for part in parts:
        for key, n in part.items():
            out[key] = out.get(key, 0) + n
    return out


class NoticeMetricsCollector(Collector):
    """``mirrorscope_notices_total{node, note, namespace, pod}`` from *read* at scrape time."""

    def __init__(self, node: str, read: Callable[[], Mapping[NoticeKey, int]]) -> None:
        self._node = node
        self._read = read

    def describe(self) -> Iterable[Metric]:
        return []  # families are known at collect; describing would run a scrape at register

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "mirrorscope_notices",
            "Security notices raised (port_scan, address_scan, syn_flood, new_external_peer), "
            "by the source's pod ('external' for addresses without one).",
            labels=["node", "note", "namespace", "pod"],
        )
        for (note, namespace, pod), n in sorted(self._read().items()):
            family.add_metric([self._node, note, namespace, pod], n)
        yield family
