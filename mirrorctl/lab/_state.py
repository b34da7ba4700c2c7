"""What a lab consists of: the contract between ``lab up`` and everyone who uses the lab.

The same record is the lab's plan and its state file: ``up`` writes it *before* creating anything,
so that ``down`` can always find everything, even after a half-finished ``up``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from mirrorctl.lab._errors import LabError
from mirrorctl.ovs import NotFoundError

STATE_VERSION = 1
STATE_FILE = "lab.json"


class KubeOvnMirror(StrEnum):
    """What kube-ovn-cni's own mirror setup the lab imitates (``--enable-mirror`` and friends)."""

    NONE = "none"  # kube-ovn-cni without mirroring support: no mirror0, no m0
    GLOBAL = "global"  # --enable-mirror: m0 with select_all=true into mirror0
    PODS = "pods"  # mirroring off globally: m0 exists with no selection, pods opt in by annotation


class RemoteMirror(StrEnum):
    """The tunnels ``lab up --remote-mirror`` sets up; erspan1/2 are OVS's ``erspan_ver``."""

    GRE = "gre"
    ERSPAN1 = "erspan1"  # ERSPAN type II
    ERSPAN2 = "erspan2"  # ERSPAN type III


class ServiceKind(StrEnum):
    HTTP = "http"
    DNS = "dns"
    IPERF3 = "iperf3"


@dataclass(frozen=True, slots=True)
class LabPod:
    """A pod: a netns with ``eth0``, its veth peer plugged into br-int as Kube-OVN does it."""

    namespace: str
    name: str
    netns: str
    ipv4: str
    ipv6: str
    mac: str
    host_veth: str

    @property
    def iface_id(self) -> str:
        """Kube-OVN's ``Interface external_ids:iface-id``: ``<pod>.<namespace>``."""
        return f"{self.name}.{self.namespace}"

    @property
    def label(self) -> str:
        """``namespace/name``, as kubectl and mirrorctl name a pod."""
        return f"{self.namespace}/{self.name}"

    @property
    def netns_path(self) -> str:
        """Where iproute2 pins the namespace; Kube-OVN records this as ``pod_netns``."""
        return f"/var/run/netns/{self.netns}"


@dataclass(frozen=True, slots=True)
class LabNodePort:
    """The node's own port on br-int, like Kube-OVN's ``ovn0`` in the join subnet."""

    name: str
    node_name: str
    ipv4: str
    prefixlen: int

    @property
    def iface_id(self) -> str:
        return f"node-{self.node_name}"


@dataclass(frozen=True, slots=True)
class LabCollector:
    """A remote-mirror collector: a namespace on the end of a veth from the node's ``br-phy``.

    ovs-vswitchd's userspace datapath tunnels natively: the tunnel's source address lives on
    ``br-phy``'s internal port (``node_ip``) and OVS routes and ARPs for ``collector_ip`` itself.
    """

    netns: str
    node_veth: str  # the veth end on br-phy, in the node's namespace
    collector_veth: str  # the other end, in the collector's namespace
    bridge: str
    node_ip: str
    collector_ip: str
    prefixlen: int
    mtu: int  # above the pods' 1500 plus the tunnel headers, so no copy is too big to send

    def to_json(self) -> dict[str, Any]:
        return {
            "netns": self.netns,
            "node_veth": self.node_veth,
            "collector_veth": self.collector_veth,
            "bridge": self.bridge,
            "node_ip": self.node_ip,
            "collector_ip": self.collector_ip,
            "prefixlen": self.prefixlen,
            "mtu": self.mtu,
        }


@dataclass(frozen=True, slots=True)
class LabService:
    """A server inside a pod that tests send traffic to."""

    kind: ServiceKind
    pod: LabPod
    port: int


@dataclass(frozen=True, slots=True)
class LabState:
    """Everything a test or ``mirrorctl`` needs to find the lab's pieces."""

    name: str
    run_dir: Path
    node_netns: str
    ovsdb: str
    bridge: str
    node_port: LabNodePort
    pods: tuple[LabPod, ...]
    services: tuple[LabService, ...]
    kube_ovn_mirror: KubeOvnMirror
    pod_cidr_v4: str
    pod_cidr_v6: str
    join_cidr: str
    created_run_dir: bool
    collector: LabCollector | None = None

    def pod(self, namespace: str, name: str) -> LabPod:
        """The pod ``namespace/name``; raises NotFoundError naming the pods that exist."""
        for pod in self.pods:
            if (pod.namespace, pod.name) == (namespace, name):
                return pod
        known = ", ".join(p.label for p in self.pods)
        raise NotFoundError(f"lab {self.name} has no pod {namespace}/{name} (pods: {known})")

    def service(self, kind: ServiceKind | str) -> LabService:
        """The lab's server of this kind (``http``, ``dns``, ``iperf3``)."""
        for service in self.services:
            if service.kind == kind:
                return service
        raise NotFoundError(f"lab {self.name} runs no {kind} service")

    def env(self) -> dict[str, str]:
        """The environment that points ``mirrorctl`` at this lab instead of a real node."""
        return {"MIRRORSCOPE_OVSDB": self.ovsdb, "MIRRORSCOPE_NETNS": self.node_netns}

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "name": self.name,
            "run_dir": str(self.run_dir),
            "node_netns": self.node_netns,
            "ovsdb": self.ovsdb,
            "bridge": self.bridge,
            "node_port": {
                "name": self.node_port.name,
                "node_name": self.node_port.node_name,
                "ipv4": self.node_port.ipv4,
                "prefixlen": self.node_port.prefixlen,
            },
            "pods": [
                {
                    "namespace": p.namespace,
                    "name": p.name,
                    "netns": p.netns,
                    "ipv4": p.ipv4,
                    "ipv6": p.ipv6,
                    "mac": p.mac,
                    "host_veth": p.host_veth,
                }
                for p in self.pods
            ],
            "services": [
                {"kind": str(s.kind), "pod": s.pod.label, "port": s.port} for s in self.services
            ],
            "kube_ovn_mirror": str(self.kube_ovn_mirror),
            "pod_cidr_v4": self.pod_cidr_v4,
            "pod_cidr_v6": self.pod_cidr_v6,
            "join_cidr": self.join_cidr,
            "created_run_dir": self.created_run_dir,
            "collector": self.collector.to_json() if self.collector is not None else None,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> LabState:
        """Parse a state file's content; raises LabError when it is not one this version wrote."""
        if doc.get("version") != STATE_VERSION:
            raise LabError(
                f"lab state version {doc.get('version')!r} is not {STATE_VERSION}: "
                "remove the lab with the mirrorctl version that created it"
            )
        try:
            pods = tuple(LabPod(**p) for p in doc["pods"])
            by_label = {p.label: p for p in pods}
            services = tuple(
                LabService(kind=ServiceKind(s["kind"]), pod=by_label[s["pod"]], port=int(s["port"]))
                for s in doc["services"]
            )
            # Labs written before collectors existed have no key: they have no collector.
            collector = doc.get("collector")
            return cls(
                name=doc["name"],
                run_dir=Path(doc["run_dir"]),
                node_netns=doc["node_netns"],
                ovsdb=doc["ovsdb"],
                bridge=doc["bridge"],
                node_port=LabNodePort(**doc["node_port"]),
                pods=pods,
                services=services,
                kube_ovn_mirror=KubeOvnMirror(doc["kube_ovn_mirror"]),
                pod_cidr_v4=doc["pod_cidr_v4"],
                pod_cidr_v6=doc["pod_cidr_v6"],
                join_cidr=doc["join_cidr"],
                created_run_dir=bool(doc["created_run_dir"]),
                collector=LabCollector(**collector) if collector is not None else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LabError(f"lab state is malformed ({exc!r}): remove it and run lab up") from exc


def state_path(run_dir: Path) -> Path:
    return run_dir / STATE_FILE


def read_state(run_dir: Path) -> LabState | None:
    """The state file in ``run_dir``, or None when there is none (the lab is down)."""
    path = state_path(run_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LabError(f"cannot read lab state {path}: {exc.strerror}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LabError(f"lab state {path} is not JSON ({exc}): remove it and run lab up") from exc
    if not isinstance(doc, dict):
        raise LabError(f"lab state {path} is not a JSON object: remove it and run lab up")
    return LabState.from_json(doc)


def write_state(state: LabState) -> None:
    """Write atomically, so a crash never leaves a half-written file that hides the lab."""
    path = state_path(state.run_dir)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
