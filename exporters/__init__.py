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
from exporters._pcapindex import FileIndex
from exporters._pcapngout import write_pcapng
from exporters._pcapquery import PcapArchive, PcapQuery, StoredFileInfo, StoredFrame
from exporters._pcapstore import OpenFile, PcapStore, StoreConfig, StoreCounters
from exporters._tablesource import FlowSnapshot, FlowSnapshotSource, FlowTableSource

if TYPE_CHECKING:
    from exporters._http import HttpServer
    from exporters._webapp import OPENAPI_PATH, build_app
    from exporters._weblimit import ConcurrencyLimit, Slot
    from exporters._webstatus import status_router

_LAZY: dict[str, str] = {
    "OPENAPI_PATH": "exporters._webapp",
    "ConcurrencyLimit": "exporters._weblimit",
    "HttpServer": "exporters._http",
    "Slot": "exporters._weblimit",
    "build_app": "exporters._webapp",
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
    "CaptureHealth",
    "CardinalityConfig",
    "ConcurrencyLimit",
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
    "ListenError",
    "MetricsConfig",
    "MirrorscopeError",
    "OpenFile",
    "PcapArchive",
    "PcapQuery",
    "PcapStore",
    "PcapStoreError",
    "RecordsError",
    "RotatingJsonLinesWriter",
    "SenderCounters",
    "Slot",
    "StoreConfig",
    "StoreCounters",
    "StoredFileInfo",
    "StoredFrame",
    "build_app",
    "merge_counters",
    "parse_listen",
    "status_router",
    "write_pcapng",
]
