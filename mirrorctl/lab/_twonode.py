"""Two lab nodes on one machine: two private Open vSwitches joined by Geneve over a veth underlay.

Each node is an ordinary :class:`Lab` (its own namespace, OVSDB, ovs-vswitchd, pods and
services) planned with its own node index, so the pods of both share 10.16.0.0/16 without
sharing an address. Joining them follows the tested recipe (shared/reference/two-node-lab.md):
one veth pair ``ul0`` straight between the node namespaces, on each node a ``br-phy`` (netdev)
holding ``ul0`` with the node's underlay address on its internal port, and a ``geneve`` port on
``br-int``. Its pitfalls are handled here: ``arp_ignore=1`` (else the kernel answers ARP for
br-phy's address with ul0's MAC and the tunnel goes dark), TX checksum offload off, pod MTU 1400
for the Geneve overhead, links up before they become ports.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from pathlib import Path
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from mirrorctl.lab import _namespaces, _ovsdb
from mirrorctl.lab._errors import LabError
from mirrorctl.lab._lab import Lab
from mirrorctl.lab._plan import DEFAULT_RUN_ROOT, validate_name
from mirrorctl.lab._state import KubeOvnMirror, LabState

log = logging.getLogger(__name__)

UNDERLAY_CIDR = "172.31.255.0/30"
UNDERLAY_IF = "ul0"
PHYS_BRIDGE = "br-phy"
TUNNEL_PORT = "genev0"
TUNNEL_KEY = "100"
POD_MTU = 1400  # 1500 underlay minus Geneve's outer headers
_READY_TIMEOUT = 10.0


class TwoNodeLab:
    """Lab nodes ``NAME-n1`` and ``NAME-n2`` joined by a tunnel; files under ``run_root``."""

    def __init__(
        self,
        name: str = "lab",
        run_root: Path | None = None,
        pods: tuple[int, int] = (4, 2),
        kube_ovn_mirror: KubeOvnMirror | str = KubeOvnMirror.NONE,
    ) -> None:
        validate_name(f"{name}-n1")
        root = run_root if run_root is not None else DEFAULT_RUN_ROOT
        self.name = name
        self.nodes = tuple(
            Lab(
                f"{name}-n{i + 1}",
                root / f"lab-{name}-n{i + 1}",
                pods=pods[i],
                kube_ovn_mirror=kube_ovn_mirror if i == 0 else KubeOvnMirror.NONE,
                node_index=i,
            )
            for i in range(2)
        )

    @staticmethod
    def underlay_ip(index: int) -> str:
        """Node ``index``'s address on the underlay (on its br-phy): what node-node traffic uses."""
        return str(ipaddress.ip_network(UNDERLAY_CIDR)[1 + index])

    def up(self) -> tuple[LabState, LabState]:
        """Bring both nodes up and join them; idempotent like :meth:`Lab.up`."""
        first, second = (lab.up() for lab in self.nodes)
        try:
            _underlay_link(first, second)
            for index, state in enumerate((first, second)):
                _join(state, index, self.underlay_ip(1 - index))
        except NetlinkError as exc:
            raise LabError(f"netlink error joining the nodes of lab {self.name}: {exc}") from exc
        log.info("two-node lab %s is up: Geneve %s", self.name, UNDERLAY_CIDR)
        return first, second

    def down(self) -> None:
        """Remove both nodes; the underlay veth goes with their namespaces."""
        for lab in reversed(self.nodes):
            lab.down()


def _underlay_link(first: LabState, second: LabState) -> None:
    with _namespaces.open_netns(first.node_netns) as ipr:
        if _namespaces.link_index(ipr, UNDERLAY_IF) is None:
            ipr.link(
                "add",
                ifname=UNDERLAY_IF,
                kind="veth",
                peer={"ifname": UNDERLAY_IF, "net_ns_fd": second.node_netns},
            )


def _join(state: LabState, index: int, remote_ip: str) -> None:
    netns = state.node_netns
    result = _namespaces.netns_exec(
        netns,
        ["sysctl", "-q", "-w", "net.ipv4.conf.all.arp_ignore=1"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise LabError(f"setting arp_ignore in {netns} failed: {result.stderr.strip()}")
    with _namespaces.open_netns(netns) as ipr:
        ipr.link("set", index=_namespaces.link_index(ipr, UNDERLAY_IF), state="up")
    _namespaces.tx_checksum_off(netns, UNDERLAY_IF)
    for pod in state.pods:
        with _namespaces.open_netns(pod.netns) as ipr:
            ipr.link("set", index=_namespaces.link_index(ipr, "eth0"), mtu=POD_MTU)
    local_ip = TwoNodeLab.underlay_ip(index)
    what = "adding br-phy and the Geneve port"
    with _ovsdb.connect(state.ovsdb) as api, _ovsdb.ovsdb_errors(state.ovsdb, what):
        _configure_tunnel(api, state, local_ip, remote_ip)
    net = ipaddress.ip_network(UNDERLAY_CIDR)
    with _namespaces.open_netns(netns) as ipr:
        phys = _wait_link(ipr, PHYS_BRIDGE, netns)
        try:
            ipr.addr("add", index=phys, address=local_ip, prefixlen=net.prefixlen)
        except NetlinkError as exc:
            if exc.code != 17:  # EEXIST: up is idempotent
                raise
        ipr.link("set", index=phys, state="up")


def _configure_tunnel(api: Any, state: LabState, local_ip: str, remote_ip: str) -> None:
    with api.transaction(check_error=True) as txn:
        txn.add(api.add_br(PHYS_BRIDGE, may_exist=True, datapath_type="netdev"))
        txn.add(api.add_port(PHYS_BRIDGE, UNDERLAY_IF, may_exist=True))
        txn.add(api.add_port(state.bridge, TUNNEL_PORT, may_exist=True))
        txn.add(
            api.db_set(
                "Interface",
                TUNNEL_PORT,
                ("type", "geneve"),
                ("options", {"remote_ip": remote_ip, "local_ip": local_ip, "key": TUNNEL_KEY}),
            )
        )


def _wait_link(ipr: Any, ifname: str, netns: str) -> int:
    deadline = time.monotonic() + _READY_TIMEOUT
    while (index := _namespaces.link_index(ipr, ifname)) is None:
        if time.monotonic() > deadline:
            raise LabError(f"ovs-vswitchd did not create {ifname} in {netns}")
        time.sleep(0.05)
    return index
