"""Remote mirroring: a GRE or ERSPAN tunnel port as a mirror's output, as OVS and OVN do it.

A mirror whose output is a tunnel port sends its copies, encapsulated, to a collector host
(``remote_ip``) instead of onto a local NIC. The tunnel is an ``Interface`` row of ``type`` gre or
erspan whose ``options`` carry the remote and the session. What the port should look like is a
pure function of a :class:`TunnelSpec`, so planning stays testable without OVS.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import StrEnum

from mirrorctl.ovs._errors import UsageError
from mirrorctl.ovs._ovsdb import InterfaceRow

#: Interface types that are tunnels: their port has no kernel link to wait for or bring up.
TUNNEL_TYPES = frozenset({"gre", "ip6gre", "erspan", "ip6erspan", "geneve", "vxlan", "stt"})
TUNNEL_KEY = "mirrorscope-tunnel"
ERSPAN_SESSION_MAX = 0x3FF  # 10-bit session id in both ERSPAN headers
ERSPAN_INDEX_MAX = 0xFFFFF  # type II: 20-bit port index
ERSPAN_HWID_MAX = 0x3F  # type III: 6-bit hardware id
GRE_KEY_MAX = 0xFFFFFFFF


class TunnelKind(StrEnum):
    GRE = "gre"
    ERSPAN = "erspan"


@dataclass(frozen=True, slots=True)
class TunnelSpec:
    """Where a remote mirror sends its copies.

    ``key`` is the GRE key, or for ERSPAN the session id; ``erspan_ver`` 1 is ERSPAN type II
    (with ``erspan_idx``, the port index), 2 is type III (with ``erspan_dir``, 0 ingress or
    1 egress, and ``erspan_hwid``).
    """

    kind: TunnelKind
    remote_ip: str
    key: int | None = None
    erspan_ver: int = 1
    erspan_idx: int = 1
    erspan_dir: int = 0
    erspan_hwid: int = 0

    @property
    def default_port(self) -> str:
        """The port name when the user names none: ``gre-mirror`` or ``erspan-mirror``."""
        return f"{self.kind}-mirror"

    def options(self) -> dict[str, str]:
        """The Interface ``options`` OVS reads for this tunnel."""
        opts = {"remote_ip": self.remote_ip}
        if self.key is not None:
            opts["key"] = str(self.key)
        if self.kind is TunnelKind.ERSPAN:
            opts["erspan_ver"] = str(self.erspan_ver)
            if self.erspan_ver == 1:
                opts["erspan_idx"] = str(self.erspan_idx)
            else:
                opts["erspan_dir"] = str(self.erspan_dir)
                opts["erspan_hwid"] = str(self.erspan_hwid)
        return opts

    def describe(self) -> str:
        """``gre remote_ip=... key=...``: what the Mirror row records and the CLI prints."""
        return " ".join([str(self.kind), *(f"{k}={v}" for k, v in self.options().items())])

    def matches(self, iface: InterfaceRow) -> bool:
        """Whether an existing Interface row already is this tunnel (type and options)."""
        return iface.type == self.kind and dict(iface.options) == self.options()


def _bounded(name: str, value: int | None, maximum: int) -> None:
    if value is not None and not 0 <= value <= maximum:
        raise UsageError(f"{name} must be between 0 and {maximum}, not {value}")


def tunnel_from_args(
    kind: str,
    remote_ip: str | None,
    *,
    key: int | None = None,
    erspan_ver: int | None = None,
    erspan_idx: int | None = None,
    erspan_dir: int | None = None,
    erspan_hwid: int | None = None,
) -> TunnelSpec:
    """Build a tunnel from CLI values, rejecting what OVS would refuse or silently ignore."""
    try:
        tunnel_kind = TunnelKind(kind)
    except ValueError as exc:
        raise UsageError(f"--output-tunnel must be gre or erspan, not {kind!r}") from exc
    if not remote_ip:
        raise UsageError("--output-tunnel needs --remote-ip, the collector's address")
    try:
        address = ipaddress.ip_address(remote_ip)
    except ValueError as exc:
        raise UsageError(f"--remote-ip {remote_ip!r} is not an IP address") from exc
    if address.version != 4:
        # OVS names the IPv6 variants ip6gre/ip6erspan; the lab and our tests only cover v4.
        raise UsageError("--remote-ip must be IPv4 (ip6gre/ip6erspan are not supported yet)")
    erspan = (erspan_ver, erspan_idx, erspan_dir, erspan_hwid)
    if tunnel_kind is TunnelKind.GRE:
        if any(v is not None for v in erspan):
            raise UsageError("--erspan-* options need --output-tunnel erspan")
        _bounded("--key", key, GRE_KEY_MAX)
        return TunnelSpec(tunnel_kind, str(address), key)
    ver = 1 if erspan_ver is None else erspan_ver
    if ver not in (1, 2):
        raise UsageError(f"--erspan-ver must be 1 (type II) or 2 (type III), not {ver}")
    if ver == 1 and (erspan_dir is not None or erspan_hwid is not None):
        raise UsageError("--erspan-dir and --erspan-hwid are ERSPAN type III: add --erspan-ver 2")
    if ver == 2 and erspan_idx is not None:
        raise UsageError("--erspan-idx is ERSPAN type II: drop it or use --erspan-ver 1")
    _bounded("--key (the ERSPAN session id)", key, ERSPAN_SESSION_MAX)
    _bounded("--erspan-idx", erspan_idx, ERSPAN_INDEX_MAX)
    _bounded("--erspan-dir", erspan_dir, 1)
    _bounded("--erspan-hwid", erspan_hwid, ERSPAN_HWID_MAX)
    return TunnelSpec(
        tunnel_kind,
        str(address),
        key,
        erspan_ver=ver,
        erspan_idx=1 if erspan_idx is None else erspan_idx,
        erspan_dir=erspan_dir or 0,
        erspan_hwid=erspan_hwid or 0,
    )
