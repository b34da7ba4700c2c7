"""Exporters: Prometheus metrics, pcap store, flow reports, IPFIX and the notice log."""

from capture import MirrorscopeError
from exporters._cardinality import CardinalityConfig, EndpointDirectory
from exporters._collector import FlowMetricsCollector, MetricsConfig
from exporters._ended import EndedFlows
from exporters._errors import ExporterError, ListenError, PcapStoreError
from exporters._health import CaptureHealth
from exporters._http import DEFAULT_LISTEN, MetricsServer, parse_listen
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
from exporters._notices import (
    NoticeCounts,
    NoticeKey,
    NoticeLog,
    NoticeMetricsCollector,
    merge_notice_counts,
)
from exporters._pcapindex import FileIndex
from exporters._pcapngout import write_pcapng
from exporters._pcapquery import PcapArchive, PcapQuery, StoredFileInfo, StoredFrame
from exporters._pcapstore import OpenFile, PcapStore, StoreConfig, StoreCounters
from exporters._tablesource import FlowSnapshot, FlowSnapshotSource, FlowTableSource

__all__ = [
    "DEFAULT_ACTIVE_TIMEOUT_S",
    "DEFAULT_LISTEN",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MTU",
    "CaptureHealth",
    "CardinalityConfig",
    "EndedFlows",
    "EndpointDirectory",
    "ExporterError",
    "FileIndex",
    "FlowMetricsCollector",
    "FlowSnapshot",
    "FlowSnapshotSource",
    "FlowTableSource",
    "IpfixExporter",
    "IpfixMetricsCollector",
    "IpfixOptions",
    "IpfixTarget",
    "IpfixTargetError",
    "JsonLinesWriter",
    "ListenError",
    "MetricsConfig",
    "MetricsServer",
    "MirrorscopeError",
    "NoticeCounts",
    "NoticeKey",
    "NoticeLog",
    "NoticeMetricsCollector",
    "OpenFile",
    "PcapArchive",
    "PcapQuery",
    "PcapStore",
    "PcapStoreError",
    "RecordsError",
    "RotatingJsonLinesWriter",
    "SenderCounters",
    "StoreConfig",
    "StoreCounters",
    "StoredFileInfo",
    "StoredFrame",
    "merge_counters",
    "merge_notice_counts",
    "parse_listen",
    "write_pcapng",
]
