"""The pcap store's metrics: what the store holds and did, downloads by status, kept captures.

Directory bytes and files come from one scan of the directory at scrape time (the workers'
own ``StoreCounters.bytes`` are as of each one's last rotation): one place, whatever N.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporters._pcapfiles import scan
from exporters._pcapstoreconfig import StoreCounters

__all__ = ["DownloadCounts", "PcapMetricsCollector"]


class DownloadCounts:
    """Answers of the pcap endpoints by HTTP status, and the kept (alert) captures written."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_status: dict[str, int] = {}
        self.kept = 0
        self.kept_failed = 0

    def count(self, status: int) -> None:
        with self._lock:
            key = str(status)
            self._by_status[key] = self._by_status.get(key, 0) + 1

    def by_status(self) -> dict[str, int]:
        with self._lock:
            return dict(self._by_status)


class PcapMetricsCollector(Collector):
    """``mirrorscope_pcap_*`` from the workers' store counters and a scan of the directory."""

    def __init__(
        self,
        directory: Path,
        stores: Callable[[], Sequence[StoreCounters]],
        downloads: DownloadCounts,
        kept: Callable[[], tuple[int, int]] = lambda: (0, 0),
    ) -> None:
        self._dir = directory
        self._stores = stores
        self._downloads = downloads
        self._kept = kept

    def collect(self) -> Iterator[Metric]:
        files = scan(self._dir)
        counters = list(self._stores())

        def gauge(name: str, doc: str, value: float) -> Metric:
            g = GaugeMetricFamily(f"mirrorscope_pcap_{name}", doc)
            g.add_metric([], value)
            return g

        def counter(name: str, doc: str, value: float) -> Metric:
            c = CounterMetricFamily(f"mirrorscope_pcap_{name}", doc)
            c.add_metric([], value)
            return c

        yield gauge(
            "store_bytes",
            "Bytes of the pcap store's files and indexes on disk.",
            sum(f.size + f.sidecar_size for f in files),
        )
        yield gauge("store_files", "Pcap files in the store.", len(files))
        yield gauge(
            "store_full",
            "1 while a worker's store cannot write (quota, free-space floor, disk full).",
            float(any(c.full for c in counters)),
        )
        yield counter(
            "frames_stored", "Frames written to the store.", sum(c.frames_stored for c in counters)
        )
        yield counter(
            "frames_not_stored",
            "Frames dropped while the store was full, by a failed write or with its queue full.",
            sum(c.frames_not_stored for c in counters),
        )
        yield counter(
            "frames_queue_full",
            "Frames dropped because the store's writer thread was behind (its queue full); "
            "also counted in frames_not_stored.",
            sum(c.frames_queue_full for c in counters),
        )
        yield gauge(
            "queued_bytes",
            "Records handed to the store's writer threads, not yet written.",
            sum(c.queued_bytes for c in counters),
        )
        yield counter(
            "written_bytes", "Bytes written to pcap files.", sum(c.bytes_written for c in counters)
        )
        yield counter(
            "evictions",
            "Files deleted, oldest first, to keep the quota and the free-space floor.",
            sum(c.evictions for c in counters),
        )
        yield counter(
            "write_errors", "Failed writes (ENOSPC, EIO...).", sum(c.write_errors for c in counters)
        )
        downloads = CounterMetricFamily(
            "mirrorscope_pcap_downloads",
            "Answers of the pcap endpoints (downloads, streams, kept files) by HTTP status.",
            labels=["status"],
        )
        for status, n in sorted(self._downloads.by_status().items()):
            downloads.add_metric([status], n)
        yield downloads
        kept_files, kept_bytes = self._kept()
        yield gauge("kept_captures", "Alert captures in the kept area.", kept_files)
        yield gauge("kept_bytes", "Bytes of the alert captures in the kept area.", kept_bytes)
        yield counter("kept_written", "Alert captures written since start.", self._downloads.kept)
