"""What to mirror (:class:`MirrorSpec`) and whose a Mirror row is (:func:`owner_of`).

mirrorctl marks its rows in ``external_ids`` and records its intent there too, so any later
``enable``, ``watch`` or ``status`` reads the selection back from OVSDB itself.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from mirrorctl.ovs._errors import UsageError
from mirrorctl.ovs._ovsdb import MirrorRow
from mirrorctl.ovs._pods import PodRef

log = logging.getLogger(__name__)

OWNER_KEY = "mirrorscope-owner"
OWNER_VALUE = "mirrorctl"
GLOBAL_KEY = "mirrorscope-global"
PODS_KEY = "mirrorscope-pods"
NAMESPACES_KEY = "mirrorscope-namespaces"
OUTPUT_KEY = "mirrorscope-output"


class Owner(StrEnum):
    MIRRORCTL = "mirrorctl"
    KUBE_OVN = "kube-ovn"
    OVN = "ovn"
    UNKNOWN = "unknown"


def owner_of(mirror: MirrorRow) -> Owner:
    """Who made a Mirror row: our mark, OVN's ``ovn-owned``, or Kube-OVN's bare ``m0``."""
    ext = mirror.external_ids
    if ext.get(OWNER_KEY) == OWNER_VALUE:
        return Owner.MIRRORCTL
    if ext.get("ovn-owned") == "true":
        return Owner.OVN
    if mirror.name == "m0" and not ext:
        return Owner.KUBE_OVN
    return Owner.UNKNOWN


@dataclass(frozen=True, slots=True)
class MirrorSpec:
    """What to mirror: everything, and/or pods named directly or by namespace (both directions)."""

    select_all: bool = False
    pods: frozenset[PodRef] = frozenset()
    namespaces: frozenset[str] = frozenset()

    def __or__(self, other: MirrorSpec) -> MirrorSpec:
        return MirrorSpec(
            self.select_all or other.select_all,
            self.pods | other.pods,
            self.namespaces | other.namespaces,
        )

    def __sub__(self, other: MirrorSpec) -> MirrorSpec:
        return MirrorSpec(
            self.select_all and not other.select_all,
            self.pods - other.pods,
            self.namespaces - other.namespaces,
        )

    def __bool__(self) -> bool:
        return self.select_all or bool(self.pods) or bool(self.namespaces)

    def wants(self, pod: PodRef) -> bool:
        return pod in self.pods or pod.namespace in self.namespaces

    def describe(self) -> str:
        parts = ["all traffic"] if self.select_all else []
        if self.namespaces:
            parts.append("namespaces " + ", ".join(sorted(self.namespaces)))
        if self.pods:
            parts.append("pods " + ", ".join(str(p) for p in sorted(self.pods)))
        return "; ".join(parts) or "nothing"

    def to_external_ids(self, output: str) -> dict[str, str]:
        return {
            OWNER_KEY: OWNER_VALUE,
            OUTPUT_KEY: output,
            GLOBAL_KEY: "true" if self.select_all else "false",
            PODS_KEY: ",".join(str(p) for p in sorted(self.pods)),
            NAMESPACES_KEY: ",".join(sorted(self.namespaces)),
        }

    @classmethod
    def from_external_ids(cls, ext: Mapping[str, str]) -> MirrorSpec:
        pods = set()
        for text in filter(None, ext.get(PODS_KEY, "").split(",")):
            try:
                pods.add(PodRef.parse(text))
            except UsageError:
                log.warning("ignoring malformed pod %r in mirror external_ids", text)
        return cls(
            ext.get(GLOBAL_KEY) == "true",
            frozenset(pods),
            frozenset(filter(None, ext.get(NAMESPACES_KEY, "").split(","))),
        )
