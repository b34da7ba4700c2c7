"""`mirrorctl bench`: the mirroring benchmark (off / on / on + analysis) on a two-node lab.

Argparse and output only; the measurement is ``mirrorctl.bench``. ``make bench-mirror`` runs this.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path
from typing import Any

QUICK_SIZES = ("1k",)
# Same node, cross node, the unmirrored control and one HTTP row: ~2.5 min on two cores.
QUICK_SCENARIOS = (
    "pod-pod same node",
    "pod-pod different nodes",
    "node-node",
    "pod to pod, same node (ClusterIP not emulated)",
)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``bench`` to the CLI."""
    p = sub.add_parser(
        "bench",
        help="measure mirroring off / on / on + analysis on a two-node lab (needs root)",
        description="Reproduce Kube-OVN's published mirroring on/off tables on a two-node lab, "
        "plus the cost of analysing mirror0 with every sink on.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="1k messages, 1 s points, four scenarios (same node, cross node, node-node, one "
        "HTTP) in about 2.5 min",
    )
    p.add_argument("--seconds", type=int, default=1, help="seconds per point (default 1)")
    p.add_argument("--repeats", type=int, default=3, help="repeats per point (default 3)")
    p.add_argument(
        "--scenario", action="append", metavar="NAME", help="run only this scenario (repeatable)"
    )
    p.add_argument(
        "--name",
        help="name of the two-node lab the run brings up and down (default bench-<random>)",
    )
    p.add_argument(
        "--out", type=Path, default=Path("bench-out/mirror"), help="tables and logs go here"
    )
    p.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    from mirrorctl import bench  # noqa: PLC0415 - the lab and tools load only for this command
    from mirrorctl.lab import TwoNodeLab  # noqa: PLC0415

    if args.seconds < 1 or args.repeats < 1:
        raise bench.BenchError("--seconds and --repeats must be at least 1")
    cfg = bench.Config(
        seconds=args.seconds,
        repeats=args.repeats,
        sizes=QUICK_SIZES if args.quick else bench.SIZES,
        scenarios=args.scenario or (QUICK_SCENARIOS if args.quick else None),
        out=args.out,
    )
    started, load_before = time.monotonic(), bench.load()

    owner = os.getpid()

    def _interrupt(signum: int, _frame: object) -> None:
        if os.getpid() != owner:
            # A child forked without exec (pyroute2's netns helper) inherits this handler; it
            # must die as by default, not unwind into run()'s finally and take the lab down.
            os._exit(128 + signum)
        raise KeyboardInterrupt  # the lab comes down in run()'s finally, as on Ctrl-C

    signal.signal(signal.SIGTERM, _interrupt)
    lab = TwoNodeLab(args.name) if args.name else None
    result = bench.run(cfg, lab, down=True)
    print(bench.write(result, cfg, started, load_before))
    return 0
