"""Network namespace and link helpers over pyroute2: create, remove, run a command inside."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Sequence
from typing import Any

from pyroute2 import IPRoute, netns

from capture import netns_path
from mirrorctl.lab._errors import LabError

log = logging.getLogger(__name__)

RT_SCOPE_LINK = 253  # rtnetlink.h: an on-link route, no gateway
IFA_F_NODAD = 0x02  # if_addr.h: the address is usable at once, without duplicate detection


def exists(name: str) -> bool:
    # The capture socket and the lab agree on where `ip netns` names live: capture's netns_path.
    return os.path.exists(netns_path(name))


def create(name: str) -> bool:
    """Create ``name`` with its loopback up; returns False when it already existed."""
    if exists(name):
        return False
    try:
        netns.create(name)
    except OSError as exc:
        raise LabError(f"cannot create network namespace {name}: {exc}") from exc
    with open_netns(name) as ipr:
        (lo,) = ipr.link_lookup(ifname="lo")
        ipr.link("set", index=lo, state="up")
    log.debug("created netns %s", name)
    return True


def remove(name: str) -> bool:
    """Remove ``name``; returns False when it did not exist. Its links go with it."""
    if not exists(name):
        return False
    netns.remove(name)
    log.debug("removed netns %s", name)
    return True


def open_netns(name: str) -> IPRoute:
    """An rtnetlink socket inside ``name``; never creates the namespace by accident."""
    try:
        return IPRoute(netns=name, flags=0)
    except FileNotFoundError as exc:
        raise LabError(f"network namespace {name} does not exist: run lab up") from exc


def link_index(ipr: IPRoute, ifname: str) -> int | None:
    found: list[int] = ipr.link_lookup(ifname=ifname)
    return found[0] if found else None


def link_names(name: str) -> list[str]:
    """Names of all links in namespace ``name`` (empty when the namespace is gone)."""
    if not exists(name):
        return []
    with open_netns(name) as ipr:
        return [str(link.get("ifname")) for link in ipr.link("dump")]


def netns_argv(name: str, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", name, *argv]


def netns_exec(name: str, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """Run ``argv`` inside namespace ``name``; ``kwargs`` go to :func:`subprocess.run`."""
    return subprocess.run(netns_argv(name, argv), **kwargs)  # noqa: PLW1510 - caller decides check


def tx_checksum_off(name: str, ifname: str) -> None:
    """Turn off TX checksum offload: OVS's userspace datapath forwards the partial checksum of
    an offloaded veth frame unchanged, and the receiver drops every TCP segment."""
    result = netns_exec(
        name, ["ethtool", "-K", ifname, "tx", "off"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise LabError(
            f"ethtool -K {ifname} tx off failed in {name}: {result.stderr.strip()} "
            "(is ethtool installed? run make bootstrap)"
        )
