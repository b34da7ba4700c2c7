"""`mirrorctl pcap get | follow` over several agents: ask them all, merge into one pcapng.

Taken when more than one ``--server`` is given or ``--servers-from-dns`` names a headless
Service. Every agent gets the same absolute window (``--since`` is turned into start and end
here, so nodes' clocks do not each pick their own "now"). An agent that fails is named on stderr
and in the file, the rest are merged, and the exit status is 3 to tell a script the answer is
partial.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from exporters import parse_duration
from mirrorctl.fleet import (
    NOTHING,
    Answer,
    Target,
    Unanswered,
    ask_all,
    follow_merged,
    merge_downloads,
    targets_from_dns,
    targets_from_urls,
)
from mirrorctl.ovs import UsageError

__all__ = ["PARTIAL", "add_fleet_options", "fleet_follow", "fleet_get", "targets"]

DEFAULT_PORT = 10097
#: The exit status of a merge that misses an agent's packets (the file holds the others').
PARTIAL = 3


class FleetError(UsageError):
    """No agent gave an answer to merge; the message names each and what it said."""

    exit_code = 1


def add_fleet_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--servers-from-dns",
        metavar="NAME",
        help="ask every address NAME resolves to (the chart's headless Service, e.g. "
        "mirrorscope.mirrorscope.svc), on --dns-port",
    )
    p.add_argument("--dns-port", type=int, default=DEFAULT_PORT, help=f"({DEFAULT_PORT})")
    p.add_argument("--dns-scheme", choices=["http", "https"], default="http")
    p.add_argument(
        "--server-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long each agent may take to answer, and then between two reads (30)",
    )


def targets(args: argparse.Namespace, token: str | None) -> list[Target]:
    """The agents the flags name (the local service when none)."""
    found = targets_from_urls(args.server or [], token)
    if args.servers_from_dns:
        found += targets_from_dns(
            args.servers_from_dns, args.dns_port, token, scheme=args.dns_scheme
        )
    return found or targets_from_urls(["http://127.0.0.1:10097"], token)


def _say(text: str) -> None:
    print(f"mirrorctl: {text}", file=sys.stderr, flush=True)


def _problems(answers: Sequence[Answer | Unanswered]) -> str:
    return "; ".join(f"{a.target.name}: {a.reason}" for a in answers if isinstance(a, Unanswered))


def fleet_get(args: argparse.Namespace, found: list[Target], params: dict[str, str]) -> int:
    if args.format != "pcapng":
        raise UsageError("--format pcap cannot say which node a packet is from: use pcapng")
    if args.start is None:  # --since (or its default): one "now" for every node
        try:
            since_s = parse_duration(args.since or "5m")
        except ValueError as e:
            raise UsageError(f"--since: {e}") from None
        now = time.time()
        params.pop("since", None)
        params |= {"start": f"{now - since_s:.6f}", "end": f"{now:.6f}"}
    answers = ask_all(found, "/api/v1/pcap", params, args.server_timeout)
    ok = [a for a in answers if isinstance(a, Answer) and a.status == 200]
    failed = [a for a in answers if isinstance(a, Unanswered) and a.status not in NOTHING]
    if not ok:
        for a in answers:
            if isinstance(a, Answer):
                a.close()
        if failed:
            raise FleetError(f"no agent gave packets ({len(answers)} asked): {_problems(answers)}")
        _say(f"no packets in that window on any of the {len(answers)} agents")
        return 1
    out, close = _sink(args.output)
    try:
        report = merge_downloads(answers, out, say=_say)
    finally:
        if close:
            out.close()
    where = "stdout" if args.output == "-" else args.output
    whole = sum(1 for name in report.packets if name not in report.failed)
    _say(
        f"wrote {report.total} packets from {whole} of "
        f"{len(answers)} agents to {where}"
        + (f"; failed: {', '.join(sorted(report.failed))}" if report.failed else "")
    )
    return PARTIAL if report.failed else 0


def fleet_follow(args: argparse.Namespace, found: list[Target], params: dict[str, str]) -> int:
    answers = ask_all(found, "/api/v1/pcap/stream", params, args.server_timeout, live=True)
    live = [a for a in answers if isinstance(a, Answer)]
    for a in answers:
        if isinstance(a, Unanswered):
            _say(f"{a.target.name}: {a.reason}")
    if not live:
        raise FleetError(f"no agent streams ({len(answers)} asked): {_problems(answers)}")
    comment = "live merge by mirrorctl of " + ", ".join(a.target.name for a in live)
    if len(live) < len(answers):
        comment += "; not answering: " + _problems(answers)
    out, close = _sink(args.write)
    try:
        report = follow_merged(live, out, say=_say, hold_s=args.hold, comment=comment)
    finally:
        if close:
            out.close()
    return PARTIAL if report.failed or len(live) < len(answers) else 0


def _sink(name: str) -> tuple[BinaryIO, bool]:
    if name == "-":
        return sys.stdout.buffer, False
    return Path(name).open("wb"), True
