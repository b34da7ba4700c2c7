"""OVS mirror control: the OVSDB session, mirrors into mirror0 or a GRE/ERSPAN tunnel, the keeper,
status, pods, links."""

# Names resolve on first use (PEP 562): an error class or a constant must not cost ovsdbapp and
# pyroute2, which only the commands that talk to OVSDB or netlink should pay for.
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mirrorctl.ovs._backoff import Backoff
    from mirrorctl.ovs._defaults import (
        DEFAULT_BRIDGE,
        DEFAULT_ENDPOINT,
        DEFAULT_KUBE_OVN_GRACE_S,
        DEFAULT_OUTPUT,
        ENDPOINT_ENV,
    )
    from mirrorctl.ovs._errors import (
        LinkError,
        MirrorError,
        NotFoundError,
        OVSDBError,
        OVSDBUnreachableError,
        UsageError,
        VswitchdTimeoutError,
    )
    from mirrorctl.ovs._follow import KubeOvnFollower, kube_ovn_selection
    from mirrorctl.ovs._keeper import MirrorKeeper, SpecSource
    from mirrorctl.ovs._links import LinkState, link_state
    from mirrorctl.ovs._mirrors import (
        ReconcileReport,
        describe_plan,
        reconcile,
        recorded_spec,
        require_bridge,
        require_selection,
        spec_from_args,
    )
    from mirrorctl.ovs._ovsdb import (
        OVSDBSession,
        Snapshot,
        connect,
        follow,
        resolve_endpoint,
    )
    from mirrorctl.ovs._pods import PodDirectory, PodRef, identity_entries, node_name
    from mirrorctl.ovs._spec import MirrorSpec, Owner, owner_of
    from mirrorctl.ovs._status import BridgeStatus, collect_status, format_status, status_json
    from mirrorctl.ovs._tunnels import TunnelKind, TunnelSpec, tunnel_from_args

_LAZY: dict[str, str] = {
    "Backoff": "mirrorctl.ovs._backoff",
    "BridgeStatus": "mirrorctl.ovs._status",
    "DEFAULT_BRIDGE": "mirrorctl.ovs._defaults",
    "DEFAULT_ENDPOINT": "mirrorctl.ovs._defaults",
    "DEFAULT_KUBE_OVN_GRACE_S": "mirrorctl.ovs._defaults",
    "DEFAULT_OUTPUT": "mirrorctl.ovs._defaults",
    "ENDPOINT_ENV": "mirrorctl.ovs._defaults",
    "KubeOvnFollower": "mirrorctl.ovs._follow",
    "LinkError": "mirrorctl.ovs._errors",
    "LinkState": "mirrorctl.ovs._links",
    "MirrorError": "mirrorctl.ovs._errors",
    "MirrorKeeper": "mirrorctl.ovs._keeper",
    "MirrorSpec": "mirrorctl.ovs._spec",
    "NotFoundError": "mirrorctl.ovs._errors",
    "OVSDBError": "mirrorctl.ovs._errors",
    "OVSDBSession": "mirrorctl.ovs._ovsdb",
    "OVSDBUnreachableError": "mirrorctl.ovs._errors",
    "Owner": "mirrorctl.ovs._spec",
    "PodDirectory": "mirrorctl.ovs._pods",
    "PodRef": "mirrorctl.ovs._pods",
    "ReconcileReport": "mirrorctl.ovs._mirrors",
    "Snapshot": "mirrorctl.ovs._ovsdb",
    "TunnelKind": "mirrorctl.ovs._tunnels",
    "TunnelSpec": "mirrorctl.ovs._tunnels",
    "SpecSource": "mirrorctl.ovs._keeper",
    "UsageError": "mirrorctl.ovs._errors",
    "VswitchdTimeoutError": "mirrorctl.ovs._errors",
    "collect_status": "mirrorctl.ovs._status",
    "connect": "mirrorctl.ovs._ovsdb",
    "describe_plan": "mirrorctl.ovs._mirrors",
    "follow": "mirrorctl.ovs._ovsdb",
    "format_status": "mirrorctl.ovs._status",
    "identity_entries": "mirrorctl.ovs._pods",
    "kube_ovn_selection": "mirrorctl.ovs._follow",
    "link_state": "mirrorctl.ovs._links",
    "node_name": "mirrorctl.ovs._pods",
    "owner_of": "mirrorctl.ovs._spec",
    "reconcile": "mirrorctl.ovs._mirrors",
    "recorded_spec": "mirrorctl.ovs._mirrors",
    "require_bridge": "mirrorctl.ovs._mirrors",
    "require_selection": "mirrorctl.ovs._mirrors",
    "resolve_endpoint": "mirrorctl.ovs._ovsdb",
    "spec_from_args": "mirrorctl.ovs._mirrors",
    "status_json": "mirrorctl.ovs._status",
    "tunnel_from_args": "mirrorctl.ovs._tunnels",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mirrorctl.ovs' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__: list[str] = [
    "DEFAULT_BRIDGE",
    "DEFAULT_ENDPOINT",
    "DEFAULT_KUBE_OVN_GRACE_S",
    "DEFAULT_OUTPUT",
    "ENDPOINT_ENV",
    "Backoff",
    "BridgeStatus",
    "KubeOvnFollower",
    "LinkError",
    "LinkState",
    "MirrorError",
    "MirrorKeeper",
    "MirrorSpec",
    "NotFoundError",
    "OVSDBError",
    "OVSDBSession",
    "OVSDBUnreachableError",
    "Owner",
    "PodDirectory",
    "PodRef",
    "ReconcileReport",
    "Snapshot",
    "SpecSource",
    "TunnelKind",
    "TunnelSpec",
    "UsageError",
    "VswitchdTimeoutError",
    "collect_status",
    "connect",
    "describe_plan",
    "follow",
    "format_status",
    "identity_entries",
    "kube_ovn_selection",
    "link_state",
    "node_name",
    "owner_of",
    "reconcile",
    "recorded_spec",
    "require_bridge",
    "require_selection",
    "resolve_endpoint",
    "spec_from_args",
    "status_json",
    "tunnel_from_args",
]
