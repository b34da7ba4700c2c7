"""Pod identity: which pod (or node, or nobody we know) an IP address belongs to.

A plain in-memory map, fed by the control plane (mirrorctl's OVSDB watcher reads Kube-OVN's
Interface ``external_ids``) and read by the flow table. Analyzers never talk to OVSDB themselves.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from itertools import repeat


class EndpointKind(StrEnum):
    POD = "pod"
    NODE = "node"
    EXTERNAL = "external"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Who is behind an address. For ``external`` the name fields are empty strings."""

    kind: EndpointKind
    namespace: str = ""
    pod: str = ""
    node: str = ""

    @property
    def label(self) -> str:
        """``namespace/pod`` for pods, ``node/<name>`` for nodes, ``external`` otherwise."""
        if self.kind is EndpointKind.POD:
            return f"{self.namespace}/{self.pod}"
        if self.kind is EndpointKind.NODE:
            return f"node/{self.node}"
        return "external"


EXTERNAL = Endpoint(EndpointKind.EXTERNAL)


def _key(addr: str | bytes | int) -> int:
    """Normalise an address to the 128-bit int the decoder uses (IPv4 stored IPv4-mapped)."""
    if isinstance(addr, int):
        return addr
    ip = ipaddress.ip_address(addr)
    if ip.version == 4:
        return 0xFFFF_0000_0000 | int(ip)
    return int(ip)


class IdentityMap:
    """Thread-safe address → ``Endpoint`` map with per-source replacement.

    Each feeder (one OVSDB connection, a static file) owns its entries under a ``source`` name, and
    ``replace(source, …)`` swaps them atomically, so a resync never shows a half-empty map.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_source: dict[str, dict[int, Endpoint]] = {}
        self._merged: dict[int, Endpoint] = {}
        self.generation = 0

    def replace(self, source: str, entries: Iterable[tuple[str | bytes | int, Endpoint]]) -> None:
        table = {_key(a): ep for a, ep in entries}
        with self._lock:
            self._by_source[source] = table
            merged: dict[int, Endpoint] = {}
            for t in self._by_source.values():
                merged.update(t)
            self._merged = merged
            self.generation += 1

    def lookup(self, addr: str | bytes | int) -> Endpoint:
        return self._merged.get(_key(addr), EXTERNAL)

    def lookup_key(self, key: int) -> Endpoint:
        """Lookup by the decoder's 128-bit key (``hi << 64 | lo``) — the hot-path form."""
        return self._merged.get(key, EXTERNAL)

    def lookup_keys(self, keys: Iterable[int]) -> list[Endpoint]:
        """``lookup_key`` of each of *keys* (a delivery of records looks up thousands at once)."""
        return list(map(self._merged.get, keys, repeat(EXTERNAL)))

    def entries(self) -> list[tuple[int, Endpoint]]:
        """Every (address key, endpoint) pair: the reverse lookup, a pod's addresses, reads it."""
        return list(self._merged.items())

    def endpoints(self) -> set[Endpoint]:
        """Every endpoint currently known (metrics use it to expire series of deleted pods)."""
        return set(self._merged.values())
