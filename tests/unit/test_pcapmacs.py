"""Which MAC each address sends from: the majority, and the newest once a pair is settled."""

from __future__ import annotations

from exporters import MacTable
from exporters._pcapindex import address_key, mac_key
from exporters._pcapmacs import SETTLE
from tests.unit._pcapkit import T0, A, B, Pod, batch, tcp4

A_NEW = Pod(A.name, A.v4, A.v6, "0a:00:00:00:00:aa")  # the same address, a new MAC


def _send(table: MacTable, src: Pod, frames: int, per_batch: int = 7) -> None:
    sent = 0
    while sent < frames:
        n = min(per_batch, frames - sent)
        table.on_frames(*batch([tcp4(src, B)] * n, [T0 + sent + i for i in range(n)]))
        sent += n


def test_an_address_gets_the_mac_most_of_its_frames_came_from() -> None:
    """Below the settling count, the MAC an address sent most frames from is its MAC."""
    table = MacTable()
    _send(table, A, 10)
    _send(table, A_NEW, 3)
    assert table.macs()[address_key(A.v4)] == mac_key(A.mac)
    _send(table, A_NEW, 8)  # 11 against 10
    assert table.macs()[address_key(A.v4)] == mac_key(A_NEW.mac)


def test_a_settled_pair_stops_counting_and_the_newest_settled_mac_wins() -> None:
    """After thousands of frames from one MAC, SETTLE frames from a new MAC for the same address
    (a pod created again) make the new MAC the address's; the old one must settle anew."""
    table = MacTable()
    _send(table, A, 50 * SETTLE, per_batch=100)
    _send(table, A_NEW, SETTLE - 1)
    assert table.macs()[address_key(A.v4)] == mac_key(A.mac)
    _send(table, A_NEW, 1)
    assert table.macs()[address_key(A.v4)] == mac_key(A_NEW.mac)
    _send(table, A, SETTLE - 1)  # the old MAC again, not yet settled anew
    assert table.macs()[address_key(A.v4)] == mac_key(A_NEW.mac)
    _send(table, A, 1)  # and now it is: the old pair counts again once displaced
    assert table.macs()[address_key(A.v4)] == mac_key(A.mac)
