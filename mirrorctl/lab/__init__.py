"""The local lab: a Kube-OVN-like node (real OVS, pods as network namespaces) on this machine."""

# Names resolve on first use (PEP 562): reading a lab state file must not cost pyroute2.
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mirrorctl.lab._collector import learn_collector, remote_mirror, tunnel_to
    from mirrorctl.lab._errors import LabError
    from mirrorctl.lab._lab import Lab, node_exec, pod_exec
    from mirrorctl.lab._namespaces import netns_argv
    from mirrorctl.lab._ovsdb import KUBE_OVN_MIRROR_NAME, KUBE_OVN_MIRROR_PORT
    from mirrorctl.lab._services import dns_name
    from mirrorctl.lab._state import (
        KubeOvnMirror,
        LabCollector,
        LabNodePort,
        LabPod,
        LabService,
        LabState,
        RemoteMirror,
        ServiceKind,
        read_state,
    )
    from mirrorctl.lab._status import LabCheck, LabStatus
    from mirrorctl.lab._twonode import TwoNodeLab

_LAZY: dict[str, str] = {
    "KUBE_OVN_MIRROR_NAME": "mirrorctl.lab._ovsdb",
    "KUBE_OVN_MIRROR_PORT": "mirrorctl.lab._ovsdb",
    "KubeOvnMirror": "mirrorctl.lab._state",
    "Lab": "mirrorctl.lab._lab",
    "LabCheck": "mirrorctl.lab._status",
    "LabCollector": "mirrorctl.lab._state",
    "LabError": "mirrorctl.lab._errors",
    "LabNodePort": "mirrorctl.lab._state",
    "LabPod": "mirrorctl.lab._state",
    "LabService": "mirrorctl.lab._state",
    "LabState": "mirrorctl.lab._state",
    "LabStatus": "mirrorctl.lab._status",
    "RemoteMirror": "mirrorctl.lab._state",
    "ServiceKind": "mirrorctl.lab._state",
    "TwoNodeLab": "mirrorctl.lab._twonode",
    "dns_name": "mirrorctl.lab._services",
    "netns_argv": "mirrorctl.lab._namespaces",
    "node_exec": "mirrorctl.lab._lab",
    "pod_exec": "mirrorctl.lab._lab",
    "learn_collector": "mirrorctl.lab._collector",
    "read_state": "mirrorctl.lab._state",
    "remote_mirror": "mirrorctl.lab._collector",
    "tunnel_to": "mirrorctl.lab._collector",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mirrorctl.lab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__: list[str] = [
    "KUBE_OVN_MIRROR_NAME",
    "KUBE_OVN_MIRROR_PORT",
    "KubeOvnMirror",
    "Lab",
    "LabCheck",
    "LabCollector",
    "LabError",
    "LabNodePort",
    "LabPod",
    "LabService",
    "LabState",
    "LabStatus",
    "RemoteMirror",
    "ServiceKind",
    "TwoNodeLab",
    "dns_name",
    "learn_collector",
    "netns_argv",
    "node_exec",
    "pod_exec",
    "read_state",
    "remote_mirror",
    "tunnel_to",
]
