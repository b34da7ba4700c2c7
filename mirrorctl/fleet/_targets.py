"""Which agents to ask: ``--server`` URLs, or every address a headless Service's name resolves to.

A target is a base URL and what a request to it carries besides the query: headers (the
service's token; through the Kubernetes API server, the user's credentials too) and a TLS
context. The fan-out asks each target the same question and never needs to know how it was found.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mirrorctl.ovs import UsageError

__all__ = ["TOKEN_HEADER", "Target", "targets_from_dns", "targets_from_urls", "token_headers"]

#: The header the service also takes its token from: a Kubernetes API server's proxy strips
#: ``Authorization`` (it is the API server's own credential), so the token travels beside it.
TOKEN_HEADER = "X-Mirrorscope-Token"  # noqa: S105 - a header name, not a secret

Resolve = Callable[..., Sequence[tuple[Any, ...]]]  # socket.getaddrinfo's shape


@dataclass(frozen=True, slots=True)
class Target:
    """One agent: its base URL (no trailing slash), a short name for messages, and headers."""

    url: str
    name: str
    headers: Mapping[str, str] = field(default_factory=dict)
    context: ssl.SSLContext | None = None


def _checked(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--server {url!r}: expected http://HOST:PORT or https://HOST:PORT")
    return url.rstrip("/")


def token_headers(token: str | None) -> dict[str, str]:
    """The service's token in both headers it reads (``Authorization`` when asked directly)."""
    if token is None:
        return {}
    return {"Authorization": f"Bearer {token}", TOKEN_HEADER: token}


def targets_from_urls(urls: Iterable[str], token: str | None) -> list[Target]:
    """One target per distinct URL, in the order given."""
    seen: dict[str, Target] = {}
    for url in urls:
        u = _checked(url)
        seen.setdefault(u, Target(u, u.split("://", 1)[1], token_headers(token)))
    return list(seen.values())


def targets_from_dns(
    name: str,
    port: int,
    token: str | None,
    *,
    scheme: str = "http",
    resolve: Resolve = socket.getaddrinfo,
) -> list[Target]:
    """One target per address ``name`` resolves to (a headless Service: one per agent pod).

    A dual-stack Service answers an A and an AAAA record for each pod: the same agent twice. So
    only one family is used, IPv4 when there is any, which every dual-stack pod has.
    """
    try:
        infos = resolve(name, port, 0, socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise UsageError(f"--servers-from-dns {name}: cannot resolve it ({e.strerror})") from None
    v4 = sorted({str(i[4][0]) for i in infos if i[0] == socket.AF_INET})
    v6 = sorted({str(i[4][0]) for i in infos if i[0] == socket.AF_INET6})
    if not v4 and not v6:
        raise UsageError(f"--servers-from-dns {name}: it resolves to no address")
    hosts = v4 or [f"[{a}]" for a in v6]
    return [Target(f"{scheme}://{h}:{port}", f"{h}:{port}", token_headers(token)) for h in hosts]
