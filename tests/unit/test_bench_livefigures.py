"""The live bench's CPU per packet against tcpdump's: the best of alternating runs of each."""

from __future__ import annotations

from bench._livefigures import RunResult, cpu_per_packet
from bench._receivers import RxResult, _Cli, _Tcpdump


def _run(cpu_seconds: float, captured: int, dropped: int = 0) -> RunResult:
    rx = RxResult(received=captured + dropped, dropped=dropped, captured=captured, cpu_pct=10.0)
    return RunResult(captured, captured, 10.0, rx, cpu_seconds)


def test_the_ratio_is_of_each_receivers_best_run_and_every_run_is_named() -> None:
    runs = {
        _Cli.name: [_run(1.33, 10_000_000), _run(1.12, 10_000_000), _run(1.20, 10_000_000)],
        _Tcpdump.name: [_run(0.52, 10_000_000), _run(0.55, 10_000_000), _run(0.50, 10_000_000)],
    }
    fig, drops = cpu_per_packet(64, runs)
    assert fig.value == 112 / 50
    assert fig.ok is False
    assert "ours 133/112/120 ns" in fig.note
    assert "tcpdump 52/55/50 ns" in fig.note
    assert (drops.value, drops.ok) == (0, True)


def test_a_repeat_run_of_ours_that_dropped_frames_is_a_miss_of_its_own() -> None:
    runs = {
        _Cli.name: [_run(1.0, 10_000_000), _run(0.9, 9_000_000, dropped=1_000)],
        _Tcpdump.name: [_run(0.5, 10_000_000), _run(0.5, 10_000_000)],
    }
    ratio, drops = cpu_per_packet(512, runs)
    assert ratio.ok is True
    assert drops.name == "mirrorscope 512 B max rate, repeat runs: dropped by kernel"
    assert drops.value == 1_000
    assert drops.ok is False


def test_one_run_each_makes_no_repeat_figure() -> None:
    runs = {_Cli.name: [_run(1.0, 10_000_000)], _Tcpdump.name: [_run(0.5, 10_000_000)]}
    (fig,) = cpu_per_packet(64, runs)
    assert fig.value == 2.0
    assert "one run each" in fig.note
