"""Exporters: Prometheus metrics, pcap store, flow reports and IPFIX."""

from exporters._cardinality import CardinalityConfig, EndpointDirectory
from exporters._collector import FlowMetricsCollector, MetricsConfig
from exporters._ended import EndedFlows, FlowRecordLike
from exporters._errors import ExporterError, ListenError, PcapStoreError
from exporters._flowstats import (
    FlowColumns,
    FlowEndSink,
    FlowSnapshot,
    FlowStats,
    FlowStatsSource,
)
from exporters._health import CaptureHealth
from exporters._http import DEFAULT_LISTEN, MetricsServer, parse_listen
from exporters._jsonl import JsonLinesWriter, RecordsError, RotatingJsonLinesWriter
from exporters._pcapindex import FileIndex
from exporters._pcapngout import write_pcapng
from exporters._pcapquery import PcapArchive, PcapQuery, StoredFileInfo, StoredFrame
from exporters._pcapstore import OpenFile, PcapStore, StoreConfig, StoreCounters
from exporters._tablesource import FlowTableLike, FlowTableSource

__all__ = [
    "DEFAULT_LISTEN",
    "CaptureHealth",
    "CardinalityConfig",
    "EndedFlows",
    "EndpointDirectory",
    "ExporterError",
    "FileIndex",
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
    "OpenFile",
    "PcapArchive",
    "PcapQuery",
    "PcapStore",
    "PcapStoreError",
    "RecordsError",
    "RotatingJsonLinesWriter",
    "StoreConfig",
    "StoreCounters",
    "StoredFileInfo",
    "StoredFrame",
    "parse_listen",
    "write_pcapng",
]
