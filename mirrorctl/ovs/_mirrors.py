"""Desired mirror state and reconciling OVSDB towards it.

mirrorctl owns at most one Mirror row per (bridge, output interface), named
``mirrorscope-<output>``. Its ``external_ids`` mark it as ours and record the *intent* (global,
pods, namespaces), so ``watch`` and ``status`` read it back. Rows of others (Kube-OVN's ``m0``,
OVN's ``ovn-owned``) are read, never written. Planning is a pure function of a :class:`Snapshot`;
only :func:`apply_plan` writes, in one ovsdbapp transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from uuid import UUID

from mirrorctl.ovs._defaults import DEFAULT_BRIDGE, DEFAULT_OUTPUT
from mirrorctl.ovs._errors import NotFoundError, OVSDBError, UsageError
from mirrorctl.ovs._links import link_state, set_link_up, wait_for_link
from mirrorctl.ovs._ovsdb import MirrorRow, OVSDBSession, Snapshot
from mirrorctl.ovs._pods import PodPort, PodRef, known_namespaces, pod_ports
from mirrorctl.ovs._spec import OUTPUT_KEY, MirrorSpec, Owner, owner_of
from mirrorctl.ovs._tunnels import TUNNEL_KEY, TUNNEL_TYPES, TunnelSpec

log = logging.getLogger(__name__)


def _owned(snapshot: Snapshot, bridge: str, output: str) -> list[MirrorRow]:
    br = snapshot.bridges.get(bridge)
    if br is None:
        return []
    rows = [snapshot.mirrors[u] for u in br.mirrors if u in snapshot.mirrors]
    mine = [
        m
        for m in rows
        if owner_of(m) is Owner.MIRRORCTL and m.external_ids.get(OUTPUT_KEY, output) == output
    ]
    return sorted(mine, key=lambda m: str(m.uuid))


def recorded_spec(snapshot: Snapshot, bridge: str, output: str) -> MirrorSpec | None:
    """The intent recorded in our row(s) for this output, or ``None`` when we have no row."""
    rows = _owned(snapshot, bridge, output)
    if not rows:
        return None
    spec = MirrorSpec()
    for row in rows:
        spec = spec | MirrorSpec.from_external_ids(row.external_ids)
    return spec


def require_bridge(snapshot: Snapshot, bridge: str) -> None:
    if bridge not in snapshot.bridges:
        known = ", ".join(sorted(snapshot.bridges)) or "none"
        raise NotFoundError(
            f"bridge {bridge!r} not found in OVSDB (bridges: {known}); pass --bridge",
            kind="bridge",
            name=bridge,
        )


def missing_selection(snapshot: Snapshot, spec: MirrorSpec, bridge: str) -> list[str]:
    """Pods and namespaces the spec names that have no port on the bridge right now."""
    ports = pod_ports(snapshot, bridge)
    pods = {p.pod for p in ports}
    namespaces = {p.pod.namespace for p in ports}
    missing = [f"pod {p}" for p in sorted(spec.pods) if p not in pods]
    missing += [f"namespace {n}" for n in sorted(spec.namespaces) if n not in namespaces]
    return missing


def require_selection(snapshot: Snapshot, spec: MirrorSpec, bridge: str) -> None:
    """Raise ``NotFoundError`` for a named pod or namespace with no port on the bridge."""
    missing = missing_selection(snapshot, spec, bridge)
    if missing:
        known = ", ".join(known_namespaces(pod_ports(snapshot, bridge))) or "none"
        raise NotFoundError(
            f"no {', '.join(missing)} on bridge {bridge} (namespaces with pods here: {known}); "
            "`mirrorctl watch` follows pods that appear later",
            kind=missing[0].split(" ")[0],
            name=missing[0].split(" ", 1)[1],
        )


@dataclass(frozen=True, slots=True)
class MirrorPlan:
    """What reconciling one (bridge, output) needs, computed from a snapshot."""

    bridge: str
    output: str
    spec: MirrorSpec
    output_port: UUID | None
    create_port: bool
    internal: bool
    want_row: bool
    row: MirrorRow | None
    row_is_current: bool
    remove: tuple[UUID, ...]
    selected: tuple[PodPort, ...]
    covered_by: str | None
    missing: tuple[str, ...] = field(default=())
    tunnel: TunnelSpec | None = None
    #: The output port's Interface row, when it exists but is not yet the tunnel asked for.
    retune: UUID | None = None
    #: False for a tunnel port: no kernel link appears for it, so none is awaited or raised.
    output_is_link: bool = True

    @property
    def name(self) -> str:
        return f"mirrorscope-{self.output}"

    @property
    def changes(self) -> bool:
        return (
            bool(self.remove)
            or self.create_port
            or (self.want_row and (not self.row_is_current or self.retune is not None))
        )

    @property
    def external_ids(self) -> dict[str, str]:
        ext = self.spec.to_external_ids(self.output)
        if self.tunnel is not None:
            ext[TUNNEL_KEY] = self.tunnel.describe()
        return ext

    @property
    def select_all(self) -> bool:
        return self.spec.select_all and self.covered_by is None

    @property
    def port_uuids(self) -> frozenset[UUID]:
        return frozenset(p.port_uuid for p in self.selected)


def plan_mirror(
    snapshot: Snapshot,
    spec: MirrorSpec,
    *,
    bridge: str = DEFAULT_BRIDGE,
    output: str = DEFAULT_OUTPUT,
    output_link_exists: bool = False,
    tunnel: TunnelSpec | None = None,
) -> MirrorPlan:
    """Compare the snapshot with ``spec``; touch only our own rows.

    With ``tunnel`` the output is a GRE/ERSPAN port (created, or its options set, as needed)
    instead of an internal port.
    """
    require_bridge(snapshot, bridge)
    br = snapshot.bridges[bridge]
    port = snapshot.port_named(output)
    if port is not None and port.uuid not in br.ports:
        other = snapshot.bridge_of_port(port.uuid)
        raise UsageError(
            f"port {output} is on bridge {other.name if other else '?'}, not {bridge}; "
            "pass --bridge or another --iface"
        )
    covered_by = None
    if port is not None:
        for u in sorted(br.mirrors, key=str):
            m = snapshot.mirrors.get(u)
            if (
                m
                and owner_of(m) is not Owner.MIRRORCTL
                and m.select_all
                and m.output_port == port.uuid
            ):
                covered_by = m.name
                break
    selected = tuple(p for p in pod_ports(snapshot, bridge) if spec.wants(p.pod))
    want_row = (spec.select_all and covered_by is None) or bool(spec.pods or spec.namespaces)
    owned = _owned(snapshot, bridge, output)
    row = owned[0] if owned and want_row else None
    remove = tuple(m.uuid for m in owned if m is not row)
    ports = frozenset(p.port_uuid for p in selected)
    ifaces = snapshot.interfaces_of(port) if port is not None else []
    retune = None
    if tunnel is not None and ifaces and ifaces[0].type not in TUNNEL_TYPES:
        raise UsageError(
            f"port {output} on {bridge} is not a tunnel (type {ifaces[0].type or 'system'}): "
            "pass another --iface for the tunnel port"
        )
    if tunnel is not None and want_row and ifaces and not tunnel.matches(ifaces[0]):
        retune = ifaces[0].uuid
    is_tunnel = tunnel is not None or any(i.type in TUNNEL_TYPES for i in ifaces)
    ext = spec.to_external_ids(output)
    if tunnel is not None:
        ext[TUNNEL_KEY] = tunnel.describe()
    current = (
        row is not None
        and port is not None
        and row.output_port == port.uuid
        and row.select_all == (spec.select_all and covered_by is None)
        and row.select_src_port == ports
        and row.select_dst_port == ports
        and all(row.external_ids.get(k) == v for k, v in ext.items())
    )
    return MirrorPlan(
        bridge=bridge,
        output=output,
        spec=spec,
        output_port=port.uuid if port else None,
        create_port=want_row and port is None,
        internal=not output_link_exists,
        want_row=want_row,
        row=row,
        row_is_current=current,
        remove=remove,
        selected=selected,
        covered_by=covered_by,
        missing=tuple(missing_selection(snapshot, spec, bridge)),
        tunnel=tunnel,
        retune=retune,
        output_is_link=not is_tunnel,
    )


def apply_plan(session: OVSDBSession, plan: MirrorPlan) -> None:
    """Write the plan in one transaction (create port, create/update/remove our Mirror rows)."""
    if not plan.changes:
        return
    api = session.api
    with session.transaction() as txn:
        port_ref: object = plan.output_port
        if plan.create_port:
            attrs: dict[str, object] = {"type": "internal"} if plan.internal else {}
            if plan.tunnel is not None:
                attrs = {"type": str(plan.tunnel.kind), "options": plan.tunnel.options()}
            port_ref = txn.add(api.add_port(plan.bridge, plan.output, may_exist=True, **attrs))
        if plan.retune is not None and plan.tunnel is not None and plan.want_row:
            tunnel = plan.tunnel
            txn.add(
                api.db_set(
                    "Interface",
                    plan.retune,
                    ("type", str(tunnel.kind)),
                    ("options", tunnel.options()),
                    if_exists=False,
                )
            )
        for u in plan.remove:
            # Mirror rows are garbage-collected once no bridge references them.
            txn.add(api.db_remove("Bridge", plan.bridge, "mirrors", u))
        if not plan.want_row:
            return
        ports = sorted(plan.port_uuids, key=str)
        columns = {
            "select_all": plan.select_all,
            "select_src_port": ports,
            "select_dst_port": ports,
            "output_port": port_ref,
            "external_ids": plan.external_ids,
        }
        if plan.row is None:
            mirror = txn.add(api.db_create("Mirror", name=plan.name, **columns))
            txn.add(api.db_add("Bridge", plan.bridge, "mirrors", mirror))
        elif not plan.row_is_current:
            txn.add(api.db_set("Mirror", plan.row.uuid, *columns.items(), if_exists=False))


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    plan: MirrorPlan
    changed: bool
    link_raised: bool
    link_present: bool


def reconcile(
    session: OVSDBSession,
    spec: MirrorSpec,
    *,
    bridge: str = DEFAULT_BRIDGE,
    output: str = DEFAULT_OUTPUT,
    netns: str | None = None,
    link_timeout: float = 5.0,
    snapshot: Snapshot | None = None,
    attempts: int = 3,
    tunnel: TunnelSpec | None = None,
) -> ReconcileReport:
    """Bring OVSDB and the output link to ``spec``; retry when a row changed under us.

    ``link_timeout`` 0 means: do not wait for ovs-vswitchd to create the output link (the keeper
    checks again on its next tick instead).
    """
    for attempt in range(1, attempts + 1):
        snap = snapshot if snapshot is not None and attempt == 1 else session.snapshot()
        plan = plan_mirror(
            snap,
            spec,
            bridge=bridge,
            output=output,
            output_link_exists=tunnel is None and _exists(output, netns),
            tunnel=tunnel,
        )
        try:
            apply_plan(session, plan)
            break
        except OVSDBError as exc:
            if attempt == attempts:
                raise
            log.info("retrying after a concurrent change: %s", exc)
    raised, present = False, False
    if link_timeout > 0 and plan.changes:
        session.wait_applied(link_timeout)
    if not plan.output_is_link:
        # ovs-vswitchd encapsulates the copies itself: there is no link, so nothing to raise.
        present = plan.output_port is not None or plan.create_port
    elif plan.want_row or plan.covered_by is not None:
        if link_timeout > 0 and plan.want_row:
            wait_for_link(output, netns, timeout=link_timeout)
        present = _exists(output, netns)
        if present:
            raised = set_link_up(output, netns)
    return ReconcileReport(plan, plan.changes, raised, present)


def _exists(name: str, netns: str | None) -> bool:
    return link_state(name, netns) is not None


def describe_plan(plan: MirrorPlan) -> list[str]:
    """Human lines for what the mirror does now (used by enable/disable)."""
    lines = []
    if plan.covered_by is not None and plan.spec.select_all:
        lines.append(
            f"mirror {plan.covered_by!r} (not ours) already sends all traffic on {plan.bridge} "
            f"to {plan.output}; not adding another"
        )
    if not plan.want_row:
        if plan.remove:
            lines.append(f"removed mirror {plan.name} from {plan.bridge}")
        elif plan.covered_by is None:
            lines.append(f"nothing mirrored by mirrorctl to {plan.output} on {plan.bridge}")
        return lines
    what = [] if not plan.select_all else ["all traffic"]
    if plan.spec.pods or plan.spec.namespaces:
        pods = ", ".join(sorted({str(p.pod) for p in plan.selected})) or "no pods yet"
        what.append(f"both directions of {pods}")
    target = plan.output
    if plan.tunnel is not None:
        target += f" ({plan.tunnel.describe()})"
    lines.append(f"mirror {plan.name}: {'; '.join(what)} on {plan.bridge} -> {target}")
    lines.extend(f"warning: {m} has no port on {plan.bridge} yet" for m in plan.missing)
    return lines


def spec_from_args(select_all: bool, pods: Iterable[str], namespaces: Iterable[str]) -> MirrorSpec:
    """Build a spec from CLI values (``NS/NAME`` pods), rejecting malformed ones."""
    return MirrorSpec(
        select_all,
        frozenset(PodRef.parse(p) for p in pods),
        frozenset(n.strip() for n in namespaces if n.strip()),
    )
