"""Analyzers: decoding, the flow table, TCP/DNS health and pod identity. No sockets here."""

from analyzers._decoded import DecodedBatch, Status, TunnelType

__all__ = ["DecodedBatch", "Status", "TunnelType"]
