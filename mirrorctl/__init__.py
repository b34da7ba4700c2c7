"""mirrorctl: the control plane — OVS mirroring into mirror0, links, the local lab."""

# The public names are imported on first use (PEP 562): `mirrorctl capture read` and other short
# commands should not pay for pyroute2 and ovsdbapp when they never touch OVSDB or netlink.
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mirrorctl._keeper import MirrorKeeper
    from mirrorctl._lab import Lab, node_exec, pod_exec
    from mirrorctl._lab_state import (
        KubeOvnMirror,
        LabNodePort,
        LabPod,
        LabService,
        LabState,
        ServiceKind,
    )
    from mirrorctl._lab_status import LabCheck, LabStatus
    from mirrorctl._links import LinkState, link_state
    from mirrorctl._mirrors import MirrorSpec, Owner, ReconcileReport, reconcile
    from mirrorctl._ovsdb import (
        DEFAULT_ENDPOINT,
        Backoff,
        OVSDBSession,
        Snapshot,
        connect,
        follow,
        resolve_endpoint,
    )
    from mirrorctl._pods import PodDirectory, PodRef, identity_entries
    from mirrorctl._status import BridgeStatus, collect_status, status_json

_LAZY: dict[str, str] = {
    "Backoff": "mirrorctl._ovsdb",
    "BridgeStatus": "mirrorctl._status",
    "DEFAULT_ENDPOINT": "mirrorctl._ovsdb",
    "KubeOvnMirror": "mirrorctl._lab_state",
    "Lab": "mirrorctl._lab",
    "LabCheck": "mirrorctl._lab_status",
    "LabNodePort": "mirrorctl._lab_state",
    "LabPod": "mirrorctl._lab_state",
    "LabService": "mirrorctl._lab_state",
    "LabState": "mirrorctl._lab_state",
    "LabStatus": "mirrorctl._lab_status",
    "LinkState": "mirrorctl._links",
    "MirrorKeeper": "mirrorctl._keeper",
    "MirrorSpec": "mirrorctl._mirrors",
    "OVSDBSession": "mirrorctl._ovsdb",
    "Owner": "mirrorctl._mirrors",
    "PodDirectory": "mirrorctl._pods",
    "PodRef": "mirrorctl._pods",
    "ReconcileReport": "mirrorctl._mirrors",
    "ServiceKind": "mirrorctl._lab_state",
    "Snapshot": "mirrorctl._ovsdb",
    "collect_status": "mirrorctl._status",
    "connect": "mirrorctl._ovsdb",
    "follow": "mirrorctl._ovsdb",
    "identity_entries": "mirrorctl._pods",
    "link_state": "mirrorctl._links",
    "node_exec": "mirrorctl._lab",
    "pod_exec": "mirrorctl._lab",
    "reconcile": "mirrorctl._mirrors",
    "resolve_endpoint": "mirrorctl._ovsdb",
    "status_json": "mirrorctl._status",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mirrorctl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__: list[str] = [
    "DEFAULT_ENDPOINT",
    "Backoff",
    "BridgeStatus",
    "KubeOvnMirror",
    "Lab",
    "LabCheck",
    "LabNodePort",
    "LabPod",
    "LabService",
    "LabState",
    "LabStatus",
    "LinkState",
    "MirrorKeeper",
    "MirrorSpec",
    "OVSDBSession",
    "Owner",
    "PodDirectory",
    "PodRef",
    "ReconcileReport",
    "ServiceKind",
    "Snapshot",
    "collect_status",
    "connect",
    "follow",
    "identity_entries",
    "link_state",
    "node_exec",
    "pod_exec",
    "reconcile",
    "resolve_endpoint",
    "status_json",
]
