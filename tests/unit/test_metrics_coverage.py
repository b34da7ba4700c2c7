"""Coverage ratio: captured / mirrored over a sliding window of scrape-time samples."""

from __future__ import annotations

import pytest

from exporters._coverage import CoverageWindow
from tests.unit._metrics_doubles import FakeClock


def test_ratio_uses_the_newest_sample_at_least_a_window_old() -> None:
    """Old loss falls out of the window: the ratio reflects the last window only."""
    clock = FakeClock(0.0)
    w = CoverageWindow(clock, window_s=60)
    assert w.update(0, 0) is None
    clock.now = 30
    assert w.update(500, 1000) == pytest.approx(0.5)  # loss early on
    clock.now = 90
    assert w.update(1500, 2000) == pytest.approx(1.0)  # base is the t=30 sample
    clock.now = 200
    assert w.update(2400, 3000) == pytest.approx(0.9)  # base is the t=90 sample


def test_counter_reset_restarts_the_window() -> None:
    """A counter going backwards (OVS or capture restarted) restarts the window: no bogus ratio."""
    clock = FakeClock(0.0)
    w = CoverageWindow(clock, window_s=60)
    w.update(1000, 1000)
    clock.now = 10
    assert w.update(10, 1010) is None
    clock.now = 20
    assert w.update(20, 1020) == pytest.approx(1.0)


def test_nothing_mirrored_means_undefined() -> None:
    """With no mirrored packets in the window there is no ratio to report."""
    clock = FakeClock(0.0)
    w = CoverageWindow(clock, window_s=60)
    w.update(5, 7)
    clock.now = 5
    assert w.update(5, 7) is None


def test_window_must_be_positive() -> None:
    """A zero window is a configuration error, reported with the value."""
    with pytest.raises(ValueError, match="0"):
        CoverageWindow(FakeClock(), window_s=0)
