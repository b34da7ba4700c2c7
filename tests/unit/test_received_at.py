"""Pairing OVS statistics writes with the received counters of N workers' periodic reports."""

from __future__ import annotations

from mirrorctl.service._received import ReceivedAt


def test_write_waits_for_every_worker_and_is_interpolated_between_reports() -> None:
    """A write at t=1.5 is paired once both workers reported past it, with each worker's counter
    interpolated linearly between its reports either side (not the stale last value)."""
    pairs: list[tuple[int, int]] = []
    r = ReceivedAt(2, lambda c, m: pairs.append((c, m)))
    r.report(0, 1.0, 100)
    r.report(1, 1.0, 1000)
    r.mirror(1.5, 5000)
    assert pairs == []  # nobody has reported past the write yet
    r.report(0, 2.0, 300)
    assert pairs == []  # worker 1 has not
    r.report(1, 2.5, 2500)
    assert pairs == [(200 + 1500, 5000)]  # 100→300 at half way, 1000→2500 at a third


def test_unchanged_or_unknown_readings_are_not_writes() -> None:
    """Only a changed counter is a write; None (OVSDB unreachable) is ignored."""
    pairs: list[tuple[int, int]] = []
    r = ReceivedAt(1, lambda c, m: pairs.append((c, m)))
    r.report(0, 0.0, 0)
    r.mirror(0.5, 10)
    r.mirror(0.7, 10)
    r.mirror(0.8, None)
    r.report(0, 1.0, 20)
    assert pairs == [(10, 10)]
