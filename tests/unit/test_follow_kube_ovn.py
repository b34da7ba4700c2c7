"""Following Kube-OVN's m0 on hand-built snapshots: selection, removals, wipes, grace period."""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID

import pytest

from mirrorctl.ovs._follow import KubeOvnFollower, kube_ovn_selection
from mirrorctl.ovs._mirrors import plan_mirror
from mirrorctl.ovs._pods import PodRef
from mirrorctl.ovs._spec import MirrorSpec
from tests.unit.test_mirror_plan import Builder

FRONTEND = PodRef("shop", "frontend")
CART = PodRef("shop", "cart")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Node:
    """A Kube-OVN node: three pods, mirror0, and kube-ovn-cni's m0 in pod-level mode."""

    def __init__(self) -> None:
        self.b = Builder()
        self.b.port("ovn0", {"iface-id": "node-kind-worker", "ip": "100.64.0.2"})
        self.ports = {
            FRONTEND: self.b.pod("shop", "frontend"),
            CART: self.b.pod("shop", "cart"),
            PodRef("default", "client"): self.b.pod("default", "client"),
        }
        self.mirror0 = self.b.port("mirror0")
        self.m0 = self.b.mirror("m0", output=self.mirror0)

    def select(self, *pods: PodRef, select_all: bool = False) -> None:
        """What `ovs-vsctl add/remove mirror m0 select_dst_port` leaves in the same m0 row."""
        dst = frozenset(self.ports[p] for p in pods)
        self._set(self.m0.uuid, dst, select_all)

    def wipe(self, *, recreate: bool = True) -> None:
        """kube-ovn-cni's start: `clear bridge br-int mirrors`, then a new empty m0."""
        self.b.mirrors.clear()
        if recreate:
            self.m0 = self.b.mirror("m0", output=self.mirror0)

    def _set(self, uuid: UUID, dst: frozenset[UUID], select_all: bool) -> None:
        self.m0 = replace(self.b.mirrors[uuid], select_dst_port=dst, select_all=select_all)
        self.b.mirrors[uuid] = self.m0


@pytest.fixture
def node() -> Node:
    return Node()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_the_pods_in_m0_select_dst_port_become_our_pods(node: Node, clock: Clock) -> None:
    """Kube-OVN's one-direction selection becomes our spec's pods, planned in both directions."""
    node.select(FRONTEND, CART)
    follow = KubeOvnFollower(clock=clock)
    spec = follow(node.b.snapshot())
    assert spec == MirrorSpec(pods=frozenset({FRONTEND, CART}))
    plan = plan_mirror(node.b.snapshot(), spec)
    assert plan.port_uuids == {node.ports[FRONTEND], node.ports[CART]}


def test_a_pod_removed_from_the_same_m0_is_dropped_at_once(node: Node, clock: Clock) -> None:
    """The annotation taken off (same m0 row, port removed) is not a wipe: no grace period."""
    follow = KubeOvnFollower(clock=clock)
    node.select(FRONTEND, CART)
    follow(node.b.snapshot())
    node.select(CART)
    assert follow(node.b.snapshot()).pods == {CART}
    node.select()
    assert not follow(node.b.snapshot())


def test_a_wipe_keeps_the_last_selection_until_m0_is_written_again(
    node: Node, clock: Clock
) -> None:
    """After `clear bridge mirrors` + a new empty m0 the pods stay, then follow the new m0."""
    follow = KubeOvnFollower(grace_s=60, clock=clock)
    node.select(FRONTEND, CART)
    follow(node.b.snapshot())
    node.wipe()
    clock.now += 1
    assert follow(node.b.snapshot()).pods == {FRONTEND, CART}
    assert follow.holding.pods == {FRONTEND, CART}
    node.select(CART)  # kube-ovn-cni re-adds the pods one at a time
    clock.now += 1
    assert follow(node.b.snapshot()).pods == {FRONTEND, CART}
    node.select(CART, FRONTEND)
    assert follow(node.b.snapshot()).pods == {FRONTEND, CART}
    assert not follow.holding
    node.select(CART)  # from here on, a removal is a removal again
    assert follow(node.b.snapshot()).pods == {CART}


def test_the_grace_period_ends_with_what_kube_ovn_wrote(node: Node, clock: Clock) -> None:
    """A pod Kube-OVN does not re-add within the grace period is dropped when it ends."""
    follow = KubeOvnFollower(grace_s=30, clock=clock)
    node.select(FRONTEND, CART)
    follow(node.b.snapshot())
    node.wipe()
    follow(node.b.snapshot())
    node.select(CART)
    clock.now += 29.9
    assert follow(node.b.snapshot()).pods == {FRONTEND, CART}
    clock.now += 0.1
    assert follow(node.b.snapshot()).pods == {CART}


def test_m0_gone_without_a_new_one_is_held_through_the_grace_period(
    node: Node, clock: Clock
) -> None:
    """ovs-vsctl's wipe before kube-ovn-cni creates m0 again: held, then nothing is mirrored."""
    follow = KubeOvnFollower(grace_s=10, clock=clock)
    node.select(FRONTEND)
    follow(node.b.snapshot())
    node.wipe(recreate=False)
    assert follow(node.b.snapshot()).pods == {FRONTEND}
    clock.now += 10
    assert not follow(node.b.snapshot())


def test_kube_ovn_global_mirroring_is_followed_as_all_traffic(node: Node, clock: Clock) -> None:
    """m0 with select_all (Kube-OVN's enable-mirror) means all traffic, which m0 already sends."""
    node.select(select_all=True)
    spec = KubeOvnFollower(clock=clock)(node.b.snapshot())
    assert spec == MirrorSpec(select_all=True)
    assert plan_mirror(node.b.snapshot(), spec).covered_by == "m0"


def test_no_m0_and_our_own_rows_are_not_followed(node: Node) -> None:
    """Only Kube-OVN's m0 counts: without it there is nothing; our row named m0 is not it."""
    node.wipe(recreate=False)
    assert kube_ovn_selection(node.b.snapshot()) is None
    node.b.mirror("m0", dst={node.ports[CART]}, external_ids={"mirrorscope-owner": "mirrorctl"})
    assert kube_ovn_selection(node.b.snapshot()) is None


def test_a_negative_grace_period_is_refused() -> None:
    """grace_s < 0 is a programming error, not a silent zero."""
    with pytest.raises(ValueError, match="grace_s"):
        KubeOvnFollower(grace_s=-1)
