"""The compiled expiry rules (``ended``, and the sweep with the active timeout) against the numpy
version they replaced, kept here as the oracle, over random flow columns."""

from __future__ import annotations

import numpy as np
import pytest

from analyzers._flowcolumns import FlowColumns
from analyzers._flowexpiry import dns_flows, ended, timed_out
from analyzers._flowkey import PROTO_TCP, PROTO_UDP

_S = 1_000_000_000
_LIMITS = {
    "idle_ns": 300 * _S,
    "udp_idle_ns": 60 * _S,
    "icmp_idle_ns": 60 * _S,
    "closed_ns": 5 * _S,
    "dns_ns": 10 * _S,
}
_ACTIVE_NS = 1800 * _S


def _random_columns(rng: np.random.Generator, n: int, now: int) -> FlowColumns:
    c = FlowColumns(n)
    c.hwm = n - int(rng.integers(0, 5))
    c.active[: c.hwm] = rng.random(c.hwm) < 0.8
    c.proto[:n] = rng.choice([PROTO_TCP, PROTO_UDP, 1, 58], n)
    c.orig_a[:n] = rng.random(n) < 0.5
    # ports: a DNS port on either side now and then
    low = rng.choice([53, 5353, 5355, 137, 40000, 8080], n).astype(np.uint32)
    high = rng.choice([53, 33000, 443], n).astype(np.uint32)
    c.ports[:n] = np.where(rng.random(n) < 0.5, low | high << 16, high | low << 16)
    c.first[:n] = now - rng.integers(0, 4000 * _S, n)
    c.first[: n // 20] = 0  # never stretched
    c.last[:n] = np.maximum(c.first[:n], now - rng.integers(0, 400 * _S, n))
    # around the thresholds, exactly on them too
    edge = rng.random(n) < 0.3
    c.last[:n] = np.where(edge, now - rng.choice([60, 300, 59, 61, 9, 10, 11], n) * _S, c.last[:n])
    # exactly on the DNS session timer's edge (quiet for the timer less its one-second grace)
    dns = _LIMITS["dns_ns"]
    fired = c.first[:n] + (now - c.first[:n]) // dns * dns
    on_edge = (rng.random(n) < 0.2) & (fired - (dns - _S) >= c.first[:n])
    c.last[:n] = np.where(on_edge, fired - (dns - _S), c.last[:n])
    c.close_ts[:n] = np.where(rng.random(n) < 0.3, now - rng.choice([0, 4, 5, 6], n) * _S, 0)
    return c


def _ended_numpy(c: FlowColumns, s: np.ndarray, at: np.ndarray | int) -> np.ndarray:
    """The rules as numpy expressions over the slots (the implementation before the kernel)."""
    proto, last, close_ts = c.proto[s], c.last[s], c.close_ts[s]
    limit = np.where(
        proto == PROTO_TCP,
        _LIMITS["idle_ns"],
        np.where(proto == PROTO_UDP, _LIMITS["udp_idle_ns"], _LIMITS["icmp_idle_ns"]),
    )
    out = (at - last > limit) | (
        (proto == PROTO_TCP) & (close_ts > 0) & (at - close_ts >= _LIMITS["closed_ns"])
    )
    dns_ns, first = _LIMITS["dns_ns"], c.first[s]
    fired = first + (at - first) // dns_ns * dns_ns
    out |= dns_flows(c, s) & (fired > first) & (fired - last >= dns_ns - _S)
    return np.asarray(out)


def _reference(c: FlowColumns, now: int) -> tuple[np.ndarray, np.ndarray]:
    act = np.flatnonzero(c.active[: c.hwm])
    gone = _ended_numpy(c, act, now)
    first = c.first[act]
    too_long = ~gone & (first > 0) & (now - first > _ACTIVE_NS)
    return act[gone], act[too_long]


@pytest.mark.parametrize("seed", range(6))
def test_sweep_matches_the_numpy_rules(seed: int) -> None:
    rng = np.random.default_rng(seed)
    now = 1_700_000_000 * _S + int(rng.integers(0, _S))
    c = _random_columns(rng, 5000, now)
    want_gone, want_long = _reference(c, now)
    gone, too_long = timed_out(c, now, active_ns=_ACTIVE_NS, **_LIMITS)
    assert want_gone.size > 100
    assert want_long.size > 10
    np.testing.assert_array_equal(gone, want_gone)
    np.testing.assert_array_equal(too_long, want_long)


@pytest.mark.parametrize("seed", range(3))
def test_ended_at_each_rows_own_time_matches_the_numpy_rules(seed: int) -> None:
    """``ended`` as the in-batch cuts call it: slots in any order, repeated, each at its time."""
    rng = np.random.default_rng(100 + seed)
    now = 1_700_000_000 * _S
    c = _random_columns(rng, 4000, now)
    s = rng.integers(0, c.hwm, 3000)
    at = now + rng.integers(-20 * _S, 20 * _S, s.size)
    want = _ended_numpy(c, s, at)
    assert 100 < int(want.sum()) < s.size - 100
    np.testing.assert_array_equal(ended(c, s, at, **_LIMITS), want)


def test_sweep_of_an_empty_table() -> None:
    c = FlowColumns(16)
    gone, too_long = timed_out(c, 5 * _S, active_ns=_ACTIVE_NS, **_LIMITS)
    assert gone.size == 0
    assert too_long.size == 0
