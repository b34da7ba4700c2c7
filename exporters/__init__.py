"""Exporters: Prometheus metrics, pcap store, flow reports and IPFIX."""

# The web names resolve on first use (PEP 562): `capture read` and the short commands must not
# pay for FastAPI, pydantic and uvicorn, which only the service's listener needs.
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from capture import MirrorscopeError
from exporters._cardinality import CardinalityConfig, EndpointDirectory
from exporters._collector import FlowMetricsCollector, MetricsConfig
from exporters._ended import EndedFlows
from exporters._errors import ExporterError, ListenError, PcapStoreError
from exporters._health import CaptureHealth
from exporters._ipfix import (
    DEFAULT_ACTIVE_TIMEOUT_S,
    DEFAULT_MTU,
    IpfixExporter,
    IpfixMetricsCollector,
    IpfixOptions,
    merge_counters,
)
from exporters._ipfix_transport import IpfixTarget, IpfixTargetError, SenderCounters
from exporters._jsonl import (
    DEFAULT_MAX_BYTES,
    JsonLinesWriter,
    RecordsError,
    RotatingJsonLinesWriter,
)
from exporters._listen import DEFAULT_LISTEN, parse_listen
from exporters._pcapalerts import AlertCaptures, KeptCapture
from exporters._pcapindex import FileIndex
from exporters._pcapmacs import MacTable
from exporters._pcapmetrics import DownloadCounts, PcapMetricsCollector
from exporters._pcapngout import write_pcapng
from exporters._pcapquery import PcapArchive, PcapQuery, StoredFileInfo, StoredFrame
from exporters._pcapselect import Selection, select
from exporters._pcapstore import OpenFile, PcapStore, StoreConfig, StoreCounters
from exporters._tablesource import FlowSnapshot, FlowSnapshotSource, FlowTableSource

if TYPE_CHECKING:
    from exporters._http import HttpServer
    from exporters._webalerts import alerts_router
    from exporters._webapp import OPENAPI_PATH, build_app
    from exporters._weblimit import ConcurrencyLimit, Slot
    from exporters._webpcap import PcapSources, pcap_router
    from exporters._webstatus import status_router

_LAZY: dict[str, str] = {
    "OPENAPI_PATH": "exporters._webapp",
    "ConcurrencyLimit": "exporters._weblimit",
    "HttpServer": "exporters._http",
    "PcapSources": "exporters._webpcap",
    "Slot": "exporters._weblimit",
    "alerts_router": "exporters._webalerts",
    "build_app": "exporters._webapp",
    "pcap_router": "exporters._webpcap",
    "status_router": "exporters._webstatus",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'exporters' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_ACTIVE_TIMEOUT_S",
    "DEFAULT_LISTEN",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MTU",
    "OPENAPI_PATH",
    "AlertCaptures",
    "CaptureHealth",
    "CardinalityConfig",
    "ConcurrencyLimit",
    "DownloadCounts",
    "EndedFlows",
    "EndpointDirectory",
    "ExporterError",
    "FileIndex",
    "FlowMetricsCollector",
    "FlowSnapshot",
    "FlowSnapshotSource",
    "FlowTableSource",
    "HttpServer",
    "IpfixExporter",
    "IpfixMetricsCollector",
    "IpfixOptions",
    "IpfixTarget",
    "IpfixTargetError",
    "JsonLinesWriter",
    "KeptCapture",
    "ListenError",
    "MacTable",
    "MetricsConfig",
    "MirrorscopeError",
    "OpenFile",
    "PcapArchive",
    "PcapMetricsCollector",
    "PcapQuery",
    "PcapSources",
    "PcapStore",
    "PcapStoreError",
    "RecordsError",
    "RotatingJsonLinesWriter",
    "Selection",
    "SenderCounters",
    "Slot",
    "StoreConfig",
    "StoreCounters",
    "StoredFileInfo",
    "StoredFrame",
    "alerts_router",
    "build_app",
    "merge_counters",
    "parse_listen",
    "pcap_router",
    "select",
    "status_router",
    "write_pcapng",
]
