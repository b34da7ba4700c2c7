"""Following Kube-OVN's own mirror: the pods its ``m0`` selects become our mirror's selection.

Kube-OVN mirrors a pod annotated ``ovn.kubernetes.io/mirror: "true"`` by adding the pod's port to
``m0``'s ``select_dst_port`` (one direction only); :class:`KubeOvnFollower` turns that into a
:class:`MirrorSpec` of those pods, which the keeper mirrors in both directions in our own row.

kube-ovn-cni's start runs ``clear bridge br-int mirrors`` and creates a fresh ``m0`` with no
selection; the pods' ports come back one by one as it reconciles them. Taken literally, that
would drop every pod from our mirror at each restart, so a wipe (``m0`` gone, or a new ``m0`` row)
starts a grace period in which the last selection seen is kept, together with whatever the new
``m0`` selects, until the new ``m0`` holds all of it again or the grace period ends. A pod
removed from the same ``m0`` row (annotation taken off, pod deleted) is dropped at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from mirrorctl.ovs._defaults import DEFAULT_BRIDGE, DEFAULT_KUBE_OVN_GRACE_S
from mirrorctl.ovs._ovsdb import MirrorRow, Snapshot
from mirrorctl.ovs._pods import PodRef, pod_ports
from mirrorctl.ovs._spec import MirrorSpec, Owner, owner_of

log = logging.getLogger(__name__)

KUBE_OVN_MIRROR = "m0"


@dataclass(frozen=True, slots=True)
class KubeOvnSelection:
    """What Kube-OVN's mirror selects on a bridge right now."""

    row: UUID
    select_all: bool
    pods: frozenset[PodRef]


def kube_ovn_selection(
    snapshot: Snapshot, bridge: str = DEFAULT_BRIDGE, name: str = KUBE_OVN_MIRROR
) -> KubeOvnSelection | None:
    """Kube-OVN's ``m0`` on ``bridge`` and the pods of its ``select_dst_port``; None without one."""
    br = snapshot.bridges.get(bridge)
    if br is None:
        return None
    row: MirrorRow | None = None
    for u in sorted(br.mirrors, key=str):
        m = snapshot.mirrors.get(u)
        if m is not None and m.name == name and owner_of(m) is not Owner.MIRRORCTL:
            row = m
            break
    if row is None:
        return None
    pods = frozenset(
        p.pod for p in pod_ports(snapshot, bridge) if p.port_uuid in row.select_dst_port
    )
    return KubeOvnSelection(row.uuid, row.select_all, pods)


class KubeOvnFollower:
    """A keeper's spec source: ``follower(snapshot) -> MirrorSpec`` (see the module docstring)."""

    def __init__(
        self,
        *,
        bridge: str = DEFAULT_BRIDGE,
        mirror: str = KUBE_OVN_MIRROR,
        grace_s: float = DEFAULT_KUBE_OVN_GRACE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if grace_s < 0:
            raise ValueError(f"grace_s must not be negative, not {grace_s}")
        self.bridge = bridge
        self.mirror = mirror
        self.grace_s = grace_s
        self.clock = clock
        self._row: UUID | None = None
        self._last = MirrorSpec()
        self._held = MirrorSpec()
        self._hold_until: float | None = None
        self._absent_said = False

    @property
    def holding(self) -> MirrorSpec:
        """The selection kept through a wipe (empty outside a grace period)."""
        return self._held

    def __call__(self, snapshot: Snapshot) -> MirrorSpec:
        current = kube_ovn_selection(snapshot, self.bridge, self.mirror)
        seen = (
            MirrorSpec(select_all=current.select_all, pods=current.pods)
            if current is not None
            else MirrorSpec()
        )
        wiped = self._row is not None and (current is None or current.row != self._row)
        if wiped and self._last and not self._held:
            self._held = self._last
            self._hold_until = self.clock() + self.grace_s
            log.warning(
                "Kube-OVN's %s was %s: keeping %s for up to %gs until it is written again",
                self.mirror,
                "removed" if current is None else "re-created",
                self._last.describe(),
                self.grace_s,
            )
        self._row = current.row if current is not None else None
        self._say_absent(current is None)
        if self._held:
            if self._covers(seen, self._held):
                log.warning("Kube-OVN's %s selects %s again", self.mirror, seen.describe())
                self._release()
            elif self._hold_until is not None and self.clock() >= self._hold_until:
                log.warning(
                    "grace period over: Kube-OVN's %s selects %s, no longer %s",
                    self.mirror,
                    seen.describe(),
                    self._held.describe(),
                )
                self._release()
        if not self._held:
            self._last = seen
        return seen | self._held

    @staticmethod
    def _covers(seen: MirrorSpec, held: MirrorSpec) -> bool:
        return (seen.select_all or not held.select_all) and held.pods <= seen.pods

    def _release(self) -> None:
        self._held = MirrorSpec()
        self._hold_until = None

    def _say_absent(self, absent: bool) -> None:
        if absent and not self._absent_said and not self._held:
            log.warning(
                "no Kube-OVN mirror %r on %s: nothing to follow until kube-ovn-cni creates it",
                self.mirror,
                self.bridge,
            )
        self._absent_said = absent
