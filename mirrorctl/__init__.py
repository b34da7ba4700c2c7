"""mirrorctl: the control plane — OVS mirroring into mirror0, links, the local lab."""

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
