"""Exporters: Prometheus metrics, pcap store, flow reports and IPFIX."""

# The web names resolve on first use (PEP 562): `capture read` and the short commands must not
# pay for FastAPI, pydantic and uvicorn, which only the service's listener needs.
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from capture import MirrorscopeError
from exporters._cardinality import CardinalityConfig, EndpointDirectory
from exporters._collector import FlowMetricsCollector, MetricsConfig
from exporters._ended import EndedFlows, FlowRecordLike
from exporters._errors import ExporterError, ListenError
from exporters._flowstats import (
    FlowColumns,
    FlowEndSink,
    FlowSnapshot,
    FlowStats,
    FlowStatsSource,
)
from exporters._health import CaptureHealth
from exporters._jsonl import (
    DEFAULT_MAX_BYTES,
    JsonLinesWriter,
    RecordsError,
    RotatingJsonLinesWriter,
)
from exporters._listen import DEFAULT_LISTEN, parse_listen
from exporters._tablesource import FlowTableLike, FlowTableSource

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
    "DEFAULT_LISTEN",
    "DEFAULT_MAX_BYTES",
    "OPENAPI_PATH",
    "CaptureHealth",
    "CardinalityConfig",
    "ConcurrencyLimit",
    "EndedFlows",
    "EndpointDirectory",
    "ExporterError",
    "FlowColumns",
    "FlowEndSink",
    "FlowMetricsCollector",
    "FlowRecordLike",
    "FlowSnapshot",
    "FlowStats",
    "FlowStatsSource",
    "FlowTableLike",
    "FlowTableSource",
    "HttpServer",
    "JsonLinesWriter",
    "ListenError",
    "MetricsConfig",
    "MirrorscopeError",
    "RecordsError",
    "RotatingJsonLinesWriter",
    "Slot",
    "build_app",
    "parse_listen",
    "status_router",
]
