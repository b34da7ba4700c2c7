"""Planning a lab: names, addresses and roles, decided from a seed without touching the system."""

from __future__ import annotations

import ipaddress
import random
import re
from pathlib import Path

import pytest

from mirrorctl.lab import LabError
from mirrorctl.lab._plan import (
    interface_external_ids,
    node_port_external_ids,
    plan_lab,
    validate_name,
)
from mirrorctl.lab._state import KubeOvnMirror, LabState, ServiceKind


def plan(pods: int = 4, seed: int = 1, name: str = "lab") -> LabState:
    return plan_lab(
        name,
        Path(f"/run/mirrorscope/lab-{name}"),
        pods,
        KubeOvnMirror.NONE,
        random.Random(seed),
        created_run_dir=True,
    )


def test_same_seed_gives_the_same_plan() -> None:
    """A plan is a pure function of name, size and random source."""
    assert plan(seed=7) == plan(seed=7)
    assert plan(seed=7) != plan(seed=8)


def test_pods_are_named_like_kubernetes_deployment_pods() -> None:
    """Pod names are <app>-<9 safe chars>-<5 safe chars>, as a ReplicaSet names them."""
    for pod in plan(pods=8).pods:
        assert re.fullmatch(
            r"[a-z]+-[bcdfghjklmnpqrstvwxz2456789]{9}-[bcdfghjklmnpqrstvwxz2456789]{5}", pod.name
        )


def test_host_veths_are_12_hex_plus_h_and_fit_ifnamsiz() -> None:
    """Host veths look like Kube-OVN's <containerID[0:12]>_h and stay within 15 characters."""
    state = plan(pods=16)
    names = [p.host_veth for p in state.pods]
    assert all(re.fullmatch(r"[0-9a-f]{12}_h", n) for n in names)
    assert len(set(names)) == len(names)


def test_addresses_are_unique_and_inside_the_pod_prefixes() -> None:
    """Each pod gets its own IPv4 in 10.16.0.0/16 and IPv6 in fd00:10:16::/64, from .10 / ::a."""
    state = plan(pods=64)
    v4 = [ipaddress.ip_address(p.ipv4) for p in state.pods]
    v6 = [ipaddress.ip_address(p.ipv6) for p in state.pods]
    assert len(set(v4)) == 64
    assert len(set(v6)) == 64
    assert all(a in ipaddress.ip_network("10.16.0.0/16") for a in v4)
    assert all(a in ipaddress.ip_network("fd00:10:16::/64") for a in v6)
    assert str(v4[0]) == "10.16.0.10"
    assert str(v6[0]) == "fd00:10:16::a"


def test_pods_span_several_namespaces_and_netns_names_are_unique() -> None:
    """Pods spread over >= 2 Kubernetes namespaces; netns names are distinct and lab-prefixed."""
    state = plan(pods=4, name="abc")
    assert len({p.namespace for p in state.pods}) >= 2
    netns = [p.netns for p in state.pods] + [state.node_netns]
    assert len(set(netns)) == len(netns)
    assert all(n.startswith("ms-abc-") for n in netns)


def test_each_service_runs_in_its_own_pod_with_three_or_more_pods() -> None:
    """With 3+ pods, HTTP, DNS and iperf3 each run in a different pod, on their usual ports."""
    state = plan(pods=3)
    pods = {s.kind: s.pod for s in state.services}
    assert len(set(pods.values())) == 3
    assert {s.kind: s.port for s in state.services} == {
        ServiceKind.HTTP: 80,
        ServiceKind.DNS: 53,
        ServiceKind.IPERF3: 5201,
    }


def test_two_pods_still_get_every_service() -> None:
    """The smallest lab still runs all three services (some share a pod)."""
    assert {s.kind for s in plan(pods=2).services} == set(ServiceKind)


@pytest.mark.parametrize("pods", [0, 1, 65, -3])
def test_pod_count_out_of_range_is_a_lab_error(pods: int) -> None:
    """A pod count outside 2..64 is refused with a message naming the range."""
    with pytest.raises(LabError, match="between 2 and 64"):
        plan(pods=pods)


@pytest.mark.parametrize("name", ["", "Lab", "a_b", "-a", "a-", "x" * 25, "a/b", "a b"])
def test_unsafe_lab_names_are_refused(name: str) -> None:
    """Lab names end up in netns and file names: anything but [a-z0-9-] is refused."""
    with pytest.raises(LabError, match="invalid lab name"):
        validate_name(name)


def test_interface_external_ids_are_kube_ovns_layout() -> None:
    """A pod's Interface external_ids carry exactly the keys kube-ovn-cni writes."""
    pod = plan().pods[0]
    assert interface_external_ids(pod) == {
        "iface-id": f"{pod.name}.{pod.namespace}",
        "vendor": "kube-ovn",
        "pod_name": pod.name,
        "pod_namespace": pod.namespace,
        "pod_netns": f"/var/run/netns/{pod.netns}",
        "ip": f"{pod.ipv4},{pod.ipv6}",
        "ovn-installed": "true",
    }


def test_node_port_is_ovn0_in_the_join_subnet() -> None:
    """The node port is ovn0 with iface-id node-<name> and the first join IP, 100.64.0.1."""
    state = plan(name="n1")
    assert state.node_port.name == "ovn0"
    assert node_port_external_ids(state.node_port) == {"iface-id": "node-n1", "ip": "100.64.0.1"}
    assert state.ovsdb == "unix:/run/mirrorscope/lab-n1/db.sock"
    assert state.env() == {"MIRRORSCOPE_OVSDB": state.ovsdb, "MIRRORSCOPE_NETNS": "ms-n1-node"}


def test_nodes_of_one_lab_never_share_an_address() -> None:
    """Node N's pods and ovn0 get addresses no other node has, inside the same prefixes."""
    states = [
        plan_lab(
            f"n{i}",
            Path(f"/run/mirrorscope/lab-n{i}"),
            64,
            KubeOvnMirror.NONE,
            random.Random(i),
            created_run_dir=True,
            node_index=i,
        )
        for i in range(4)
    ]
    pods = [p.ipv4 for s in states for p in s.pods] + [p.ipv6 for s in states for p in s.pods]
    assert len(set(pods)) == len(pods) == 4 * 64 * 2
    assert [s.node_port.ipv4 for s in states] == [
        "100.64.0.1",
        "100.64.0.2",
        "100.64.0.3",
        "100.64.0.4",
    ]
    assert all(
        ipaddress.ip_address(p.ipv4) in ipaddress.ip_network("10.16.0.0/16") for p in states[3].pods
    )


def test_a_node_index_beyond_the_bound_is_refused() -> None:
    """A node index outside 0..3 is a LabError naming the bound, not an overlapping plan."""
    with pytest.raises(LabError, match="between 0 and 3"):
        plan_lab("x", Path("/tmp/x"), 2, KubeOvnMirror.NONE, random.Random(0),
                 created_run_dir=True, node_index=4)  # fmt: skip
