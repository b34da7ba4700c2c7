"""mirrorctl: the control plane — OVS mirroring into mirror0, links, the local lab."""

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

__all__: list[str] = [
    "KubeOvnMirror",
    "Lab",
    "LabCheck",
    "LabNodePort",
    "LabPod",
    "LabService",
    "LabState",
    "LabStatus",
    "ServiceKind",
    "node_exec",
    "pod_exec",
]
