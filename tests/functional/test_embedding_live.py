"""``live_capture`` on a real veth pair in a namespace of its own: flows out, even on errors."""

from __future__ import annotations

import socket
import time

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from analyzers import FlowRecord
from capture import CaptureError
from capture._netns import socket_in_netns
from mirrorctl import live_capture
from tests.functional._veth import VethNs

CLIENT, SERVER = "10.9.0.1", "10.9.0.2"


def send_exchanges(veth: VethNs, sports: list[int]) -> None:
    """One UDP request and reply per source port, sent out of ``tx`` (seen on ``rx``).

    Distinct IP ids, as real hosts send: packets equal but for their ports within a millisecond
    would be taken for mirrored copies."""
    sock = socket_in_netns(veth.netns, socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.bind((veth.tx, 0))
        for sport in sports:
            q = (
                Ether()
                / IP(src=CLIENT, dst=SERVER, id=sport)
                / UDP(sport=sport, dport=7000)
                / (b"q" * 10)
            )
            r = (
                Ether()
                / IP(src=SERVER, dst=CLIENT, id=sport + 1)
                / UDP(sport=7000, dport=sport)
                / (b"r" * 30)
            )
            sock.send(bytes(q))
            sock.send(bytes(r))
    finally:
        sock.close()


def wait_for_packets(counters: object, n: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if counters() >= n:  # type: ignore[operator]
            return
        time.sleep(0.05)
    pytest.fail(f"fewer than {n} packets reached the pipeline within 5 s")


def test_live_capture_flushes_every_active_flow_on_leaving(veth: VethNs) -> None:
    """Flows still active when the block ends reach ``on_flows`` once, named by ``identity``."""
    got: list[FlowRecord] = []
    with live_capture(
        veth.rx, netns=veth.netns, identity={CLIENT: "shop/cart-1"}, on_flows=got.extend
    ) as capture:
        send_exchanges(veth, [41000, 41001])
        wait_for_packets(lambda: capture.counters().packets, 4)
        assert got == []  # both flows are still active
    assert sorted(r.orig_p for r in got) == [41000, 41001]
    assert {(r.orig_pkts, r.resp_pkts, r.end_reason) for r in got} == {(1, 1, "flush")}
    assert {(r.orig_namespace, r.orig_pod) for r in got} == {("shop", "cart-1")}


def test_live_capture_flushes_when_the_block_raises(veth: VethNs) -> None:
    """An exception in the block still stops the capture and hands over the active flows."""
    got: list[FlowRecord] = []

    def capture_then_fail() -> None:
        with live_capture(veth.rx, netns=veth.netns, on_flows=got.extend) as capture:
            send_exchanges(veth, [42000])
            wait_for_packets(lambda: capture.counters().packets, 2)
            raise RuntimeError("caller failed")

    with pytest.raises(RuntimeError, match="caller failed"):
        capture_then_fail()
    assert [(r.orig_p, r.end_reason) for r in got] == [(42000, "flush")]


def test_live_capture_on_a_missing_interface_is_a_capture_error(veth: VethNs) -> None:
    """Opening fails before the block runs, as one ``CaptureError`` naming the interface."""
    with (
        pytest.raises(CaptureError, match="nope0"),
        live_capture("nope0", netns=veth.netns),
    ):
        pytest.fail("the block must not run")
