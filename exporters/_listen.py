"""The service listener's address: the ``--listen ADDR:PORT`` forms and the default port.

Kept apart from the server so the CLI can parse and print the default without loading the web
framework.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from exporters._errors import ListenError

#: Default listen address. The Prometheus exporter range 9100-9999 is fully allocated, so we sit
#: beside Retina's agent (10093) on a port that IANA, Kubernetes (10250-10259), Kube-OVN
#: (10660-10665) and Hubble (9965) do not use.
DEFAULT_LISTEN = "0.0.0.0:10097"


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A PEM certificate (chain) and its private key: the listener speaks only HTTPS with them."""

    cert: Path
    key: Path


def parse_listen(listen: str) -> tuple[str, int]:
    """``ADDR:PORT``, ``[V6ADDR]:PORT`` or ``:PORT`` (all IPv4 addresses) to (host, port)."""
    host, sep, port_s = listen.rpartition(":")
    if not sep or not port_s.isdigit() or int(port_s) > 65535:
        raise ListenError(listen, "expected ADDR:PORT with a port from 0 to 65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host or "0.0.0.0"  # noqa: S104 - ":PORT" means every address, as in Go's net.Listen
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ListenError(listen, f"{host!r} is not an IP address") from None
    return host, int(port_s)
