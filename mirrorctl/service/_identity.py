"""Pod identity given by hand: ``{address: "ns/pod" | "node/NAME"}`` into an ``IdentityMap``."""

from __future__ import annotations

from collections.abc import Mapping

from analyzers import Endpoint, EndpointKind, IdentityMap


def endpoint_named(name: str) -> Endpoint:
    """``"ns/pod"`` is a pod, ``"node/NAME"`` a node; anything else is a ``ValueError``."""
    first, sep, rest = name.partition("/")
    if not sep or not first or not rest:
        raise ValueError(f"{name!r} is not ns/pod or node/NAME")
    if first == "node":
        return Endpoint(EndpointKind.NODE, node=rest)
    return Endpoint(EndpointKind.POD, namespace=first, pod=rest)


def identity_map(identity: Mapping[str, str] | IdentityMap | None) -> IdentityMap:
    """An ``IdentityMap`` as given, or one naming the addresses of a mapping (empty for None)."""
    if isinstance(identity, IdentityMap):
        return identity
    found = IdentityMap()
    if identity:
        found.replace("given", [(addr, endpoint_named(name)) for addr, name in identity.items()])
    return found
