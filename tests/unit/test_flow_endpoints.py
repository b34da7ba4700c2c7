"""EndpointColumn: the flow table's endpoints by (slot, direction), stored as ids."""

from __future__ import annotations

import numpy as np

from analyzers import Endpoint
from analyzers._flowendpoints import EndpointColumn
from analyzers._identity import EXTERNAL, EndpointKind


def _pod(i: int) -> Endpoint:
    return Endpoint(EndpointKind.POD, "ns", f"pod-{i}", "node-a")


def test_endpoints_read_back_by_slot_and_direction() -> None:
    """What is set for (slot, direction) reads back as the same objects; cleared slots as None."""
    col = EndpointColumn(16)
    a, b = _pod(1), _pod(2)
    s = np.array([3, 7, 9], np.int64)
    col.set(s, [a, b, EXTERNAL], [EXTERNAL, a, b])
    assert col[s, 0].tolist() == [a, b, EXTERNAL]
    assert col[s, 1].tolist() == [EXTERNAL, a, b]
    assert col[:10][7, 1] is a
    col.clear(s[:1])
    assert col[s, 0].tolist() == [None, b, EXTERNAL]
    assert col[0, 0] is None  # never set


def test_endpoints_survive_compaction_of_churned_identities() -> None:
    """Endpoints no flow refers to any more are dropped; the ones in use read back unchanged."""
    col = EndpointColumn(8)
    slots = np.arange(8, dtype=np.int64)
    for gen in range(2000):  # 16 000 distinct objects pass through 8 slots
        eps = [_pod(gen * 8 + i) for i in range(8)]
        col.set(slots, eps, eps[::-1])
    assert col[slots, 0].tolist() == eps
    assert col[slots, 1].tolist() == eps[::-1]
    assert len(col._objs) < 5000  # the table did not keep every object seen


def test_ids_widen_past_65535_endpoints_in_use() -> None:
    """More distinct endpoints held at once than 16-bit ids name: every one still reads back."""
    n = 70_000
    col = EndpointColumn(n)
    eps = [_pod(i) for i in range(n)]
    slots = np.arange(n, dtype=np.int64)
    col.set(slots, eps, [EXTERNAL] * n)
    got = col[slots, 0].tolist()
    assert all(a is b for a, b in zip(got, eps, strict=True))
    assert col[slots[-1], 1] is EXTERNAL


def test_endpoints_set_by_side_follow_the_originator_mask() -> None:
    """``set_roles``: side a's endpoint is the originator's where the mask says so, else b's; new
    and known objects alike, repeated ones interned once."""
    col = EndpointColumn(16)
    a, b, c = _pod(1), _pod(2), _pod(3)
    col.set(np.array([0], np.int64), [a], [EXTERNAL])  # a is known before, b and c are not
    s = np.array([2, 4, 6, 8], np.int64)
    a_orig = np.array([True, False, True, False])
    col.set_roles(s, [a, b, c, a], [EXTERNAL, EXTERNAL, b, c], a_orig)
    assert col[s, 0].tolist() == [a, EXTERNAL, c, c]
    assert col[s, 1].tolist() == [EXTERNAL, b, b, a]
    assert len(col._objs) == 5  # None, a, EXTERNAL, b, c: each once
