"""`mirrorctl report`: a flow summary of stored records or of pcap files, in five formats.

Argparse and output only: records are loaded and aggregated by ``exporters`` (``records_summary``
and ``report_of`` for a records directory, ``records_frame`` and ``build_report`` otherwise,
``render``); pcaps are analysed by the embedding API with
``capture read``'s identity options.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analyzers import FlowRecord
from mirrorctl.cli._capture import _analysis_options, _ovsdb_options
from mirrorctl.ovs import UsageError

if TYPE_CHECKING:
    from mirrorctl.fleet import Target


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``report`` to the CLI."""
    p = sub.add_parser(
        "report",
        help="flow summary of a window of stored records, or of pcap files",
        description="Who talked to whom, how much and how well: per pod, namespace, pair, "
        "protocol or port. A window counts the records that ended in it (ts + duration).",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--records", metavar="DIR", type=Path, help="the service's records directory")
    src.add_argument(
        "--pcap", metavar="FILE", type=Path, nargs="+", help="pcap/pcapng files, analysed here"
    )
    src.add_argument(
        "--server",
        metavar="URL",
        action="append",
        help="a running service (http://node:9477); repeat for several: one report over the "
        "union of their flows (records that ended in the window and active flows)",
    )
    src.add_argument(
        "--servers-from-dns",
        metavar="NAME",
        help="every address NAME resolves to (the chart's headless Service), on --dns-port",
    )
    p.add_argument("--dns-port", type=int, default=10097, help="--servers-from-dns (10097)")
    p.add_argument("--dns-scheme", choices=["http", "https"], default="http")
    p.add_argument(
        "--token-file",
        metavar="FILE",
        type=Path,
        help="--server: the services' bearer token (first line of FILE; env MIRRORSCOPE_TOKEN)",
    )
    report_options(p)
    p.add_argument(
        "--identity",
        metavar="FILE",
        type=Path,
        help='--pcap: JSON naming addresses, {"10.16.0.5": "ns/pod"}, or a lab state file',
    )
    p.add_argument("--filter", metavar="EXPR", help="--pcap: tcpdump filter expression")
    p.add_argument(
        "--dissect",
        action="store_true",
        help="--pcap: add an application-protocol breakdown by tshark's dissectors (pyshark; "
        "every packet, --filter does not apply)",
    )
    _analysis_options(p)
    _ovsdb_options(p, offline=True)
    p.set_defaults(handler=_report)


def report_options(p: argparse.ArgumentParser) -> None:
    """The window and output flags, shared with ``kubectl mirrorscope report``."""
    from exporters import BY, FORMATS  # noqa: PLC0415 - names only; pandas loads on first use

    p.add_argument("--since", metavar="D", help="the last D: 90s, 15m, 1h, 7d (default 1h)")
    p.add_argument("--start", metavar="T", help="window start: RFC 3339 or epoch seconds")
    p.add_argument("--end", metavar="T", help="window end (exclusive): RFC 3339 or epoch seconds")
    p.add_argument("--by", choices=BY, default="pod", help="the main table (default pod)")
    p.add_argument("--format", choices=FORMATS, default="table", help="output (default table)")
    p.add_argument("-o", "--output", metavar="FILE", type=Path, help="write here, not stdout")
    p.add_argument(
        "--top", type=int, metavar="N", help="rows per table (default 10; csv/json rows: all)"
    )
    p.add_argument("--interval", metavar="D", help="time series step (default: ~120 steps)")


def _window(args: argparse.Namespace) -> Any:
    from exporters import Window, parse_duration, parse_time  # noqa: PLC0415

    try:
        if args.since and (args.start or args.end):
            raise ValueError("give --since or --start/--end, not both")
        if args.start or args.end:
            start = parse_time(args.start) if args.start else None
            end = parse_time(args.end) if args.end else None
            return Window(start, end)
        if args.since or getattr(args, "pcap", None) is None:  # only a pcap defaults to all
            return Window.since(parse_duration(args.since or "1h"))
        return Window()  # a pcap: all of it
    except ValueError as e:
        raise UsageError(str(e)) from None


def _progress(done: int, total: int, path: Path) -> None:
    end = "\n" if done == total else ""
    print(f"\rmirrorctl: read {done}/{total} record files", end=end, file=sys.stderr, flush=True)


def _pcap_records(args: argparse.Namespace, notices: io.StringIO) -> Iterator[FlowRecord]:
    """The pcaps' flow records; the detectors' notices, as JSON lines, into ``notices``."""
    from mirrorctl import service  # noqa: PLC0415

    identity, node = service.identity_from_args(args)
    options = service.pipeline_options(args)
    for path in args.pcap:
        yield from service.analyse_pcap(
            path,
            identity=identity,
            filter=args.filter,
            node=node,
            options=options,
            notices=notices,
        )


def _servers(targets: list[Target], window: Any) -> tuple[Any, str, list[dict[str, Any]]]:
    """The union of the services' flows, and of their notices; one that does not answer is
    named, the rest reported."""
    import exporters  # noqa: PLC0415

    def fetch(t: Target) -> Any:
        return exporters.fetch_flows(t.url, window, t.headers, context=t.context)

    def notices(t: Target) -> Any:
        return exporters.fetch_notices(t.url, window, t.headers, context=t.context)

    with ThreadPoolExecutor(max_workers=min(32, 2 * len(targets))) as pool:  # all at once
        noticed = pool.map(notices, targets)
        answers = list(pool.map(fetch, targets))
        notice_answers = list(noticed)
    failed = [t.name for t, a in zip(targets, answers, strict=True) if a.error is not None]
    for t, a in zip(targets, answers, strict=True):
        if a.error is not None:
            print(f"mirrorctl: server {t.name} did not answer: {a.error}", file=sys.stderr)
    source = "servers " + ", ".join(
        t.name for t, a in zip(targets, answers, strict=True) if a.error is None
    )
    if failed:
        source += " (no answer: " + ", ".join(failed) + ")"
    found: list[dict[str, Any]] = []
    for t, a, n in zip(targets, answers, notice_answers, strict=True):
        if isinstance(n, list):
            found.extend(n)
        elif a.error is None:  # a service older than the notices API: its flows still count
            print(f"mirrorctl: server {t.name} gave no notices: {n}", file=sys.stderr)
    return exporters.report_frame(exporters.union(answers)), source, found


def remote_report(args: argparse.Namespace, targets: list[Target]) -> int:
    """One report over the union of ``targets``' flows (``--server``, DNS or the kubectl
    plugin's proxied agents), written as ``args`` asks."""
    import exporters  # noqa: PLC0415

    window, interval = _window_and_interval(args)
    df, source, notices = _servers(targets, window)
    report = exporters.build_report(df, window, source, top=args.top or 10, interval_s=interval)
    report = exporters.with_notices(report, notices)
    _write(args, exporters.render(report, args.format, args.by, args.top))
    return 0


def _window_and_interval(args: argparse.Namespace) -> tuple[Any, float | None]:
    import exporters  # noqa: PLC0415

    if args.top is not None and args.top < 1:
        raise UsageError(f"--top must be at least 1, not {args.top}")
    window = _window(args)
    try:
        interval = exporters.parse_duration(args.interval) if args.interval else None
    except ValueError as e:
        raise UsageError(str(e)) from None
    return window, interval


def _write(args: argparse.Namespace, text: str) -> None:
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")


def _report(args: argparse.Namespace) -> int:
    import exporters  # noqa: PLC0415

    if args.dissect and args.pcap is None:
        raise UsageError("--dissect needs --pcap: it runs tshark's dissectors on the packets")
    window, interval = _window_and_interval(args)
    if args.records is not None:
        progress = _progress if sys.stderr.isatty() else None
        # whole files through their stored summaries, the window's edges read (README, "Record
        # storage")
        summary, files = exporters.records_summary(args.records, window, interval, progress)
        source = f"records {args.records} ({files} files)"
        report = exporters.report_of(
            summary, window, source, top=args.top or 10, interval_s=interval
        )
        report = exporters.with_notices(report, exporters.load_notices(args.records, window))
        _write(args, exporters.render(report, args.format, args.by, args.top))
        return 0
    if args.server is not None or args.servers_from_dns is not None:
        from mirrorctl import service  # noqa: PLC0415
        from mirrorctl.fleet import targets_from_dns, targets_from_urls  # noqa: PLC0415

        token = service.resolve_token(args.token_file, os.environ)
        if args.server is not None:
            targets = targets_from_urls(args.server, token)
        else:
            targets = targets_from_dns(
                args.servers_from_dns, args.dns_port, token, scheme=args.dns_scheme
            )
        # named by their URLs in messages and the report's source; the plugin's by node
        return remote_report(args, [dataclasses.replace(t, name=t.url) for t in targets])
    stream = io.StringIO()
    df = exporters.records_frame(_pcap_records(args, stream), window)
    source = "pcap " + ", ".join(str(p) for p in args.pcap)
    notices = [
        n
        for n in exporters.parse_notice_lines(stream.getvalue())
        if (window.start is None or window.start <= n["ts"])
        and (window.end is None or n["ts"] < window.end)
    ]
    report = exporters.build_report(df, window, source, top=args.top or 10, interval_s=interval)
    report = exporters.with_notices(report, notices)
    if args.dissect:
        apps = exporters.app_protocols(args.pcap)
        report = dataclasses.replace(report, apps=apps)
    _write(args, exporters.render(report, args.format, args.by, args.top))
    return 0
