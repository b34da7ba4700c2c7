"""The local lab: a Kube-OVN-like node in network namespaces, on a private Open vSwitch.

``up`` first writes the plan (the state file), then makes each piece exist; every step checks
before it creates, so ``up`` is idempotent and finishes a half-built lab. ``down`` removes what
the plan names and nothing else, whatever state the lab is in.
"""

from __future__ import annotations

import errno
import logging
import os
import random
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from mirrorctl.lab import _collector, _namespaces, _ovs_daemons, _ovsdb, _services, _status
from mirrorctl.lab._errors import LabError
from mirrorctl.lab._plan import (
    collector_netns,
    default_run_dir,
    node_netns,
    plan_lab,
    validate_name,
    validate_pods,
)
from mirrorctl.lab._state import (
    KubeOvnMirror,
    LabPod,
    LabState,
    read_state,
    state_path,
    write_state,
)

log = logging.getLogger(__name__)

READY_TIMEOUT = 10.0
_REQUIRED = ("ovsdb-server", "ovs-vswitchd", "ovsdb-tool")


def pod_exec(pod: LabPod, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """Run ``argv`` inside ``pod``'s network namespace; ``kwargs`` go to :func:`subprocess.run`."""
    return _namespaces.netns_exec(pod.netns, argv, **kwargs)


def node_exec(
    state: LabState, argv: Sequence[str], **kwargs: Any
) -> subprocess.CompletedProcess[Any]:
    """Run ``argv`` inside the lab node's namespace, where br-int, ovn0 and mirror0 live."""
    return _namespaces.netns_exec(state.node_netns, argv, **kwargs)


def _ignore_exists(exc: NetlinkError) -> None:
    if exc.code != errno.EEXIST:
        raise exc


class Lab:
    """A lab named ``name``; its files live in ``run_dir`` (default /run/mirrorscope/lab-NAME)."""

    def __init__(
        self,
        name: str = "lab",
        run_dir: Path | None = None,
        pods: int = 4,
        kube_ovn_mirror: KubeOvnMirror | str = KubeOvnMirror.NONE,
        rng: random.Random | None = None,
        *,
        node_index: int = 0,
        collector: bool = False,
    ) -> None:
        """``collector``: also a namespace that receives remote mirrors (GRE/ERSPAN) over
        ``br-phy``; see :func:`remote_mirror`."""
        self.name = validate_name(name)
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir(name)
        self.pods = validate_pods(pods)
        try:
            self.kube_ovn_mirror = KubeOvnMirror(kube_ovn_mirror)
        except ValueError as exc:
            choices = ", ".join(m.value for m in KubeOvnMirror)
            raise LabError(f"--kube-ovn-mirror must be one of {choices}") from exc
        self._rng = rng if rng is not None else random.SystemRandom()
        self.node_index = node_index
        self.collector = collector

    @classmethod
    def of(cls, state: LabState) -> Lab:
        """The Lab that manages an existing ``state`` (e.g. to bring it down)."""
        return cls(
            state.name,
            state.run_dir,
            pods=len(state.pods),
            kube_ovn_mirror=state.kube_ovn_mirror,
            collector=state.collector is not None,
        )

    def state(self) -> LabState | None:
        """The lab's state file, or None when the lab is down."""
        return read_state(self.run_dir)

    def status(self) -> _status.LabStatus | None:
        """Check every piece of the lab; None when the lab is down (no state file)."""
        state = self.state()
        return _status.check(state) if state is not None else None

    def pod_exec(
        self, pod: LabPod, argv: Sequence[str], **kwargs: Any
    ) -> subprocess.CompletedProcess[Any]:
        """Run ``argv`` inside ``pod``; see :func:`pod_exec`."""
        return pod_exec(pod, argv, **kwargs)

    # ---- up -------------------------------------------------------------------------------

    def up(self) -> LabState:
        """Create whatever of the lab is missing and return its state."""
        _require_root()
        _require_binaries()
        state = self._plan()
        try:
            self._build(state)
        except NetlinkError as exc:
            raise LabError(
                f"netlink error building lab {self.name}: {exc}; run `{self._down_cmd()}` and retry"
            ) from exc
        except OSError as exc:
            raise LabError(
                f"building lab {self.name} failed: {exc}; run `{self._down_cmd()}` and retry"
            ) from exc
        log.info("lab %s is up: %d pods, OVSDB %s", state.name, len(state.pods), state.ovsdb)
        return state

    def _down_cmd(self) -> str:
        cmd = f"mirrorctl lab down --name {self.name}"
        if self.run_dir != default_run_dir(self.name):
            cmd += f" --run-dir {self.run_dir}"
        return cmd

    def _plan(self) -> LabState:
        existing = self.state()
        if existing is not None:
            has_collector = existing.collector is not None
            if (len(existing.pods), existing.kube_ovn_mirror, has_collector) != (
                self.pods,
                self.kube_ovn_mirror,
                self.collector,
            ):
                raise LabError(
                    f"lab {self.name} exists with {len(existing.pods)} pods, "
                    f"--kube-ovn-mirror {existing.kube_ovn_mirror} and "
                    f"{'a' if has_collector else 'no'} collector: run `{self._down_cmd()}` "
                    "first to change them"
                )
            return existing
        if _namespaces.exists(node_netns(self.name)):
            # Same name, other run dir: the two labs would share a node netns and its TAPs.
            raise LabError(
                f"a lab named {self.name} already runs (netns {node_netns(self.name)}) with "
                f"its state outside {self.run_dir}: pick another --name, or pass that lab's "
                "--run-dir"
            )
        created = not self.run_dir.exists()
        if not created and any(self.run_dir.iterdir()):
            # down removes what a lab writes here (www/, conf.db, logs): never in someone's dir.
            raise LabError(
                f"run dir {self.run_dir} exists and holds no lab: pass a new or empty directory"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state = plan_lab(
            self.name,
            self.run_dir,
            self.pods,
            self.kube_ovn_mirror,
            self._rng,
            created_run_dir=created,
            node_index=self.node_index,
            collector=self.collector,
        )
        # The plan is on disk before the first namespace exists: down can always find it all.
        write_state(state)
        return state

    def _build(self, state: LabState) -> None:
        _namespaces.create(state.node_netns)
        _ovs_daemons.start_ovsdb_server(state.run_dir, state.node_netns)
        with _ovsdb.connect(state.ovsdb) as api:
            with _ovsdb.ovsdb_errors(state.ovsdb, "creating the Open_vSwitch row"):
                _ovsdb.ensure_root_row(api)
            _ovs_daemons.start_vswitchd(state.run_dir, state.node_netns)
            replugged = [pod.host_veth for pod in state.pods if _plug_pod(state, pod)]
            with _ovsdb.ovsdb_errors(state.ovsdb, "configuring br-int and its ports"):
                # ovs-vswitchd keeps reading a deleted veth's old ifindex; a new port reopens it.
                _ovsdb.unplug(api, state, replugged)
                _ovsdb.configure(api, state)
                _wait_ofports(api, state)
        _configure_node(state)
        _collector.build(state)
        for service in state.services:
            _services.start(state, service)

    # ---- down -----------------------------------------------------------------------------

    def down(self) -> None:
        """Remove all the lab created: daemons, namespaces (with their links), files."""
        _require_root()
        state = self.state()
        _services.stop_all(self.run_dir)
        _ovs_daemons.stop_all(self.run_dir)
        if state is not None:
            for pod in state.pods:
                _namespaces.remove(pod.netns)
        # Also when the state file is gone: a collector netns holds no daemon, only a veth end.
        _namespaces.remove(
            state.collector.netns
            if state is not None and state.collector
            else collector_netns(self.name)
        )
        _namespaces.remove(state.node_netns if state is not None else node_netns(self.name))
        self._remove_files(state)
        log.info("lab %s is down", self.name)

    def _remove_files(self, state: LabState | None) -> None:
        if not self.run_dir.exists():
            return
        if state is not None and state.created_run_dir:
            shutil.rmtree(self.run_dir)
            return
        # The run dir was someone else's: take back only the files a lab writes.
        known = [
            *_ovs_daemons.files(self.run_dir),
            *_services.files(self.run_dir),
            *(d.pidfile for d in _services.daemons(self.run_dir)),
            state_path(self.run_dir),
            state_path(self.run_dir).with_suffix(".json.tmp"),
        ]
        for path in known:
            path.unlink(missing_ok=True)
        for directory in _services.dirs(self.run_dir):
            shutil.rmtree(directory, ignore_errors=True)


def _require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, Open vSwitch): run it as root")


def _require_binaries() -> None:
    for binary in _REQUIRED:
        if shutil.which(binary) is None:
            raise LabError(f"{binary} is not installed: run make bootstrap")
    _services.check_binaries()


def _plug_pod(state: LabState, pod: LabPod) -> bool:
    """Plug a pod as kube-ovn-cni does: a veth whose ``_h`` end is on the node, the other eth0.

    Returns True when the veth was (re)created, so its OVS port must be re-plugged too.
    """
    _namespaces.create(pod.netns)
    peer = pod.host_veth.removesuffix("_h") + "_c"
    with _namespaces.open_netns(pod.netns) as ipr:
        pod_side = _namespaces.link_index(ipr, "eth0") or _namespaces.link_index(ipr, peer)
    created = False
    with _namespaces.open_netns(state.node_netns) as node:
        stale = _namespaces.link_index(node, pod.host_veth)
        if stale is not None and pod_side is None:
            # The pod's netns was replaced; the kernel frees the old one (and this veth end)
            # asynchronously, so the host end can outlive its pod for a moment.
            node.link("del", index=stale)
            stale = None
        if stale is None:
            created = True
            node.link(
                "add",
                ifname=pod.host_veth,
                kind="veth",
                peer={"ifname": peer, "net_ns_fd": pod.netns},
            )
        host_index = _namespaces.link_index(node, pod.host_veth)
        node.link("set", index=host_index, state="up")
    _namespaces.tx_checksum_off(state.node_netns, pod.host_veth)
    with _namespaces.open_netns(pod.netns) as ipr:
        index = _namespaces.link_index(ipr, "eth0")
        if index is None:
            index = _namespaces.link_index(ipr, peer)
            if index is None:
                raise LabError(f"veth peer of {pod.host_veth} vanished from {pod.netns}")
            ipr.link("set", index=index, ifname="eth0", address=pod.mac)
        for address, prefixlen in ((pod.ipv4, 16), (pod.ipv6, 64)):
            try:
                # NODAD: the address works at once instead of after ~2 s of duplicate detection.
                ipr.addr(
                    "add",
                    index=index,
                    address=address,
                    prefixlen=prefixlen,
                    flags=_namespaces.IFA_F_NODAD,
                )
            except NetlinkError as exc:
                _ignore_exists(exc)
        ipr.link("set", index=index, state="up")
        try:
            # br-int is one flat L2 segment here, so the join subnet is simply on-link.
            ipr.route("add", dst=state.join_cidr, oif=index, scope=_namespaces.RT_SCOPE_LINK)
        except NetlinkError as exc:
            _ignore_exists(exc)
    _namespaces.tx_checksum_off(pod.netns, "eth0")
    return created


def _wait_ofports(api: Any, state: LabState) -> None:
    names = [state.node_port.name, *(p.host_veth for p in state.pods)]
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        ports = _ovsdb.ofports(api, names)
        missing = [n for n in names if ports.get(n, -1) <= 0]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise LabError(
                f"ovs-vswitchd did not attach {', '.join(missing)} within {READY_TIMEOUT:.0f} s: "
                f"see {state.run_dir}/ovs-vswitchd.log"
            )
        time.sleep(0.05)


def _wait_link(ipr: Any, ifname: str, netns: str) -> int:
    deadline = time.monotonic() + READY_TIMEOUT
    while (index := _namespaces.link_index(ipr, ifname)) is None:
        if time.monotonic() > deadline:
            raise LabError(f"ovs-vswitchd did not create {ifname} in {netns}")
        time.sleep(0.05)
    return index


def _configure_node(state: LabState) -> None:
    """Address ovn0 in the join subnet, route the pod subnet through it, bring the TAPs up."""
    node = state.node_port
    with _namespaces.open_netns(state.node_netns) as ipr:
        index = _wait_link(ipr, node.name, state.node_netns)
        try:
            ipr.addr("add", index=index, address=node.ipv4, prefixlen=node.prefixlen)
        except NetlinkError as exc:
            _ignore_exists(exc)
        ipr.link("set", index=index, state="up")
        try:
            ipr.route("add", dst=state.pod_cidr_v4, oif=index, scope=_namespaces.RT_SCOPE_LINK)
        except NetlinkError as exc:
            _ignore_exists(exc)
        if state.kube_ovn_mirror is not KubeOvnMirror.NONE:
            # kube-ovn-cni brings mirror0 up so tcpdump on the host sees the copies.
            mirror = _wait_link(ipr, _ovsdb.KUBE_OVN_MIRROR_PORT, state.node_netns)
            ipr.link("set", index=mirror, state="up")
