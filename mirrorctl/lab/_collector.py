"""A remote-mirror collector beside the lab node: what receives GRE and ERSPAN mirrors.

The layout is OVS's "userspace tunneling" recipe: a netdev bridge ``br-phy`` holds the node's
end of a veth and, on its internal port, the tunnel's source address; the other veth end is in
the collector's namespace. ovs-vswitchd learns the route from its namespace's kernel table and
the collector's MAC by snooping the ARP reply to ``br-phy``. Pitfalls handled as in the
two-node lab: ``arp_ignore=1`` on the node (else the kernel answers ARP for br-phy's address from
the veth and OVS learns the wrong MAC), TX checksum offload off, links up before they are ports.
"""

from __future__ import annotations

import logging
import subprocess
import time

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from mirrorctl.lab import _namespaces, _ovs_daemons, _ovsdb
from mirrorctl.lab._errors import LabError
from mirrorctl.lab._state import LabCollector, LabState, RemoteMirror
from mirrorctl.ovs import MirrorSpec, ReconcileReport, TunnelKind, TunnelSpec, connect, reconcile

log = logging.getLogger(__name__)

READY_TIMEOUT = 10.0
TUNNEL_KEY = 100  # the GRE key, or the ERSPAN session id (10 bits)
ERSPAN_INDEX = 1
ERSPAN_HWID = 1
_EEXIST = 17
_ENOENT = 2


def tunnel_to(collector: LabCollector, kind: RemoteMirror | str) -> TunnelSpec:
    """The tunnel a lab's remote mirror of ``kind`` uses to reach ``collector``."""
    kind = RemoteMirror(kind)
    if kind is RemoteMirror.GRE:
        return TunnelSpec(TunnelKind.GRE, collector.collector_ip, TUNNEL_KEY)
    if kind is RemoteMirror.ERSPAN1:
        return TunnelSpec(
            TunnelKind.ERSPAN, collector.collector_ip, TUNNEL_KEY, erspan_idx=ERSPAN_INDEX
        )
    return TunnelSpec(
        TunnelKind.ERSPAN, collector.collector_ip, TUNNEL_KEY, erspan_ver=2, erspan_hwid=ERSPAN_HWID
    )


def _sysctl(netns: str, setting: str) -> None:
    result = _namespaces.netns_exec(
        netns, ["sysctl", "-q", "-w", setting], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise LabError(f"sysctl {setting} in {netns} failed: {result.stderr.strip()}")


def _address(ipr: IPRoute, index: int, address: str, prefixlen: int) -> None:
    try:
        ipr.addr(
            "add", index=index, address=address, prefixlen=prefixlen, flags=_namespaces.IFA_F_NODAD
        )
    except NetlinkError as exc:
        if exc.code != _EEXIST:  # up is idempotent
            raise


def build(state: LabState) -> None:
    """Create the collector namespace, its veth, br-phy and the addresses; idempotent."""
    coll = state.collector
    if coll is None:
        return
    created = _namespaces.create(coll.netns)
    if created:
        # Router solicitations would only add noise to what the collector captures.
        _sysctl(coll.netns, "net.ipv6.conf.all.disable_ipv6=1")
    _sysctl(state.node_netns, "net.ipv4.conf.all.arp_ignore=1")
    with _namespaces.open_netns(state.node_netns) as node:
        if _namespaces.link_index(node, coll.node_veth) is None:
            node.link(
                "add",
                ifname=coll.node_veth,
                kind="veth",
                peer={"ifname": coll.collector_veth, "net_ns_fd": coll.netns},
            )
        index = _namespaces.link_index(node, coll.node_veth)
        node.link("set", index=index, mtu=coll.mtu, state="up")
    _sysctl(state.node_netns, f"net.ipv6.conf.{coll.node_veth}.disable_ipv6=1")
    _namespaces.tx_checksum_off(state.node_netns, coll.node_veth)
    with _namespaces.open_netns(coll.netns) as ipr:
        index = _namespaces.link_index(ipr, coll.collector_veth)
        if index is None:
            raise LabError(f"veth peer of {coll.node_veth} vanished from {coll.netns}")
        _address(ipr, index, coll.collector_ip, coll.prefixlen)
        ipr.link("set", index=index, mtu=coll.mtu, state="up")
    _namespaces.tx_checksum_off(coll.netns, coll.collector_veth)
    with (
        _ovsdb.connect(state.ovsdb) as api,
        _ovsdb.ovsdb_errors(state.ovsdb, f"adding {coll.bridge} and {coll.node_veth}"),
        api.transaction(check_error=True) as txn,
    ):
        txn.add(api.add_br(coll.bridge, may_exist=True, datapath_type="netdev"))
        txn.add(api.add_port(coll.bridge, coll.node_veth, may_exist=True))
    with _namespaces.open_netns(state.node_netns) as node:
        index = _wait_link(node, coll.bridge, state.node_netns)
        _address(node, index, coll.node_ip, coll.prefixlen)
        node.link("set", index=index, mtu=coll.mtu, state="up")
    _sysctl(state.node_netns, f"net.ipv6.conf.{coll.bridge}.disable_ipv6=1")


def _wait_link(ipr: IPRoute, ifname: str, netns: str) -> int:
    deadline = time.monotonic() + READY_TIMEOUT
    while (index := _namespaces.link_index(ipr, ifname)) is None:
        if time.monotonic() > deadline:
            raise LabError(f"ovs-vswitchd did not create {ifname} in {netns}")
        time.sleep(0.05)
    return index


def learn_collector(state: LabState) -> None:
    """Make the node ARP for the collector until OVS's tunnel neighbour table has its MAC.

    Until then ovs-vswitchd drops the encapsulated copies (sending an ARP request of its own),
    so a capture started right after the mirror would miss its first packets. OVS snoops ARP
    replies to br-phy only while a tunnel port exists: call this after the tunnel port is made.
    """
    coll = state.collector
    if coll is None:
        raise LabError(f"lab {state.name} has no collector: bring it up with --collector")
    ctl = _ovs_daemons.ctl_path(state.run_dir, _ovs_daemons.OVS_VSWITCHD)
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        # A neighbour the kernel already knows is not asked for again: no reply to snoop.
        with _namespaces.open_netns(state.node_netns) as node:
            index = _namespaces.link_index(node, coll.bridge)
            if index is not None:
                try:
                    node.neigh("del", dst=coll.collector_ip, ifindex=index)
                except NetlinkError as exc:
                    if exc.code != _ENOENT:
                        raise
        _namespaces.netns_exec(
            state.node_netns,
            ["ping", "-c", "1", "-W", "1", coll.collector_ip],
            capture_output=True,
            check=False,
        )
        shown = subprocess.run(
            ["ovs-appctl", f"--target={ctl}", "tnl/neigh/show"],
            capture_output=True,
            text=True,
            check=False,
        )
        if any(line.split()[:1] == [coll.collector_ip] for line in shown.stdout.splitlines()):
            return
        if time.monotonic() > deadline:
            raise LabError(
                f"ovs-vswitchd did not learn the collector {coll.collector_ip} on {coll.bridge} "
                f"within {READY_TIMEOUT:.0f} s: see {state.run_dir}/ovs-vswitchd.log"
            )
        time.sleep(0.1)


def remote_mirror(state: LabState, kind: RemoteMirror | str) -> ReconcileReport:
    """Mirror all of br-int into a ``kind`` tunnel to the lab's collector, via mirrorctl, and
    wait until OVS can reach the collector."""
    if state.collector is None:
        raise LabError(f"lab {state.name} has no collector: bring it up with --collector")
    tunnel = tunnel_to(state.collector, kind)
    with connect(state.ovsdb) as session:
        report = reconcile(
            session,
            MirrorSpec(select_all=True),
            bridge=state.bridge,
            output=tunnel.default_port,
            netns=state.node_netns,
            tunnel=tunnel,
        )
    learn_collector(state)
    return report
