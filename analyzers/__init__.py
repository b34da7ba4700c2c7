"""Analyzers: decoding, the flow table, TCP/DNS health and pod identity. No sockets here."""

from analyzers._activeflows import ActiveFlows
from analyzers._decode import decode
from analyzers._decoded import DecodedBatch, Encap, Status, TunnelType
from analyzers._dedup import Deduplicator
from analyzers._detectors import NoticeDetectors
from analyzers._dns import DnsMessage, parse_dns
from analyzers._flowevents import EventKind, FlowEvents, FlowEventSink
from analyzers._flowoptions import FlowTableOptions
from analyzers._flowtable import FlowTable, FlowTableCounters
from analyzers._identity import EXTERNAL, Endpoint, EndpointKind, IdentityMap
from analyzers._notice import NOTES, Notice, NoticeOptions, NoticeSink
from analyzers._pipeline import AnalysisPipeline, FrameSink, PipelineCounters, PipelineOptions
from analyzers._recordjson import json_lines
from analyzers._records import DnsStats, FlowRecord, FlowSink, TcpStats
from analyzers._warmup import warm_up
from capture import MirrorscopeError

__all__ = [
    "EXTERNAL",
    "NOTES",
    "ActiveFlows",
    "AnalysisPipeline",
    "DecodedBatch",
    "Deduplicator",
    "DnsMessage",
    "DnsStats",
    "Encap",
    "Endpoint",
    "EndpointKind",
    "EventKind",
    "FlowEventSink",
    "FlowEvents",
    "FlowRecord",
    "FlowSink",
    "FlowTable",
    "FlowTableCounters",
    "FlowTableOptions",
    "FrameSink",
    "IdentityMap",
    "MirrorscopeError",
    "Notice",
    "NoticeDetectors",
    "NoticeOptions",
    "NoticeSink",
    "PipelineCounters",
    "PipelineOptions",
    "Status",
    "TcpStats",
    "TunnelType",
    "decode",
    "json_lines",
    "parse_dns",
    "warm_up",
]
