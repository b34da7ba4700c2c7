"""The slot map recomputes key hashes from stored keys: the same values flow_keys made."""

from __future__ import annotations

import numpy as np

from analyzers._flowcolumns import FlowColumns
from analyzers._flowkey import canonical_key_hash, flow_keys
from analyzers._groupkernel import group
from analyzers._slotmap import SlotMap
from tests.unit.flowkit import Pkt, batch


def _pkts() -> list[Pkt]:
    return [
        Pkt("10.0.0.1", "10.0.0.2", 40000, 80),
        Pkt("10.0.0.2", "10.0.0.1", 80, 40000),  # the reply: same key, other direction
        Pkt("10.0.0.9", "10.0.0.2", 53, 53, proto=17, vlan=12),
        Pkt("10.0.0.3", "10.0.0.4", 8, 0, proto=1),  # ICMP echo: type class and code
        Pkt("10.0.0.4", "10.0.0.3", 0, 0, proto=1),  # its reply
        Pkt("fd00::1", "fd00::2", 5000, 443),
        Pkt("fd00::2", "fd00::1", 443, 5000, vni=77),
        Pkt("fd00::5", "fd00::1", 128, 0, proto=58),
        Pkt("10.0.0.7", "10.0.0.8", 0, 0, proto=6, status=1),  # a fragment: no ports
    ]


def test_canonical_key_hash_equals_the_batch_hash() -> None:
    """IPv4, IPv6, ICMP, VLAN and tunnel keys hash alike from rows and from canonical keys:
    every row's hash is its flow's, hashed from the canonical key grouping built."""
    _, dec = batch(_pkts())
    keys = flow_keys(dec, np.arange(len(dec), dtype=np.int64))
    g = group(keys)
    assert g.wait is None
    # the TCP and ICMP replies share their request's flow (the IPv6 reply, in a tunnel, does not)
    assert g.first.shape[0] == len(_pkts()) - 2
    got = [canonical_key_hash(*g.keys[f]) for f in g.flow.tolist()]
    assert np.array_equal(np.array(got, np.uint64), keys.hash63)


def test_slot_map_finds_stored_keys_by_the_batch_hash() -> None:
    """Flows stored in the columns are found by their batch hash without the direction bit."""
    _, dec = batch(_pkts())
    keys = flow_keys(dec, np.arange(len(dec), dtype=np.int64))
    g = group(keys)
    h = keys.hash63[g.first] >> np.uint64(1)
    cols = FlowColumns(32)
    s = np.arange(5, 5 + h.size, dtype=np.int64)
    full = g.keys
    cols.set_keys(s, *full.T)
    sm = SlotMap((cols.ahi, cols.alo, cols.bhi, cols.blo, cols.ports, cols.meta), 16)
    sm.insert(h, s)
    assert np.array_equal(sm.get_exact(h, full)[0], s)
    sm.delete(s[:2])
    assert np.array_equal(sm.get_exact(h, full)[0], np.concatenate([[-1, -1], s[2:]]))
