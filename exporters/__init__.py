"""Exporters: Prometheus metrics, pcap store, flow reports and IPFIX."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from capture import MirrorscopeError
from exporters._cardinality import CardinalityConfig, EndpointDirectory
from exporters._collector import FlowMetricsCollector, MetricsConfig
from exporters._ended import EndedFlows
from exporters._errors import ExporterError, ListenError
from exporters._health import CaptureHealth
from exporters._http import DEFAULT_LISTEN, MetricsServer, parse_listen
from exporters._jsonl import (
    DEFAULT_MAX_BYTES,
    JsonLinesWriter,
    RecordsError,
    RotatingJsonLinesWriter,
)
from exporters._recordstore import (
    RecordsRetention,
    files_for_window,
    parse_size,
    prune,
    range_path,
)
from exporters._tablesource import FlowSnapshot, FlowSnapshotSource, FlowTableSource

if TYPE_CHECKING:
    from exporters._recordschema import record_schema
    from exporters._reportagg import BY, POD_COLUMNS, Report, build_report
    from exporters._reportdissect import app_protocols
    from exporters._reportload import load_records, records_frame
    from exporters._reportrender import FORMATS, render
    from exporters._reportwindow import Window, parse_duration, parse_time

# Report names resolve on first use (PEP 562): pandas and pyarrow load only for a report.
_LAZY: dict[str, str] = {
    "BY": "exporters._reportagg",
    "FORMATS": "exporters._reportrender",
    "POD_COLUMNS": "exporters._reportagg",
    "Report": "exporters._reportagg",
    "Window": "exporters._reportwindow",
    "app_protocols": "exporters._reportdissect",
    "build_report": "exporters._reportagg",
    "load_records": "exporters._reportload",
    "parse_duration": "exporters._reportwindow",
    "parse_time": "exporters._reportwindow",
    "record_schema": "exporters._recordschema",
    "records_frame": "exporters._reportload",
    "render": "exporters._reportrender",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'exporters' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "BY",
    "DEFAULT_LISTEN",
    "DEFAULT_MAX_BYTES",
    "FORMATS",
    "POD_COLUMNS",
    "CaptureHealth",
    "CardinalityConfig",
    "EndedFlows",
    "EndpointDirectory",
    "ExporterError",
    "FlowMetricsCollector",
    "FlowSnapshot",
    "FlowSnapshotSource",
    "FlowTableSource",
    "JsonLinesWriter",
    "ListenError",
    "MetricsConfig",
    "MetricsServer",
    "MirrorscopeError",
    "RecordsError",
    "RecordsRetention",
    "Report",
    "RotatingJsonLinesWriter",
    "Window",
    "app_protocols",
    "build_report",
    "files_for_window",
    "load_records",
    "parse_duration",
    "parse_listen",
    "parse_size",
    "parse_time",
    "prune",
    "range_path",
    "record_schema",
    "records_frame",
    "render",
]
