"""A namespace with a veth pair for capture tests: frames sent on ``tx`` are read on ``rx``."""

from __future__ import annotations

import secrets
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from capture._netns import socket_in_netns


@dataclass(frozen=True)
class VethNs:
    """A namespace holding veth ``tx`` (we send on it) and its peer ``rx`` (we capture on it)."""

    netns: str
    tx: str
    rx: str


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def veth() -> Iterator[VethNs]:
    """A fresh namespace with an up veth pair and IPv6 off (no ND/MLD noise); always deleted."""
    name = f"veth-{secrets.token_hex(4)}"
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "add", "tx0", "type", "veth", "peer", "name", "rx0")
        subprocess.run(
            ["ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
            check=True,
        )
        for dev in ("tx0", "rx0", "lo"):
            ip("-n", name, "link", "set", dev, "up")
        yield VethNs(netns=name, tx="tx0", rx="rx0")
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture
def sender(veth: VethNs) -> Iterator[socket.socket]:
    """A raw packet socket that transmits frames out of the ``tx`` end."""
    sock = socket_in_netns(veth.netns, socket.AF_PACKET, socket.SOCK_RAW, 0)
    sock.bind((veth.tx, 0))
    yield sock
    sock.close()
