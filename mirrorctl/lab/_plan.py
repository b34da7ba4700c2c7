"""Planning a lab: names, addresses and roles, decided before anything is created.

Pure functions of the lab's name, size and a random source, so the layout is unit-testable and
a half-built lab can be finished or removed from its plan alone.
"""

from __future__ import annotations

import ipaddress
import random
import re
from pathlib import Path

from mirrorctl.lab._errors import LabError
from mirrorctl.lab._state import (
    KubeOvnMirror,
    LabCollector,
    LabNodePort,
    LabPod,
    LabService,
    LabState,
    ServiceKind,
)

MIN_PODS = 2
MAX_PODS = 64
MAX_NODES = 4  # nodes of one multi-node lab; each takes MAX_PODS addresses of the pod subnet
BRIDGE = "br-int"
NODE_PORT = "ovn0"
POD_CIDR_V4 = "10.16.0.0/16"
POD_CIDR_V6 = "fd00:10:16::/64"
JOIN_CIDR = "100.64.0.0/16"
COLLECTOR_CIDR = "10.250.0.0/24"  # the collector's underlay: clear of pods, join and two-node
COLLECTOR_MTU = 9000
FIRST_HOST = 10  # pods start at .10 / ::a, clear of gateway-like low addresses
DEFAULT_RUN_ROOT = Path("/run/mirrorscope")

# Namespace/app per pod slot. The first three host the services, in different namespaces, so
# tests see cross-namespace traffic; later slots alternate namespaces.
_ROLES: tuple[tuple[str, str, ServiceKind | None], ...] = (
    ("shop", "frontend", ServiceKind.HTTP),
    ("kube-system", "coredns", ServiceKind.DNS),
    ("shop", "cart", ServiceKind.IPERF3),
    ("default", "client", None),
)
_EXTRA_APPS = ("checkout", "catalog", "payments", "loadgen")
_SERVICE_PORTS = {ServiceKind.HTTP: 80, ServiceKind.DNS: 53, ServiceKind.IPERF3: 5201}
# Kubernetes' rand.SafeEncodeString alphabet: no vowels, no look-alikes.
_K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,22}[a-z0-9])?$")


def validate_name(name: str) -> str:
    """A lab name becomes part of netns and file names: lowercase, digits, dashes, <= 24 chars."""
    if not _NAME_RE.fullmatch(name):
        raise LabError(
            f"invalid lab name {name!r}: use 1-24 lowercase letters, digits or dashes "
            "(not starting or ending with a dash)"
        )
    return name


def validate_pods(pods: int) -> int:
    if not MIN_PODS <= pods <= MAX_PODS:
        raise LabError(f"--pods must be between {MIN_PODS} and {MAX_PODS}, got {pods}")
    return pods


def default_run_dir(name: str) -> Path:
    return DEFAULT_RUN_ROOT / f"lab-{name}"


def node_netns(name: str) -> str:
    return f"ms-{name}-node"


def collector_netns(name: str) -> str:
    return f"ms-{name}-collector"


def plan_collector(name: str) -> LabCollector:
    """Where a lab's remote mirrors go: ``br-phy`` on the node, a veth to the collector netns."""
    net = ipaddress.ip_network(COLLECTOR_CIDR)
    return LabCollector(
        netns=collector_netns(name),
        node_veth="coll0",
        collector_veth="eth0",
        bridge="br-phy",
        node_ip=str(net[1]),
        collector_ip=str(net[2]),
        prefixlen=net.prefixlen,
        mtu=COLLECTOR_MTU,
    )


def _k8s_suffix(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(_K8S_ALPHABET) for _ in range(length))


def _role(index: int) -> tuple[str, str, ServiceKind | None]:
    if index < len(_ROLES):
        return _ROLES[index]
    namespace = "default" if index % 2 == 0 else "shop"
    return namespace, _EXTRA_APPS[index % len(_EXTRA_APPS)], None


def _plan_pod(
    lab: str, index: int, app_ns: str, app: str, rng: random.Random, *, first: int
) -> LabPod:
    # A Deployment's pod: <app>-<replicaset hash>-<5 chars>, as kubectl shows them.
    pod_name = f"{app}-{_k8s_suffix(rng, 9)}-{_k8s_suffix(rng, 5)}"
    v4 = ipaddress.ip_network(POD_CIDR_V4)[first + index]
    v6 = ipaddress.ip_network(POD_CIDR_V6)[first + index]
    # Kube-OVN allocates pod MACs under 00:00:00; the rest is random.
    mac = "00:00:00:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(3))
    container_id = f"{rng.getrandbits(48):012x}"
    return LabPod(
        namespace=app_ns,
        name=pod_name,
        netns=f"ms-{lab}-{app_ns}-{pod_name}",
        ipv4=str(v4),
        ipv6=str(v6),
        mac=mac,
        host_veth=f"{container_id}_h",
    )


def plan_lab(
    name: str,
    run_dir: Path,
    pods: int,
    kube_ovn_mirror: KubeOvnMirror,
    rng: random.Random,
    *,
    created_run_dir: bool,
    node_index: int = 0,
    collector: bool = False,
) -> LabState:
    """Decide every name and address of a lab. Nothing is created here.

    ``node_index`` numbers the nodes of a multi-node lab sharing one pod subnet over a tunnel:
    node N's pods and its ``ovn0`` get addresses no other node of that lab uses. ``collector``
    adds a namespace that receives remote (GRE/ERSPAN) mirrors.
    """
    validate_name(name)
    validate_pods(pods)
    if not 0 <= node_index < MAX_NODES:
        raise LabError(f"node index must be between 0 and {MAX_NODES - 1}, got {node_index}")
    first = FIRST_HOST + node_index * MAX_PODS
    planned: list[LabPod] = []
    services: list[LabService] = []
    for index in range(pods):
        app_ns, app, kind = _role(index)
        pod = _plan_pod(name, index, app_ns, app, rng, first=first)
        planned.append(pod)
        if kind is not None:
            services.append(LabService(kind=kind, pod=pod, port=_SERVICE_PORTS[kind]))
    # With fewer pods than service roles, the first pod also runs the remaining services.
    for kind in ServiceKind:
        if not any(s.kind is kind for s in services):
            services.append(LabService(kind=kind, pod=planned[0], port=_SERVICE_PORTS[kind]))
    join = ipaddress.ip_network(JOIN_CIDR)
    return LabState(
        name=name,
        run_dir=run_dir,
        node_netns=node_netns(name),
        ovsdb=f"unix:{run_dir}/db.sock",
        bridge=BRIDGE,
        node_port=LabNodePort(
            name=NODE_PORT,
            node_name=name,
            ipv4=str(join[1 + node_index]),
            prefixlen=join.prefixlen,
        ),
        pods=tuple(planned),
        services=tuple(services),
        kube_ovn_mirror=kube_ovn_mirror,
        pod_cidr_v4=POD_CIDR_V4,
        pod_cidr_v6=POD_CIDR_V6,
        join_cidr=JOIN_CIDR,
        created_run_dir=created_run_dir,
        collector=plan_collector(name) if collector else None,
    )


def interface_external_ids(pod: LabPod) -> dict[str, str]:
    """The ``external_ids`` kube-ovn-cni writes on a pod's Interface row."""
    return {
        "iface-id": pod.iface_id,
        "vendor": "kube-ovn",
        "pod_name": pod.name,
        "pod_namespace": pod.namespace,
        "pod_netns": pod.netns_path,
        "ip": f"{pod.ipv4},{pod.ipv6}",
        "ovn-installed": "true",
    }


def node_port_external_ids(port: LabNodePort) -> dict[str, str]:
    """The ``external_ids`` kube-ovn-cni writes on the node's ``ovn0`` Interface row."""
    return {"iface-id": port.iface_id, "ip": port.ipv4}
