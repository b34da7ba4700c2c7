"""mirrorctl: the control plane (OVS mirroring, the lab, the CLI) and the capture service."""

# The public names are imported on first use (PEP 562): `mirrorctl capture read` and other short
# commands should not pay for pyroute2 and ovsdbapp when they never touch OVSDB or netlink.
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from capture import MirrorscopeError
    from mirrorctl.lab import (
        KubeOvnMirror,
        Lab,
        LabCheck,
        LabNodePort,
        LabPod,
        LabService,
        LabState,
        LabStatus,
        ServiceKind,
        node_exec,
        pod_exec,
    )
    from mirrorctl.ovs import (
        DEFAULT_ENDPOINT,
        Backoff,
        BridgeStatus,
        LinkState,
        MirrorKeeper,
        MirrorSpec,
        OVSDBSession,
        Owner,
        PodDirectory,
        PodRef,
        ReconcileReport,
        Snapshot,
        collect_status,
        connect,
        follow,
        identity_entries,
        link_state,
        reconcile,
        resolve_endpoint,
        status_json,
    )
    from mirrorctl.service import LiveCapture, Pipeline, analyse_pcap, live_capture

_LAZY: dict[str, str] = {
    "Backoff": "mirrorctl.ovs",
    "BridgeStatus": "mirrorctl.ovs",
    "DEFAULT_ENDPOINT": "mirrorctl.ovs",
    "KubeOvnMirror": "mirrorctl.lab",
    "Lab": "mirrorctl.lab",
    "LabCheck": "mirrorctl.lab",
    "LabNodePort": "mirrorctl.lab",
    "LabPod": "mirrorctl.lab",
    "LabService": "mirrorctl.lab",
    "LabState": "mirrorctl.lab",
    "LabStatus": "mirrorctl.lab",
    "LinkState": "mirrorctl.ovs",
    "LiveCapture": "mirrorctl.service",
    "MirrorKeeper": "mirrorctl.ovs",
    "MirrorSpec": "mirrorctl.ovs",
    "MirrorscopeError": "capture",
    "OVSDBSession": "mirrorctl.ovs",
    "Owner": "mirrorctl.ovs",
    "Pipeline": "mirrorctl.service",
    "PodDirectory": "mirrorctl.ovs",
    "PodRef": "mirrorctl.ovs",
    "ReconcileReport": "mirrorctl.ovs",
    "ServiceKind": "mirrorctl.lab",
    "Snapshot": "mirrorctl.ovs",
    "analyse_pcap": "mirrorctl.service",
    "collect_status": "mirrorctl.ovs",
    "connect": "mirrorctl.ovs",
    "follow": "mirrorctl.ovs",
    "identity_entries": "mirrorctl.ovs",
    "link_state": "mirrorctl.ovs",
    "live_capture": "mirrorctl.service",
    "node_exec": "mirrorctl.lab",
    "pod_exec": "mirrorctl.lab",
    "reconcile": "mirrorctl.ovs",
    "resolve_endpoint": "mirrorctl.ovs",
    "status_json": "mirrorctl.ovs",
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
    "LiveCapture",
    "MirrorKeeper",
    "MirrorSpec",
    "MirrorscopeError",
    "OVSDBSession",
    "Owner",
    "Pipeline",
    "PodDirectory",
    "PodRef",
    "ReconcileReport",
    "ServiceKind",
    "Snapshot",
    "analyse_pcap",
    "collect_status",
    "connect",
    "follow",
    "identity_entries",
    "link_state",
    "live_capture",
    "node_exec",
    "pod_exec",
    "reconcile",
    "resolve_endpoint",
    "status_json",
]
