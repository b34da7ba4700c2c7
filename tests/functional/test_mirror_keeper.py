"""The watch loop on a real lab: wipes by kube-ovn-cni, daemon restarts, pods that appear later."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from analyzers._identity import EndpointKind, IdentityMap
from mirrorctl import Lab, LabState
from mirrorctl.cli import main
from mirrorctl.ovs._keeper import MirrorKeeper
from mirrorctl.ovs._links import link_state
from mirrorctl.ovs._pods import PodDirectory, PodRef
from mirrorctl.ovs._spec import MirrorSpec
from tests.functional._ovs import remove_mirrors_and_mirror0, vsctl
from tests.functional.test_mirror import capture_probes, marker, packet_socket

RESTORE_BUDGET = 2.0
OURS = "mirrorscope-mirror0"

# kube-ovn-cni's start-up transaction, verbatim (pod-level mode: m0 selects nothing).
KUBE_OVN_CNI_START = [
    "--may-exist", "add-port", "br-int", "mirror0",
    "--", "set", "interface", "mirror0", "type=internal",
    "--", "clear", "bridge", "br-int", "mirrors",
    "--", "--id=@mirror0", "get", "port", "mirror0",
    "--", "--id=@m", "create", "mirror", "name=m0", "output_port=@mirror0",
    "--", "add", "bridge", "br-int", "mirrors", "@m",
]  # fmt: skip


@pytest.fixture(scope="module")
def lab(lab_factory: Callable[..., LabState]) -> LabState:
    """A lab of this module's own: its tests restart ovs-vswitchd and ovsdb-server."""
    return lab_factory()


def mirror_names(state: LabState) -> set[str]:
    out = vsctl(state, "--bare", "--columns=name", "list", "Mirror")
    return {line for line in out.splitlines() if line}


def wait_for(predicate: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``predicate`` held; fails the test after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - start


@pytest.fixture
def keeper(lab: LabState) -> Iterator[Callable[[MirrorSpec], MirrorKeeper]]:
    """Starts a MirrorKeeper thread on the lab; stops it and removes every mirror afterwards."""
    threads: list[tuple[threading.Thread, threading.Event]] = []

    def start(spec: MirrorSpec) -> MirrorKeeper:
        k = MirrorKeeper(lab.ovsdb, spec, bridge=lab.bridge, netns=lab.node_netns)
        stop = threading.Event()
        thread = threading.Thread(target=k.run, args=(stop,), name="keeper", daemon=True)
        thread.start()
        threads.append((thread, stop))
        wait_for(lambda: OURS in mirror_names(lab), 5)
        return k

    yield start
    for thread, stop in threads:
        stop.set()
        thread.join(10)
        assert not thread.is_alive(), "keeper did not stop"
    remove_mirrors_and_mirror0(lab)


def _mirror0(state: LabState) -> socket.socket:
    return packet_socket(state.node_netns, "mirror0")


def test_keeper_restores_after_kube_ovn_cni_wipes_within_2s(
    lab: LabState, keeper: Callable[[MirrorSpec], MirrorKeeper]
) -> None:
    """kube-ovn-cni's start (clear mirrors, new m0) three times: ours back in < 2 s, m0 kept."""
    a, b = lab.pods[0], lab.pods[1]
    k = keeper(MirrorSpec(pods=frozenset({PodRef(a.namespace, a.name)})))
    times = []
    for _ in range(3):
        vsctl(lab, *KUBE_OVN_CNI_START)
        assert OURS not in mirror_names(lab)
        times.append(wait_for(lambda: OURS in mirror_names(lab), RESTORE_BUDGET))
        assert "m0" in mirror_names(lab)
    print(f"restore after wipe: {', '.join(f'{t * 1000:.0f} ms' for t in times)}")
    assert k.restores >= 3
    sock = _mirror0(lab)
    try:
        probe = marker("after-wipe")
        assert any(probe in f for f in capture_probes(sock, {probe: (b, a)}, {}))
    finally:
        sock.close()


def test_keeper_follows_pods_of_a_namespace_that_appear_later(
    lab: LabState, keeper: Callable[[MirrorSpec], MirrorKeeper]
) -> None:
    """watch --namespace NS selects, in both directions, a pod of NS plugged after it started."""
    namespace = f"late-{secrets.token_hex(3)}"
    keeper(MirrorSpec(namespaces=frozenset({namespace})))
    port = f"{secrets.token_hex(6)}_h"
    try:
        vsctl(
            lab,
            "add-port", lab.bridge, port,
            "--", "set", "Interface", port, "type=internal",
            f"external_ids:iface-id=newpod.{namespace}", "external_ids:pod_name=newpod",
            f"external_ids:pod_namespace={namespace}", "external_ids:vendor=kube-ovn",
        )  # fmt: skip
        port_uuid = vsctl(lab, "get", "Port", port, "_uuid")

        def selected() -> bool:
            src = vsctl(lab, "get", "Mirror", OURS, "select_src_port")
            dst = vsctl(lab, "get", "Mirror", OURS, "select_dst_port")
            return port_uuid in src and port_uuid in dst

        took = wait_for(selected, RESTORE_BUDGET)
        print(f"new pod selected after {took * 1000:.0f} ms")
    finally:
        vsctl(lab, "--if-exists", "del-port", port)


def _pid(state: LabState, daemon: str) -> int:
    return int(Path(state.run_dir, f"{daemon}.pid").read_text().strip())


def _kill(state: LabState, daemon: str) -> None:
    pid = _pid(state, daemon)
    os.kill(pid, signal.SIGTERM)

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, 10)


def test_keeper_brings_mirror0_back_up_after_ovs_vswitchd_restart(
    lab: LabState, keeper: Callable[[MirrorSpec], MirrorKeeper]
) -> None:
    """A restarted ovs-vswitchd recreates mirror0 down; the keeper raises it and frames flow."""
    a, b = lab.pods[0], lab.pods[1]
    keeper(MirrorSpec(select_all=True))
    _kill(lab, "ovs-vswitchd")
    Lab.of(lab).up()
    took = wait_for(
        lambda: (s := link_state("mirror0", lab.node_netns)) is not None and s.up, RESTORE_BUDGET
    )
    print(f"mirror0 up again {took * 1000:.0f} ms after ovs-vswitchd was back")
    sock = _mirror0(lab)
    try:
        probe = marker("after-vswitchd")
        assert any(probe in f for f in capture_probes(sock, {probe: (a, b)}, {}))
    finally:
        sock.close()


def test_keeper_survives_ovsdb_server_restart_and_says_it_retries(
    lab: LabState,
    keeper: Callable[[MirrorSpec], MirrorKeeper],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With ovsdb-server down the keeper logs its retries; once back, a wipe is undone in < 2 s."""
    keeper(MirrorSpec(select_all=True))
    with caplog.at_level(logging.WARNING, logger="mirrorctl.ovs._ovsdb"):
        _kill(lab, "ovsdb-server")
        time.sleep(1.0)
        Lab.of(lab).up()
        vsctl(lab, "--no-wait", "clear", "bridge", lab.bridge, "mirrors")
        took = wait_for(lambda: OURS in mirror_names(lab), RESTORE_BUDGET)
    print(f"restored {took * 1000:.0f} ms after ovsdb-server came back and was wiped")
    retries = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert retries
    assert retries[0].startswith(f"OVSDB at {lab.ovsdb} unreachable")
    assert "retrying in" in retries[0]


def test_watch_command_restores_a_wipe_and_stops_cleanly_on_sigterm(lab: LabState) -> None:
    """`mirrorctl watch --global` as a process restores a wipe and exits 0 on SIGTERM."""
    argv = [sys.executable, "-m", "mirrorctl.cli", "watch", "--global"]
    argv += ["--ovsdb", lab.ovsdb, "--netns", lab.node_netns]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: OURS in mirror_names(lab), 10)
        vsctl(lab, "clear", "bridge", lab.bridge, "mirrors")
        wait_for(lambda: OURS in mirror_names(lab), RESTORE_BUDGET)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        vsctl(lab, "--no-wait", "clear", "bridge", lab.bridge, "mirrors")
    assert proc.returncode == 0
    assert "keeping all traffic on br-int -> mirror0" in out
    assert "stopped; 2 change(s) applied" in out
    assert "Traceback" not in err


def test_pod_directory_follows_pods_as_they_come_and_go(lab: LabState) -> None:
    """The live directory maps lab pod and node IPs, and picks up a new pod port and its removal."""
    identity = IdentityMap()
    stop = threading.Event()
    thread = threading.Thread(target=PodDirectory(identity).run, args=(lab.ovsdb, stop))
    thread.start()
    port = f"{secrets.token_hex(6)}_h"
    try:
        pod = lab.pods[0]
        wait_for(lambda: identity.lookup(pod.ipv4).label == pod.label, 5)
        assert identity.lookup(pod.ipv6).label == pod.label
        assert identity.lookup(pod.ipv4).node == lab.node_port.node_name
        assert identity.lookup(lab.node_port.ipv4).kind is EndpointKind.NODE
        vsctl(
            lab,
            "add-port", lab.bridge, port,
            "--", "set", "Interface", port, "type=internal",
            "external_ids:iface-id=late.shop", "external_ids:pod_name=late",
            "external_ids:pod_namespace=shop", "external_ids:ip=10.16.99.9,fd00:10:16::99:9",
        )  # fmt: skip
        took = wait_for(lambda: identity.lookup("fd00:10:16::99:9").label == "shop/late", 2)
        print(f"new pod in the identity map after {took * 1000:.0f} ms")
        vsctl(lab, "del-port", port)
        wait_for(lambda: identity.lookup("10.16.99.9").kind is EndpointKind.EXTERNAL, 2)
    finally:
        stop.set()
        thread.join(10)
        vsctl(lab, "--if-exists", "del-port", port)
    assert not thread.is_alive()


def test_keeper_adopts_selection_changed_by_another_mirrorctl(
    lab: LabState,
    keeper: Callable[[MirrorSpec], MirrorKeeper],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """enable --pod B then disable --pod A while watch runs: the keeper keeps B and not A."""
    a, b = lab.pods[0], lab.pods[1]
    k = keeper(MirrorSpec(pods=frozenset({PodRef(a.namespace, a.name)})))
    where = ["--ovsdb", lab.ovsdb, "--netns", lab.node_netns]
    assert main(["enable", "--pod", b.label, *where]) == 0
    assert main(["disable", "--pod", a.label, *where]) == 0
    capsys.readouterr()
    b_port = vsctl(lab, "get", "Port", b.host_veth, "_uuid")
    wait_for(lambda: k.spec == MirrorSpec(pods=frozenset({PodRef(b.namespace, b.name)})), 2)
    vsctl(lab, "clear", "bridge", lab.bridge, "mirrors")
    wait_for(lambda: OURS in mirror_names(lab), RESTORE_BUDGET)
    assert vsctl(lab, "get", "Mirror", OURS, "select_src_port") == f"[{b_port}]"
