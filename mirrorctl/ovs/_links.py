"""Links through netlink (pyroute2), in a named network namespace or the host's.

The namespace is where ovs-vswitchd's TAPs and mirror0 live: a lab's node netns, or the host
(``None``) on a real node. A missing namespace is an error, never created on the fly.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute, NetlinkError

from mirrorctl.ovs._errors import LinkError, NotFoundError

_IFF_UP = 0x1


@dataclass(frozen=True, slots=True)
class LinkState:
    """Admin/oper state and the kernel's 64-bit counters of one link."""

    name: str
    netns: str | None
    index: int
    up: bool
    operstate: str
    rx_packets: int
    tx_packets: int
    rx_bytes: int
    tx_bytes: int
    rx_dropped: int
    tx_dropped: int


@contextmanager
def _iproute(netns: str | None) -> Iterator[Any]:
    try:
        # flags=0: pyroute2 would otherwise create a missing namespace (O_CREAT) silently.
        ipr = IPRoute(netns=netns, flags=0) if netns else IPRoute()
    except FileNotFoundError as exc:
        raise NotFoundError(
            f"network namespace {netns!r} does not exist (check --netns / MIRRORSCOPE_NETNS)",
            kind="netns",
            name=netns or "",
        ) from exc
    try:
        yield ipr
    finally:
        ipr.close()


def _get(ipr: Any, name: str) -> Any | None:
    try:
        return ipr.link("get", ifname=name)[0]
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            return None
        raise


def _state(msg: Any, netns: str | None) -> LinkState:
    stats = msg.get_attr("IFLA_STATS64") or {}
    return LinkState(
        name=msg.get_attr("IFLA_IFNAME"),
        netns=netns,
        index=int(msg["index"]),
        up=bool(msg["flags"] & _IFF_UP),
        operstate=str(msg.get_attr("IFLA_OPERSTATE") or "UNKNOWN"),
        rx_packets=int(stats.get("rx_packets", 0)),
        tx_packets=int(stats.get("tx_packets", 0)),
        rx_bytes=int(stats.get("rx_bytes", 0)),
        tx_bytes=int(stats.get("tx_bytes", 0)),
        rx_dropped=int(stats.get("rx_dropped", 0)),
        tx_dropped=int(stats.get("tx_dropped", 0)),
    )


def link_state(name: str, netns: str | None = None) -> LinkState | None:
    """The link's state and counters, or ``None`` when no link of that name exists."""
    with _iproute(netns) as ipr:
        try:
            msg = _get(ipr, name)
        except NetlinkError as exc:
            raise LinkError(name, netns, f"netlink error {exc.code}") from exc
        return None if msg is None else _state(msg, netns)


def link_exists(name: str, netns: str | None = None) -> bool:
    return link_state(name, netns) is not None


def set_link_up(name: str, netns: str | None = None) -> bool:
    """Bring the link up; return whether it was down. Raises ``LinkError`` when it is missing."""
    with _iproute(netns) as ipr:
        try:
            msg = _get(ipr, name)
            if msg is None:
                raise LinkError(name, netns, "no such link")
            if msg["flags"] & _IFF_UP:
                return False
            ipr.link("set", index=msg["index"], state="up")
        except NetlinkError as exc:
            raise LinkError(name, netns, f"cannot bring it up (netlink error {exc.code})") from exc
        return True


def wait_for_link(
    name: str,
    netns: str | None = None,
    *,
    timeout: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> LinkState:
    """Wait until ovs-vswitchd has created the link (an internal port appears asynchronously)."""
    deadline = clock() + timeout
    while True:
        state = link_state(name, netns)
        if state is not None:
            return state
        if clock() >= deadline:
            raise LinkError(
                name,
                netns,
                f"did not appear within {timeout:g} s: is ovs-vswitchd running, "
                "and in this network namespace (--netns)?",
            )
        sleep(0.05)
