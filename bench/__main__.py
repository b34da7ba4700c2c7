"""``python -m bench [--quick] [--only SECTION] [--packets N]``: run, print the table.

Always exits 0 once the table is printed: a MISS is a measurement, not a failure. Bad arguments
exit 2 (argparse); a section that cannot run says "not available: <component>" in its rows.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from bench._gen import TrafficSpec, cached_pcap
from bench._report import Figure, render, save

_log = logging.getLogger("bench")

SECTIONS = ("offline", "live", "memory", "report")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure the capture service against NFStream, tcpdump and its targets.",
    )
    p.add_argument("--quick", action="store_true", help="small sizes, short runs (~30 s smoke)")
    p.add_argument("--only", choices=SECTIONS, action="append", help="run only these sections")
    p.add_argument(
        "--packets", type=_positive_int, help="packets in the offline pcap (default 1 M)"
    )
    p.add_argument("--flows", type=_positive_int, help="flows in the offline pcap (default 20 k)")
    p.add_argument(
        "--repeat", type=_positive_int, help="offline runs per tool, best kept (default 3)"
    )
    p.add_argument("--seconds", type=_positive_float, help="live: seconds per run (default 10)")
    p.add_argument(
        "--memory-flows", type=_positive_int, help="memory: concurrent flows (default 1 M)"
    )
    p.add_argument("--out", type=Path, default=Path("bench-out"), help="cache and results dir")
    return p


def _guard(section: str, fn: Callable[[], list[Figure]]) -> list[Figure]:
    """Run one section; an unexpected error becomes a row, not a lost table."""
    t0 = time.perf_counter()
    try:
        figs = fn()
    except Exception as e:  # a measurement reports what broke and goes on
        _log.debug("section %s failed", section, exc_info=True)
        traceback.print_exc(file=sys.stderr)
        return [Figure.missing(section, "section", f"failed: {type(e).__name__}: {e}")]
    print(f"bench: {section} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return figs


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    quick = args.quick
    sections = args.only or list(SECTIONS)
    spec = TrafficSpec(
        packets=args.packets or (100_000 if quick else 1_000_000),
        flows=args.flows or (10_000 if quick else 20_000),
    )
    repeat = args.repeat or (1 if quick else 3)
    seconds = args.seconds or (1.0 if quick else 10.0)
    mem_flows = args.memory_flows or (100_000 if quick else 1_000_000)
    out: Path = args.out

    figures: list[Figure] = []
    if "offline" in sections:

        def offline() -> list[Figure]:
            from bench import _offline  # noqa: PLC0415 - sections import only what they run

            t0 = time.perf_counter()
            pcap, truth = cached_pcap(spec, out)
            print(f"bench: pcap {pcap} ready in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            from bench import _coldstart  # noqa: PLC0415

            return _offline.measure(pcap, truth, spec, repeat) + _coldstart.measure()

        figures += _guard("offline", offline)
    if "live" in sections:

        def live() -> list[Figure]:
            from bench import _live  # noqa: PLC0415

            return _live.measure(seconds, quick=quick)

        figures += _guard("live", live)
    if "memory" in sections:

        def memory() -> list[Figure]:
            from bench import _memory  # noqa: PLC0415

            return _memory.measure(mem_flows)

        figures += _guard("memory", memory)

    if "report" in sections:

        def report() -> list[Figure]:
            from bench import _reportbench  # noqa: PLC0415

            return _reportbench.measure(out, 864_000 if quick else 8_640_000)

        figures += _guard("report", report)

    render(figures, sys.stdout)
    params: dict[str, object] = {
        "quick": quick,
        "sections": sections,
        "packets": spec.packets,
        "flows": spec.flows,
        "repeat": repeat,
        "live_seconds": seconds,
        "memory_flows": mem_flows,
    }
    save(figures, out / "results.json", params)
    return 0


if __name__ == "__main__":
    sys.exit(main())
