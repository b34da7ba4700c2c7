"""Is each piece of a lab there? Namespaces, daemons, OVSDB ports, links — checked, not assumed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from capture import MirrorscopeError
from mirrorctl.lab import _daemons, _namespaces, _ovs_daemons, _ovsdb, _services
from mirrorctl.lab._state import KubeOvnMirror, LabState

STATUS_OVSDB_TIMEOUT = 3


@dataclass(frozen=True, slots=True)
class LabCheck:
    """One piece of the lab: what kind it is, its name, whether it is there, and how it looks."""

    kind: str  # netns | daemon | port | link
    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LabStatus:
    state: LabState
    checks: tuple[LabCheck, ...]

    @property
    def healthy(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.state.name,
            "healthy": self.healthy,
            "state": self.state.to_json(),
            "checks": [
                {"kind": c.kind, "name": c.name, "ok": c.ok, "detail": c.detail}
                for c in self.checks
            ],
        }


def _netns_checks(state: LabState) -> list[LabCheck]:
    names = [state.node_netns, *(p.netns for p in state.pods)]
    if state.collector is not None:
        names.append(state.collector.netns)
    return [LabCheck("netns", n, _namespaces.exists(n)) for n in names]


def _daemon_checks(state: LabState) -> list[LabCheck]:
    specs = [
        _ovs_daemons.daemon(state.run_dir, _ovs_daemons.OVSDB_SERVER, state.node_netns),
        _ovs_daemons.daemon(state.run_dir, _ovs_daemons.OVS_VSWITCHD, state.node_netns),
        *_services.placed_daemons(state),
    ]
    checks = []
    for spec in specs:
        pid = _daemons.running_pid(spec)
        if pid is None:
            checks.append(LabCheck("daemon", spec.name, False, "not running"))
        elif not _daemons.in_its_netns(spec, pid):
            checks.append(LabCheck("daemon", spec.name, False, f"pid {pid} in a stale netns"))
        else:
            checks.append(LabCheck("daemon", spec.name, True, f"pid {pid} in {spec.netns}"))
    return checks


def _expected_ports(state: LabState) -> list[str]:
    ports = [state.node_port.name, *(p.host_veth for p in state.pods)]
    if state.kube_ovn_mirror is not KubeOvnMirror.NONE:
        ports.append(_ovsdb.KUBE_OVN_MIRROR_PORT)
    if state.collector is not None:
        ports.append(state.collector.node_veth)
    return ports


def _port_checks(state: LabState) -> list[LabCheck]:
    names = _expected_ports(state)
    try:
        with (
            _ovsdb.connect(state.ovsdb, timeout=STATUS_OVSDB_TIMEOUT) as api,
            _ovsdb.ovsdb_errors(state.ovsdb, "reading ports"),
        ):
            ofports = _ovsdb.ofports(api, names)
    except MirrorscopeError as exc:
        return [LabCheck("port", n, False, f"OVSDB unreachable: {exc}") for n in names]
    return [
        LabCheck("port", n, ofports.get(n, -1) > 0, f"ofport {ofports.get(n, 'missing')}")
        for n in names
    ]


def _link_checks(state: LabState) -> list[LabCheck]:
    present = set(_namespaces.link_names(state.node_netns))
    names = [state.bridge, *_expected_ports(state)]
    if state.collector is not None:
        names.append(state.collector.bridge)
    return [LabCheck("link", n, n in present, f"in {state.node_netns}") for n in names]


def check(state: LabState) -> LabStatus:
    """Check every piece ``state`` names; never raises for a missing piece."""
    checks = [
        *_netns_checks(state),
        *_daemon_checks(state),
        *_port_checks(state),
        *_link_checks(state),
    ]
    return LabStatus(state=state, checks=tuple(checks))
