"""Notices: one suspicious behaviour of one source, with its evidence, in Zeek's notice vocabulary.

``NoticeOptions`` holds every detector's threshold and window; the scan defaults are Zeek's
``policy/misc/scan.zeek`` (more than 15 distinct ports of one victim, more than 25 hosts on one
port, both over 5 minutes) and the suppression interval is the notice framework's
``default_suppression_interval`` (1 hour).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from analyzers._identity import Endpoint

PORT_SCAN = "port_scan"
ADDRESS_SCAN = "address_scan"
SYN_FLOOD = "syn_flood"
NEW_EXTERNAL_PEER = "new_external_peer"
NOTES = (PORT_SCAN, ADDRESS_SCAN, SYN_FLOOD, NEW_EXTERNAL_PEER)
SAMPLE_SIZE = 10  # targets a notice shows as evidence


@dataclass(frozen=True, slots=True)
class NoticeOptions:
    """Thresholds and windows of the detectors (the CLI's ``--notice-*`` flags)."""

    #: port_scan: more than this many distinct ports of one destination failed, in the window.
    port_scan_threshold: int = 15
    port_scan_window_s: float = 300.0
    #: address_scan: more than this many distinct destinations on one port failed, in the window.
    address_scan_threshold: int = 25
    address_scan_window_s: float = 300.0
    #: syn_flood: more than this many half-open attempts to one destination in the window.
    syn_flood_threshold: int = 1000
    syn_flood_window_s: float = 10.0
    #: new_external_peer: off unless asked; pairs seen in the first ``learn_s`` are the baseline.
    new_peers: bool = False
    new_peers_learn_s: float = 3600.0
    #: At most one notice per (note, source, target) this often (Zeek's suppress_for).
    suppress_s: float = 3600.0
    #: Entries each detector keeps (sources, pairs, destinations); beyond it the least recently
    #: seen is dropped and counted. Bounds memory whatever the traffic.
    max_entries: int = 100_000

    def __post_init__(self) -> None:
        for name in ("port_scan_threshold", "address_scan_threshold", "syn_flood_threshold"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        windows = ("port_scan_window_s", "address_scan_window_s", "syn_flood_window_s")
        for name in windows:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


def address_text(hi: int, lo: int) -> str:
    """The decoder's 128-bit address key as text (IPv4 for IPv4-mapped keys)."""
    v = (hi << 64) | lo
    if v >> 32 == 0xFFFF:
        return str(ipaddress.IPv4Address(v & 0xFFFF_FFFF))
    return str(ipaddress.IPv6Address(v))


@dataclass(frozen=True, slots=True)
class Notice:
    """One notice: ``count`` crossed the note's threshold at ``ts`` (packet time, seconds)."""

    ts: float
    note: str
    src: str  # address
    src_endpoint: Endpoint
    target: str  # an address, or ``port N/proto`` for an address scan
    count: int
    msg: str
    sample: tuple[str, ...] = ()  # some of the targets (ports, addresses, sources)
    node: str = ""

    @property
    def duration(self) -> float:
        """A notice is an instant (the records writer names files by ``ts + duration``)."""
        return 0.0

    def as_dict(self) -> dict[str, Any]:
        ep = self.src_endpoint
        return {
            "ts": self.ts,
            "note": self.note,
            "src": self.src,
            "src_kind": str(ep.kind),
            "src_namespace": ep.namespace,
            "src_pod": ep.pod,
            "target": self.target,
            "count": self.count,
            "msg": self.msg,
            "sample": list(self.sample),
            "node": self.node,
        }

    def to_json_line(self) -> str:
        return json.dumps(self.as_dict(), separators=(",", ":"))


class NoticeSink(Protocol):
    """Receives notices as detectors raise them."""

    def on_notices(self, notices: Sequence[Notice]) -> None: ...
