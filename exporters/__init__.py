"""Exporters: Prometheus metrics, pcap store, flow reports and IPFIX."""

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
from exporters._recordschema import record_schema
from exporters._recordstore import RecordsRetention, files_for_window, prune, range_path
from exporters._tablesource import FlowSnapshot, FlowSnapshotSource, FlowTableSource

__all__ = [
    "DEFAULT_LISTEN",
    "DEFAULT_MAX_BYTES",
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
    "RotatingJsonLinesWriter",
    "files_for_window",
    "parse_listen",
    "prune",
    "range_path",
    "record_schema",
]
