"""The pcap store seen from the service's listener: its routes, metrics and alert captures.

With one worker the store lives in this process and its open file's index is read directly;
with ``--workers N`` the parent reads the workers' counters, learned MACs and open files from
their last reports. Queries then find another process's open file by its name's start time (its
reported index is up to a tick old and would hide the newest second), while the listing shows the
reported index.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analyzers import IdentityMap
from exporters import OpenFile, PcapArchive, Selection, StoreConfig, StoreCounters, select
from mirrorctl.service._config import PcapApiConfig

if TYPE_CHECKING:
    from fastapi.routing import APIRouter
    from prometheus_client import CollectorRegistry

    from exporters import AlertCaptures, PcapSources


@dataclass(frozen=True, slots=True)
class PcapView:
    """What the listener reads of the workers' stores."""

    config: StoreConfig
    api: PcapApiConfig
    stores: Callable[[], Sequence[StoreCounters]]
    macs: Callable[[], Mapping[int, int]]
    open_files: Callable[[], Iterable[OpenFile]]
    in_process: bool  # one worker: its open file's index is current


class PcapEndpoints:
    """The pcap and alert routers over ``view``, their metrics registered in ``registry``."""

    def __init__(self, view: PcapView, identity: IdentityMap, registry: CollectorRegistry) -> None:
        # the web framework loads only when the service serves HTTP
        from exporters import (  # noqa: PLC0415
            AlertCaptures,
            ConcurrencyLimit,
            DownloadCounts,
            PcapMetricsCollector,
            PcapSources,
        )

        directory = view.config.directory
        self.downloads = DownloadCounts()
        archive = PcapArchive(directory, open_files=view.open_files if view.in_process else tuple)
        self.sources: PcapSources = PcapSources(
            archive=archive,
            identity=identity,
            macs=view.macs,
            stores=view.stores,
            downloads=self.downloads,
            limit=ConcurrencyLimit(view.api.max_downloads, "pcap downloads and streams"),
            max_bytes=view.api.max_download_bytes,
            listing=PcapArchive(directory, open_files=view.open_files),
        )

        def resolve(pod: str) -> Selection:
            sel = select(identity.entries(), view.macs(), pod=pod)
            if not sel.addresses:
                raise LookupError(f"pod {pod} has no address on this node")
            return sel

        self.alerts: AlertCaptures = AlertCaptures(
            directory / "kept",
            archive,
            resolve,
            self.sources.pod_of,
            lookback_s=view.api.alert_lookback_s,
            lookahead_s=view.api.alert_lookahead_s,
            quota_bytes=view.api.kept_quota_bytes,
            on_written=self._written,
        )
        registry.register(
            PcapMetricsCollector(directory, view.stores, self.downloads, self.alerts.usage)
        )

    def _written(self, ok: bool) -> None:
        if ok:
            self.downloads.kept += 1
        else:
            self.downloads.kept_failed += 1

    def routers(self) -> list[APIRouter]:
        from exporters import alerts_router, pcap_router  # noqa: PLC0415

        return [pcap_router(self.sources), alerts_router(self.alerts, self.downloads)]

    def close(self) -> None:
        """End live streams and the alert captures' thread (before the listener stops)."""
        self.sources.closing.set()
        self.alerts.close()
