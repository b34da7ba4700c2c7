"""Pods as Kube-OVN describes them in OVSDB: Interface ``external_ids`` → pod, port, addresses.

Kube-OVN writes ``iface-id=<pod>.<ns>``, ``pod_name``, ``pod_namespace`` and ``ip`` (comma-joined,
dual stack) on each pod's Interface, and ``iface-id=node-<node>`` on the node port ``ovn0``.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from analyzers import Endpoint, EndpointKind, IdentityMap
from mirrorctl.ovs._errors import UsageError
from mirrorctl.ovs._ovsdb import OVSDBSession, Snapshot, follow

log = logging.getLogger(__name__)

NODE_PREFIX = "node-"


@dataclass(frozen=True, slots=True, order=True)
class PodRef:
    """A pod by ``namespace/name``, the way users and status output name it."""

    namespace: str
    name: str

    @classmethod
    def parse(cls, text: str) -> PodRef:
        namespace, sep, name = text.partition("/")
        if not sep or not namespace or not name or "/" in name:
            raise UsageError(f"invalid pod {text!r}: write it as NAMESPACE/NAME")
        return cls(namespace, name)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class PodPort:
    """One OVS port that belongs to a pod (a pod with secondary networks has several)."""

    pod: PodRef
    port_uuid: UUID
    port_name: str
    iface_name: str
    ips: tuple[str, ...]


def pod_of(external_ids: Mapping[str, str]) -> PodRef | None:
    """The pod an Interface belongs to, from ``pod_name``/``pod_namespace`` or ``iface-id``."""
    name, namespace = external_ids.get("pod_name"), external_ids.get("pod_namespace")
    if name and namespace:
        return PodRef(namespace, name)
    iface_id = external_ids.get("iface-id", "")
    if iface_id.startswith(NODE_PREFIX) or "." not in iface_id:
        return None
    # Namespaces are DNS labels (no dots) while pod names may contain dots: split at the last one.
    name, _, namespace = iface_id.rpartition(".")
    return PodRef(namespace, name) if name and namespace else None


def _ips(external_ids: Mapping[str, str]) -> tuple[str, ...]:
    out = []
    for raw in external_ids.get("ip", "").split(","):
        text = raw.strip().split("/")[0]
        if not text:
            continue
        try:
            out.append(str(ipaddress.ip_address(text)))
        except ValueError:
            log.debug("ignoring malformed ip %r in Interface external_ids", raw)
    return tuple(out)


def pod_ports(snapshot: Snapshot, bridge: str | None = None) -> list[PodPort]:
    """Every pod port (on ``bridge`` if given), sorted by pod then port name."""
    allowed = None
    if bridge is not None:
        if bridge not in snapshot.bridges:
            return []
        allowed = snapshot.bridges[bridge].ports
    found = []
    for port in snapshot.ports.values():
        if allowed is not None and port.uuid not in allowed:
            continue
        for iface in snapshot.interfaces_of(port):
            pod = pod_of(iface.external_ids)
            if pod is not None:
                found.append(
                    PodPort(pod, port.uuid, port.name, iface.name, _ips(iface.external_ids))
                )
                break
    return sorted(found, key=lambda p: (p.pod, p.port_name))


def node_name(snapshot: Snapshot) -> str | None:
    """This OVSDB's node, from the ``node-<name>`` iface-id of Kube-OVN's ``ovn0``."""
    for iface in snapshot.interfaces.values():
        iface_id = iface.external_ids.get("iface-id", "")
        if iface_id.startswith(NODE_PREFIX) and len(iface_id) > len(NODE_PREFIX):
            return iface_id[len(NODE_PREFIX) :]
    return None


def identity_entries(snapshot: Snapshot, node: str | None = None) -> list[tuple[str, Endpoint]]:
    """(ip, Endpoint) for every pod address and the node's join address in this OVSDB."""
    node = node or node_name(snapshot) or ""
    entries: list[tuple[str, Endpoint]] = []
    for iface in snapshot.interfaces.values():
        ext = iface.external_ids
        iface_id = ext.get("iface-id", "")
        if iface_id.startswith(NODE_PREFIX):
            node_ep = Endpoint(EndpointKind.NODE, node=iface_id[len(NODE_PREFIX) :])
            entries.extend((ip, node_ep) for ip in _ips(ext))
            continue
        pod = pod_of(ext)
        if pod is not None:
            ep = Endpoint(EndpointKind.POD, namespace=pod.namespace, pod=pod.name, node=node)
            entries.extend((ip, ep) for ip in _ips(ext))
    return sorted(entries, key=lambda e: e[0])


class PodDirectory:
    """Keeps an ``IdentityMap`` source in step with the pods in OVSDB.

    Use it as a ``follow`` callback (or run it with :meth:`run`); it replaces its source only when
    the set of addresses actually changed, so readers see few generations.
    """

    def __init__(self, identity: IdentityMap, *, source: str = "ovsdb", node: str | None = None):
        self.identity = identity
        self.source = source
        self.node = node
        self._last: list[tuple[str, Endpoint]] | None = None

    def update(self, snapshot: Snapshot) -> bool:
        entries = identity_entries(snapshot, self.node)
        if entries == self._last:
            return False
        self.identity.replace(self.source, entries)
        self._last = entries
        log.info("pod directory: %d addresses from OVSDB", len(entries))
        return True

    def __call__(self, _session: OVSDBSession, snapshot: Snapshot) -> None:
        self.update(snapshot)

    def run(self, endpoint: str, stop: threading.Event, **follow_options: Any) -> None:
        """Follow ``endpoint`` until ``stop`` is set (for a thread of the capture service)."""
        follow(endpoint, self, stop, **follow_options)


def known_namespaces(ports: Iterable[PodPort]) -> list[str]:
    return sorted({p.pod.namespace for p in ports})
