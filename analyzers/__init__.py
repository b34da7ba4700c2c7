"""Analyzers: decoding, the flow table, TCP/DNS health and pod identity. No sockets here."""

from analyzers._decoded import DecodedBatch, Status, TunnelType
from analyzers._identity import EXTERNAL, Endpoint, EndpointKind, IdentityMap

__all__ = [
    "EXTERNAL",
    "DecodedBatch",
    "Endpoint",
    "EndpointKind",
    "IdentityMap",
    "Status",
    "TunnelType",
]
