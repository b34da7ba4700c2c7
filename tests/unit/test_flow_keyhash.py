"""The flow table recomputes key hashes from stored keys: the same values flow_keys made."""

from __future__ import annotations

import numpy as np

from analyzers._flowcolumns import FlowColumns
from analyzers._flowkey import canonical_hash, flow_keys
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


def test_canonical_hash_equals_the_batch_hash() -> None:
    """IPv4, IPv6, ICMP, VLAN and tunnel keys hash alike from rows and from canonical keys."""
    _, dec = batch(_pkts())
    keys = flow_keys(dec, np.arange(len(dec), dtype=np.int64))
    idx = np.arange(len(dec), dtype=np.int64)
    assert np.array_equal(canonical_hash(*keys.canonical(idx)), keys.hash63)


def test_columns_give_back_the_hash_of_the_key_they_hold() -> None:
    """A slot's stored key hashes to the batch hash without the direction bit."""
    _, dec = batch(_pkts())
    keys = flow_keys(dec, np.arange(len(dec), dtype=np.int64))
    cols = FlowColumns(32)
    s = np.arange(5, 5 + len(dec), dtype=np.int64)
    a_hi, a_lo, b_hi, b_lo, ports, meta = keys.canonical(np.arange(len(dec), dtype=np.int64))
    cols.set_keys(s, a_hi, a_lo, b_hi, b_lo, ports, meta)
    assert np.array_equal(cols.key_hash(s), keys.hash63 >> np.uint64(1))
