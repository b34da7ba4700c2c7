"""The file index's counts: per address and MAC, the same however the batches come and merge."""

from __future__ import annotations

import ipaddress
import random

from exporters._pcapindex import IndexBuilder, address_key
from tests.unit._pcapkit import T0, Pod, arp_request, batch, nd_solicit, tcp4, udp6


def _pods(count: int) -> list[Pod]:
    return [
        Pod(
            name=f"ns/p{i}",
            v4=f"10.{i >> 8}.{i & 0xFF}.7",
            v6=f"fd00::{i + 1:x}",
            mac=f"02:00:00:00:{i >> 8:02x}:{i & 0xFF:02x}",
        )
        for i in range(count)
    ]


def _expect(frame: bytes, addresses: dict[int, int], macs: dict[int, int]) -> None:
    """Count a frame's distinct IP endpoints, and for ARP/ND its distinct MACs, from its bytes."""
    etype = int.from_bytes(frame[12:14], "big")
    keys: set[int] = set()
    if etype == 0x0800:
        keys = {address_key(str(ipaddress.IPv4Address(frame[o : o + 4]))) for o in (26, 30)}
    elif etype == 0x86DD:
        keys = {address_key(str(ipaddress.IPv6Address(frame[o : o + 16]))) for o in (22, 38)}
    for k in keys:
        addresses[k] = addresses.get(k, 0) + 1
    if etype == 0x0806 or (etype == 0x86DD and frame[20] == 58):
        for m in {int.from_bytes(frame[0:6], "big"), int.from_bytes(frame[6:12], "big")}:
            macs[m] = macs.get(m, 0) + 1


def test_index_counts_equal_a_plain_count_over_merged_batches() -> None:
    """Random IPv4, IPv6, ARP and ND frames among 300 pods, indexed batch by batch and merged
    into a file's builder as the store does: every address and MAC counts the packets that
    hold it, as counting each frame's distinct endpoints from its bytes does."""
    rng = random.Random(7)
    pods = _pods(300)
    addresses: dict[int, int] = {}
    macs: dict[int, int] = {}
    file_index = IndexBuilder()
    for b in range(12):
        frames = []
        for _ in range(rng.randrange(1, 200)):
            a, z = rng.sample(pods, 2)
            make = rng.choice([tcp4, udp6, arp_request, nd_solicit])
            frames.append(make(a, z))
            _expect(frames[-1], addresses, macs)
        delta = IndexBuilder()
        delta.add(*batch(frames, [T0 + b * 1000 + i for i in range(len(frames))]))
        file_index.merge(delta)
    got = file_index.snapshot()
    assert dict(got.addresses) == addresses
    assert dict(got.macs) == macs
    assert file_index.sizes == len(addresses) + len(macs)
