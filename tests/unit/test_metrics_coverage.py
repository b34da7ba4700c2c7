"""Coverage ratio: captured / mirrored between the moments OVS wrote new mirror statistics."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from analyzers import IdentityMap
from exporters import CaptureHealth, FlowMetricsCollector, MetricsConfig
from exporters._coverage import CoverageWindow
from tests.unit._metrics_doubles import NODE, FakeClock, FakeFlowTable

RATE = 10_000.0  # packets per second OVS mirrors
STATS_PERIOD = 5.0  # ovs-vswitchd writes Mirror statistics this often
FEED_DELAY = 0.003  # the OVSDB update reaches the service this long after the write


class Lab:
    """A steady flow mirrored by OVS: the capture counter is live, OVS's is written every 5 s."""

    def __init__(self, loss: float) -> None:
        self.loss = loss
        self.clock = FakeClock(0.0)

    def captured(self) -> int:
        return int(self.clock.now * RATE * (1 - self.loss))

    def mirrored(self) -> int:
        """What OVSDB says: the datapath counter as of the last statistics write."""
        written = (self.clock.now // STATS_PERIOD) * STATS_PERIOD
        return int(written * RATE)


def scrape_ratios(loss: float, *, feed: bool, seconds: int = 120) -> list[float | None]:
    """A 1 s scrape for ``seconds``; with ``feed`` the OVSDB feed observes each write first."""
    lab = Lab(loss)
    health = lambda: CaptureHealth(received=lab.captured())  # noqa: E731 - a tiny reader
    collector = FlowMetricsCollector(
        FakeFlowTable(),
        IdentityMap(),
        MetricsConfig(node=NODE),
        health=health,
        mirror_tx_packets=lab.mirrored,
        clock=lab.clock,
        scrape_coverage=not feed,
    )
    registry = CollectorRegistry()
    registry.register(collector)
    out: list[float | None] = []
    for ms in range(seconds * 1000):
        lab.clock.now = ms / 1000
        if feed and ms % int(STATS_PERIOD * 1000) == int(FEED_DELAY * 1000):
            collector.observe_mirror(lab.mirrored())
        if ms % 1000 == 500:  # scrapes half a second out of phase with OVS's writes
            out.append(
                registry.get_sample_value("mirrorscope_capture_coverage_ratio", {"node": NODE})
            )
    return out


@pytest.mark.parametrize("feed", [True, False], ids=["ovsdb-feed", "scrape-only"])
@pytest.mark.parametrize("loss", [0.0, 0.1])
def test_steady_capture_reads_its_true_ratio_at_every_scrape(loss: float, feed: bool) -> None:
    """100 % capture reads 1.0 ± 0.01 and 10 % loss 0.9 ± 0.01 at every scrape once OVS wrote
    statistics twice, including the first minute (comparing live counters read up to 1.2)."""
    ratios = scrape_ratios(loss, feed=feed)
    assert ratios[:5] == [None] * 5  # before the second write there is nothing to compare
    defined = ratios[10:]
    assert all(r is not None for r in defined)
    assert max(abs(r - (1 - loss)) for r in defined if r is not None) <= 0.01


def test_only_changes_of_the_mirrored_counter_are_change_points() -> None:
    """Readings while OVS's counter stands still do not move the ratio; the first reading (written
    at an unknown time before it) is not a change point."""
    clock = FakeClock(0.0)
    w = CoverageWindow(clock, window_s=60)
    assert w.update(400, 1000) is None  # first reading
    clock.now = 1
    assert w.update(900, 1000) is None  # no change: the live counter ran ahead, ignored
    clock.now = 5
    assert w.update(2000, 2000) is None  # first change point
    clock.now = 7
    assert w.update(2500, 2000) is None
    clock.now = 10
    assert w.update(2900, 3000) == pytest.approx(0.9)  # (2900-2000)/(3000-2000)
    clock.now = 12
    assert w.update(3500, 3000) == pytest.approx(0.9)  # unchanged between change points


def test_ratio_spans_the_window_back_from_the_newest_change_point() -> None:
    """Old loss falls out of the window: the base is the newest change point a window old."""
    clock = FakeClock(0.0)
    w = CoverageWindow(clock, window_s=60)
    w.observe(0, 0)
    for t, captured, mirrored in ((5, 0, 1000), (30, 500, 2000), (90, 1500, 3000)):
        clock.now = t
        w.observe(captured, mirrored)
    assert w.ratio() == pytest.approx(1.0)  # base t=30: the early loss is out of the window
    clock.now = 200
    w.observe(2400, 4000)
    assert w.ratio() == pytest.approx(0.9)  # base t=90


def test_counter_reset_restarts_the_window() -> None:
    """A counter going backwards (OVS or capture restarted) restarts: no bogus ratio."""
    clock = FakeClock(0.0)
    w = CoverageWindow(clock, window_s=60)
    w.observe(0, 0)
    w.observe(1000, 1000)
    clock.now = 10
    assert w.update(10, 10) is None  # OVS restarted
    clock.now = 20
    assert w.update(20, 20) is None  # first change point after the restart
    clock.now = 30
    assert w.update(30, 30) == pytest.approx(1.0)


def test_window_must_be_positive() -> None:
    """A zero window is a configuration error, reported with the value."""
    with pytest.raises(ValueError, match="0"):
        CoverageWindow(FakeClock(), window_s=0)
