"""What is mirrored on a bridge: every Mirror row, named by pods, with OVS and kernel counters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from mirrorctl.ovs._links import LinkState, link_state
from mirrorctl.ovs._mirrors import require_bridge
from mirrorctl.ovs._ovsdb import MirrorRow, Snapshot
from mirrorctl.ovs._pods import pod_of, pod_ports
from mirrorctl.ovs._spec import MirrorSpec, Owner, owner_of
from mirrorctl.ovs._tunnels import TUNNEL_TYPES

STATUS_VERSION = 1


@dataclass(frozen=True, slots=True)
class SelectedPort:
    """A selected port, named by its pod (``None`` for a port that is no pod's)."""

    port: str
    pod: str | None

    @property
    def label(self) -> str:
        return self.pod or f"port {self.port}"


@dataclass(frozen=True, slots=True)
class MirrorStatus:
    name: str
    uuid: UUID
    owner: Owner
    select_all: bool
    select_src: tuple[SelectedPort, ...]
    select_dst: tuple[SelectedPort, ...]
    output_port: str | None
    tx_packets: int | None
    tx_bytes: int | None
    intent: MirrorSpec | None
    output_link: LinkState | None
    #: A tunnel output port's type and options (a remote mirror), else None.
    output_tunnel: tuple[str, Mapping[str, str]] | None = None


@dataclass(frozen=True, slots=True)
class PodCoverage:
    """One pod port on the bridge and the mirrors that copy its traffic, per direction.

    ``from_pod`` lists mirrors that copy what the pod sends (select_all or select_src_port),
    ``to_pod`` those that copy what it receives (select_all or select_dst_port). Kube-OVN's
    pod-level mirroring fills only ``to_pod``: this is where that gap shows.
    """

    pod: str
    port: str
    ips: tuple[str, ...]
    from_pod: tuple[str, ...]
    to_pod: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BridgeStatus:
    endpoint: str
    bridge: str
    netns: str | None
    mirrors: tuple[MirrorStatus, ...]
    pods: tuple[PodCoverage, ...] = ()


LinkReader = Callable[[str, str | None], LinkState | None]


def _selected(snapshot: Snapshot, ports: frozenset[UUID]) -> tuple[SelectedPort, ...]:
    out = []
    for u in ports:
        port = snapshot.ports.get(u)
        if port is None:
            continue
        pod = next((p for i in snapshot.interfaces_of(port) if (p := pod_of(i.external_ids))), None)
        out.append(SelectedPort(port.name, str(pod) if pod else None))
    return tuple(sorted(out, key=lambda s: (s.pod is None, s.pod or "", s.port)))


def _mirror_status(
    snapshot: Snapshot, m: MirrorRow, netns: str | None, read_link: LinkReader
) -> MirrorStatus:
    out = snapshot.ports.get(m.output_port) if m.output_port else None
    owner = owner_of(m)
    tunnel = None
    if out is not None:
        ifaces = snapshot.interfaces_of(out)
        if ifaces and ifaces[0].type in TUNNEL_TYPES:
            tunnel = (ifaces[0].type, dict(ifaces[0].options))
    return MirrorStatus(
        name=m.name,
        uuid=m.uuid,
        owner=owner,
        select_all=m.select_all,
        select_src=_selected(snapshot, m.select_src_port),
        select_dst=_selected(snapshot, m.select_dst_port),
        output_port=out.name if out else None,
        tx_packets=m.statistics.get("tx_packets"),
        tx_bytes=m.statistics.get("tx_bytes"),
        intent=MirrorSpec.from_external_ids(m.external_ids) if owner is Owner.MIRRORCTL else None,
        output_link=read_link(out.name, netns) if out and tunnel is None else None,
        output_tunnel=tunnel,
    )


def collect_status(
    snapshot: Snapshot,
    *,
    endpoint: str,
    bridge: str,
    netns: str | None = None,
    read_link: LinkReader = link_state,
) -> BridgeStatus:
    require_bridge(snapshot, bridge)
    rows = [snapshot.mirrors[u] for u in snapshot.bridges[bridge].mirrors if u in snapshot.mirrors]
    rows.sort(key=lambda m: (m.name, str(m.uuid)))
    pods = tuple(
        PodCoverage(
            pod=str(p.pod),
            port=p.port_name,
            ips=p.ips,
            from_pod=tuple(
                m.name for m in rows if m.select_all or p.port_uuid in m.select_src_port
            ),
            to_pod=tuple(m.name for m in rows if m.select_all or p.port_uuid in m.select_dst_port),
        )
        for p in pod_ports(snapshot, bridge)
    )
    return BridgeStatus(
        endpoint,
        bridge,
        netns,
        tuple(_mirror_status(snapshot, m, netns, read_link) for m in rows),
        pods,
    )


def _link_json(link: LinkState | None) -> dict[str, Any] | None:
    if link is None:
        return None
    return {
        "name": link.name,
        "up": link.up,
        "operstate": link.operstate,
        "rx_packets": link.rx_packets,
        "tx_packets": link.tx_packets,
        "rx_bytes": link.rx_bytes,
        "tx_bytes": link.tx_bytes,
        "rx_dropped": link.rx_dropped,
        "tx_dropped": link.tx_dropped,
    }


def _ports_json(ports: tuple[SelectedPort, ...]) -> list[dict[str, str | None]]:
    return [{"port": p.port, "pod": p.pod} for p in ports]


def status_json(status: BridgeStatus) -> dict[str, Any]:
    """The stable ``mirrorctl status --json`` document (keys documented in the README)."""
    mirrors = []
    for m in status.mirrors:
        intent = None
        if m.intent is not None:
            intent = {
                "global": m.intent.select_all,
                "pods": [str(p) for p in sorted(m.intent.pods)],
                "namespaces": sorted(m.intent.namespaces),
            }
        mirrors.append(
            {
                "name": m.name,
                "uuid": str(m.uuid),
                "owner": str(m.owner),
                "select_all": m.select_all,
                "select_src": _ports_json(m.select_src),
                "select_dst": _ports_json(m.select_dst),
                "output_port": m.output_port,
                "statistics": {"tx_packets": m.tx_packets, "tx_bytes": m.tx_bytes},
                "intent": intent,
                "output_link": _link_json(m.output_link),
                "output_tunnel": (
                    {"type": m.output_tunnel[0], "options": dict(m.output_tunnel[1])}
                    if m.output_tunnel is not None
                    else None
                ),
            }
        )
    return {
        "version": STATUS_VERSION,
        "ovsdb": status.endpoint,
        "bridge": status.bridge,
        "netns": status.netns,
        "mirrors": mirrors,
        "pods": [
            {
                "pod": p.pod,
                "port": p.port,
                "ips": list(p.ips),
                "mirrored_from_pod": list(p.from_pod),
                "mirrored_to_pod": list(p.to_pod),
            }
            for p in status.pods
        ],
    }


def _labels(ports: tuple[SelectedPort, ...]) -> str:
    return ", ".join(p.label for p in ports) or "-"


def format_status(status: BridgeStatus) -> str:
    """Human output: one block per mirror, pods by ``namespace/name``."""
    where = f" (netns {status.netns})" if status.netns else ""
    lines = [f"bridge {status.bridge} at {status.endpoint}{where}: {len(status.mirrors)} mirror(s)"]
    for m in status.mirrors:
        lines.append(f"mirror {m.name} (owner {m.owner})")
        if m.select_all:
            lines.append("  selects:   all traffic")
        if not m.select_all or m.select_src or m.select_dst:
            lines.append(f"  from pods: {_labels(m.select_src)}")
            lines.append(f"  to pods:   {_labels(m.select_dst)}")
        if m.intent is not None:
            lines.append(f"  intent:    {m.intent.describe()}")
        stats = "n/a" if m.tx_packets is None else f"{m.tx_packets} packets, {m.tx_bytes} bytes"
        lines.append(f"  output:    {m.output_port or '-'}; OVS tx {stats}")
        link = m.output_link
        if m.output_tunnel is not None:
            kind, options = m.output_tunnel
            opts = " ".join(f"{k}={v}" for k, v in sorted(options.items()))
            lines.append(f"  tunnel:    {kind} {opts} (remote mirror, no local link)")
        elif m.output_port and link is None:
            lines.append(f"  link:      {m.output_port} not found{where}")
        elif link is not None:
            lines.append(
                f"  link:      {link.name} {'up' if link.up else 'DOWN'} ({link.operstate}); "
                f"rx {link.rx_packets} pkts/{link.rx_bytes} B, "
                f"tx {link.tx_packets} pkts/{link.tx_bytes} B, "
                f"dropped rx {link.rx_dropped} tx {link.tx_dropped}"
            )
    if status.pods:
        lines.append(f"pods on {status.bridge} (mirrors copying their traffic, per direction):")
        rows = [("POD", "PORT", "IPS", "FROM POD", "TO POD")]
        rows += [
            (
                p.pod,
                p.port,
                ",".join(p.ips),
                ", ".join(p.from_pod) or "-",
                ", ".join(p.to_pod) or "-",
            )
            for p in status.pods
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines += [
            "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows
        ]
    return "\n".join(lines)
