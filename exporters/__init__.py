"""Exporters: Prometheus metrics, pcap store, flow reports, IPFIX and the notice log."""

# The web and report names resolve on first use (PEP 562): `capture read` and the short commands
# must not pay for FastAPI, pydantic, uvicorn, pandas and pyarrow.
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
from exporters._listen import DEFAULT_LISTEN, TlsFiles, parse_listen
from exporters._notices import (
    NoticeCounts,
    NoticeKey,
    NoticeLog,
    NoticeMetricsCollector,
    merge_notice_counts,
)
from exporters._pcapalerts import AlertCaptures, KeptCapture
from exporters._pcapindex import FileIndex
from exporters._pcapmacs import MacTable
from exporters._pcapmetrics import DownloadCounts, PcapMetricsCollector
from exporters._pcapngout import write_pcapng
from exporters._pcapquery import PcapArchive, PcapQuery, StoredFileInfo, StoredFrame
from exporters._pcapselect import Selection, select
from exporters._pcapstore import PcapStore
from exporters._pcapstoreconfig import OpenFile, StoreConfig, StoreCounters
from exporters._recordstore import (
    RecordsRetention,
    files_for_window,
    parse_size,
    prune,
    range_path,
)
from exporters._tablesource import FlowSnapshot, FlowSnapshotSource, FlowTableSource

if TYPE_CHECKING:
    from exporters._flowquery import FlowFilter, FlowQuery
    from exporters._flowsclient import ServerFlows, fetch_flows, union
    from exporters._http import HttpServer
    from exporters._noticeread import (
        fetch_notices,
        load_notices,
        parse_notice_lines,
        with_notices,
    )
    from exporters._recordschema import record_schema
    from exporters._recordsummary import Summary
    from exporters._recordsummaryfile import read_summary, write_summary
    from exporters._recordsummaryhist import LogHistogram
    from exporters._reportagg import POD_COLUMNS, Report, build_report, report_of
    from exporters._reportdissect import app_protocols
    from exporters._reportload import (
        load_records,
        load_summary,
        load_table,
        records_frame,
        records_summary,
        report_frame,
        store_summary,
    )
    from exporters._reportnames import BY, FORMATS
    from exporters._reportrender import render
    from exporters._reportwindow import Window, parse_duration, parse_time
    from exporters._webalerts import alerts_router
    from exporters._webapp import OPENAPI_PATH, build_app
    from exporters._webflows import flows_router
    from exporters._weblimit import ConcurrencyLimit, Slot
    from exporters._webnotices import notices_router
    from exporters._webpage import page_router
    from exporters._webpcap import PcapSources, pcap_router
    from exporters._webpods import pods_router
    from exporters._webstatus import status_router

_LAZY: dict[str, str] = {
    "BY": "exporters._reportnames",
    "ConcurrencyLimit": "exporters._weblimit",
    "FORMATS": "exporters._reportnames",
    "FlowFilter": "exporters._flowquery",
    "FlowQuery": "exporters._flowquery",
    "HttpServer": "exporters._http",
    "OPENAPI_PATH": "exporters._webapp",
    "POD_COLUMNS": "exporters._reportagg",
    "PcapSources": "exporters._webpcap",
    "Report": "exporters._reportagg",
    "ServerFlows": "exporters._flowsclient",
    "Slot": "exporters._weblimit",
    "Window": "exporters._reportwindow",
    "alerts_router": "exporters._webalerts",
    "app_protocols": "exporters._reportdissect",
    "build_app": "exporters._webapp",
    "build_report": "exporters._reportagg",
    "report_of": "exporters._reportagg",
    "Summary": "exporters._recordsummary",
    "LogHistogram": "exporters._recordsummaryhist",
    "read_summary": "exporters._recordsummaryfile",
    "write_summary": "exporters._recordsummaryfile",
    "load_summary": "exporters._reportload",
    "records_summary": "exporters._reportload",
    "store_summary": "exporters._reportload",
    "fetch_flows": "exporters._flowsclient",
    "flows_router": "exporters._webflows",
    "notices_router": "exporters._webnotices",
    "fetch_notices": "exporters._noticeread",
    "load_notices": "exporters._noticeread",
    "parse_notice_lines": "exporters._noticeread",
    "with_notices": "exporters._noticeread",
    "load_records": "exporters._reportload",
    "load_table": "exporters._reportload",
    "page_router": "exporters._webpage",
    "parse_duration": "exporters._reportwindow",
    "parse_time": "exporters._reportwindow",
    "pcap_router": "exporters._webpcap",
    "pods_router": "exporters._webpods",
    "record_schema": "exporters._recordschema",
    "records_frame": "exporters._reportload",
    "render": "exporters._reportrender",
    "report_frame": "exporters._reportload",
    "status_router": "exporters._webstatus",
    "union": "exporters._flowsclient",
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
    "DEFAULT_ACTIVE_TIMEOUT_S",
    "DEFAULT_LISTEN",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MTU",
    "FORMATS",
    "OPENAPI_PATH",
    "POD_COLUMNS",
    "AlertCaptures",
    "CaptureHealth",
    "CardinalityConfig",
    "ConcurrencyLimit",
    "DownloadCounts",
    "EndedFlows",
    "EndpointDirectory",
    "ExporterError",
    "FileIndex",
    "FlowFilter",
    "FlowMetricsCollector",
    "FlowQuery",
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
    "LogHistogram",
    "MacTable",
    "MetricsConfig",
    "MirrorscopeError",
    "NoticeCounts",
    "NoticeKey",
    "NoticeLog",
    "NoticeMetricsCollector",
    "OpenFile",
    "PcapArchive",
    "PcapMetricsCollector",
    "PcapQuery",
    "PcapSources",
    "PcapStore",
    "PcapStoreError",
    "RecordsError",
    "RecordsRetention",
    "Report",
    "RotatingJsonLinesWriter",
    "Selection",
    "SenderCounters",
    "ServerFlows",
    "Slot",
    "StoreConfig",
    "StoreCounters",
    "StoredFileInfo",
    "StoredFrame",
    "Summary",
    "TlsFiles",
    "Window",
    "alerts_router",
    "app_protocols",
    "build_app",
    "build_report",
    "fetch_flows",
    "fetch_notices",
    "files_for_window",
    "flows_router",
    "load_notices",
    "load_records",
    "load_summary",
    "load_table",
    "merge_counters",
    "merge_notice_counts",
    "notices_router",
    "page_router",
    "parse_duration",
    "parse_listen",
    "parse_notice_lines",
    "parse_size",
    "parse_time",
    "pcap_router",
    "pods_router",
    "prune",
    "range_path",
    "read_summary",
    "record_schema",
    "records_frame",
    "records_summary",
    "render",
    "report_frame",
    "report_of",
    "select",
    "status_router",
    "store_summary",
    "union",
    "with_notices",
    "write_pcapng",
    "write_summary",
]
