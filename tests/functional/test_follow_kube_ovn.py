"""Following Kube-OVN's m0 on a real lab: Kube-OVN's own OVSDB changes, made through ovsdbapp."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import pytest

from mirrorctl.lab import KubeOvnMirror, LabPod, LabState
from mirrorctl.ovs._follow import KubeOvnFollower
from mirrorctl.ovs._keeper import MirrorKeeper
from mirrorctl.ovs._ovsdb import OVSDBSession, Snapshot, connect
from mirrorctl.ovs._pods import PodRef, pod_ports
from tests.functional.test_mirror import capture_probes, marker, packet_socket
from tests.functional.test_mirror_keeper import wait_for

pytestmark = pytest.mark.root

OURS = "mirrorscope-mirror0"


@pytest.fixture(scope="module")
def lab(lab_factory: Callable[..., LabState]) -> LabState:
    """A node laid out by kube-ovn-cni in pod-level mode: m0 into mirror0, selecting nothing."""
    return lab_factory(kube_ovn_mirror=KubeOvnMirror.PODS)


@pytest.fixture
def kube_ovn(lab: LabState) -> Iterator[KubeOvn]:
    with connect(lab.ovsdb) as session:
        yield KubeOvn(lab, session)


class KubeOvn:
    """The OVSDB writes kube-ovn-cni makes, as ovsdbapp commands in one transaction each."""

    def __init__(self, lab: LabState, session: OVSDBSession) -> None:
        self.lab = lab
        self.session = session

    def port_of(self, pod: LabPod) -> UUID:
        snap = self.session.snapshot()
        return next(
            p.port_uuid for p in pod_ports(snap, self.lab.bridge) if str(p.pod) == pod.label
        )

    @staticmethod
    def pod_ref(pod: LabPod) -> PodRef:
        return PodRef(pod.namespace, pod.name)

    def annotate(self, pod: LabPod, on: bool = True) -> None:
        """`ovs-vsctl add|remove mirror m0 select_dst_port <port>` for the annotation."""
        api = self.session.api
        verb = api.db_add if on else api.db_remove
        with self.session.transaction() as txn:
            txn.add(verb("Mirror", "m0", "select_dst_port", self.port_of(pod)))

    def restart(self) -> None:
        """kube-ovn-cni's start: `clear bridge br-int mirrors` and a new m0 with no selection."""
        api = self.session.api
        port = api.db_get("Port", "mirror0", "_uuid").execute(check_error=True)
        with self.session.transaction() as txn:
            txn.add(api.db_clear("Bridge", self.lab.bridge, "mirrors"))
            mirror = txn.add(api.db_create("Mirror", name="m0", output_port=port))
            txn.add(api.db_add("Bridge", self.lab.bridge, "mirrors", mirror))

    def ours(self) -> tuple[frozenset[UUID], frozenset[UUID]] | None:
        """Our row's (select_src_port, select_dst_port), or None when it is not on the bridge."""
        snap: Snapshot = self.session.snapshot()
        br = snap.bridges[self.lab.bridge]
        for u in br.mirrors:
            m = snap.mirrors.get(u)
            if m is not None and m.name == OURS:
                return m.select_src_port, m.select_dst_port
        return None

    def selects(self, *pods: LabPod) -> Callable[[], bool]:
        ports = frozenset(self.port_of(p) for p in pods)
        return lambda: self.ours() == ((ports, ports) if ports else None)


@pytest.fixture
def follower(lab: LabState, kube_ovn: KubeOvn) -> Iterator[Callable[[float], MirrorKeeper]]:
    """Runs a keeper following m0; afterwards stops it and leaves m0 empty, ours gone."""
    running: list[tuple[threading.Thread, threading.Event]] = []

    def start(grace_s: float) -> MirrorKeeper:
        source = KubeOvnFollower(bridge=lab.bridge, grace_s=grace_s)
        keeper = MirrorKeeper(lab.ovsdb, source, bridge=lab.bridge, netns=lab.node_netns)
        stop = threading.Event()
        thread = threading.Thread(target=keeper.run, args=(stop,), name="follow", daemon=True)
        thread.start()
        running.append((thread, stop))
        return keeper

    yield start
    for thread, stop in running:
        stop.set()
        thread.join(5)
    kube_ovn.restart()
    api: Any = kube_ovn.session.api
    with kube_ovn.session.transaction() as txn:
        for u in kube_ovn.session.snapshot().bridges[lab.bridge].mirrors:
            if kube_ovn.session.snapshot().mirrors[u].name == OURS:
                txn.add(api.db_remove("Bridge", lab.bridge, "mirrors", u))


def test_annotated_pods_are_mirrored_both_ways_and_followed(
    lab: LabState, kube_ovn: KubeOvn, follower: Callable[[float], MirrorKeeper]
) -> None:
    """Adding a pod to m0 mirrors it both ways (A→B, which m0 alone misses); removing it stops."""
    a, b, c, d = lab.pods[:4]
    follower(60)
    kube_ovn.annotate(a)
    wait_for(kube_ovn.selects(a), 5)
    kube_ovn.annotate(c)
    wait_for(kube_ovn.selects(a, c), 5)
    out, unwanted = marker("a-to-b"), marker("b-to-d")
    frames = capture_probes(
        packet_socket(lab.node_netns, "mirror0"), {out: (a, b)}, {unwanted: (b, d)}
    )
    assert not any(unwanted in f for f in frames)
    kube_ovn.annotate(a, on=False)
    wait_for(kube_ovn.selects(c), 5)
    kube_ovn.annotate(c, on=False)
    wait_for(kube_ovn.selects(), 5)


def test_kube_ovn_cni_restart_keeps_the_selection_until_m0_is_written_again(
    lab: LabState, kube_ovn: KubeOvn, follower: Callable[[float], MirrorKeeper]
) -> None:
    """The wipe drops ours and empties m0; ours comes back with A and C, then follows the new m0."""
    a, _b, c = lab.pods[:3]
    keeper = follower(60)
    kube_ovn.annotate(a)
    kube_ovn.annotate(c)
    wait_for(kube_ovn.selects(a, c), 5)
    restores = keeper.restores
    kube_ovn.restart()
    wait_for(lambda: keeper.restores > restores and kube_ovn.selects(a, c)(), 5)
    follow = keeper.source
    assert isinstance(follow, KubeOvnFollower)
    assert follow.holding.pods == {kube_ovn.pod_ref(a), kube_ovn.pod_ref(c)}
    kube_ovn.annotate(a)  # kube-ovn-cni re-adds the annotated pods one at a time
    kube_ovn.annotate(c)
    wait_for(lambda: not follow.holding, 5)
    assert kube_ovn.selects(a, c)()
    kube_ovn.annotate(c, on=False)  # a removal once m0 is complete again is a removal
    wait_for(kube_ovn.selects(a), 5)


def test_a_pod_not_re_added_within_the_grace_period_is_dropped(
    lab: LabState, kube_ovn: KubeOvn, follower: Callable[[float], MirrorKeeper]
) -> None:
    """With a 2 s grace period, C (whose annotation went away across the restart) goes after it."""
    a, _b, c = lab.pods[:3]
    follower(2)
    kube_ovn.annotate(a)
    kube_ovn.annotate(c)
    wait_for(kube_ovn.selects(a, c), 5)
    kube_ovn.restart()
    kube_ovn.annotate(a)
    elapsed = wait_for(kube_ovn.selects(a), 6)
    assert elapsed > 1.5
