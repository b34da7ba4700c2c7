"""Exporters: Prometheus metrics, pcap store, flow reports and IPFIX."""

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
from exporters._http import DEFAULT_LISTEN, MetricsServer, parse_listen
from exporters._jsonl import (
    DEFAULT_MAX_BYTES,
    JsonLinesWriter,
    RecordsError,
    RotatingJsonLinesWriter,
)
from exporters._tablesource import FlowTableLike, FlowTableSource

__all__ = [
    "DEFAULT_LISTEN",
    "DEFAULT_MAX_BYTES",
    "CaptureHealth",
    "CardinalityConfig",
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
    "JsonLinesWriter",
    "ListenError",
    "MetricsConfig",
    "MetricsServer",
    "MirrorscopeError",
    "RecordsError",
    "RotatingJsonLinesWriter",
    "parse_listen",
]
