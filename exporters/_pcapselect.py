"""Whose packets a download asks for: a pod, a namespace or an address, as store query keys.

A pod's packets are those of its IPv4 and IPv6 addresses (from the service's identity map, fed by
OVSDB) plus its ARP and neighbour discovery, found by the MAC it sends from (``MacTable``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from analyzers import Endpoint, EndpointKind
from exporters._pcapindex import address_key, address_text, mac_text

__all__ = ["Selection", "select"]


@dataclass(frozen=True, slots=True)
class Selection:
    """Addresses and MACs (text) of what was asked for, and the pods they belong to."""

    label: str
    addresses: tuple[str, ...]
    macs: tuple[str, ...]
    pods: tuple[str, ...]


def select(
    entries: Iterable[tuple[int, Endpoint]],
    macs: Mapping[int, int],
    *,
    pod: str | None = None,
    namespace: str | None = None,
    ip: str | None = None,
) -> Selection:
    """The keys of one of ``pod`` (``NS/NAME``), ``namespace`` or ``ip``; ``ValueError`` names
    the parameter when it is malformed. An unknown pod selects nothing (the caller says 404)."""
    if ip is not None:
        try:
            key = address_key(ip)
        except ValueError:
            raise ValueError(f"ip: {ip!r} is not an IPv4 or IPv6 address") from None
        owners = sorted({ep.label for k, ep in entries if k == key and ep.kind is EndpointKind.POD})
        mac = macs.get(key)
        return Selection(
            label=str(ipaddress.ip_address(ip)),
            addresses=(address_text(key),),
            macs=(mac_text(mac),) if mac is not None else (),
            pods=tuple(owners),
        )
    match: Callable[[Endpoint], bool]
    if pod is not None:
        ns, sep, name = pod.partition("/")
        if not sep or not ns or not name or "/" in name:
            raise ValueError(f"pod: {pod!r} is not NAMESPACE/NAME")
        label = pod

        def match(ep: Endpoint) -> bool:
            return ep.namespace == ns and ep.pod == name

    elif namespace is not None:
        if not namespace or "/" in namespace:
            raise ValueError(f"namespace: {namespace!r} is not a namespace name")
        label = namespace

        def match(ep: Endpoint) -> bool:
            return ep.namespace == namespace

    else:
        raise ValueError("pod: one of pod, namespace or ip is required")
    keys = sorted(k for k, ep in entries if ep.kind is EndpointKind.POD and match(ep))
    pods = sorted({ep.label for k, ep in entries if ep.kind is EndpointKind.POD and match(ep)})
    return Selection(
        label=label,
        addresses=tuple(address_text(k) for k in keys),
        macs=tuple(sorted({mac_text(macs[k]) for k in keys if k in macs})),
        pods=tuple(pods),
    )
