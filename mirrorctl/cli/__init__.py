"""The ``mirrorctl`` command line: argparse and output only. The only place that configures logging
handlers; every error mirrorscope raises on purpose derives from ``MirrorscopeError``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from capture import MirrorscopeError
from mirrorctl.cli import _settings

__all__ = ["build_parser", "kubectl_main", "main"]

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    # Command modules are imported here, not at package import, so `import mirrorctl` stays cheap.
    from mirrorctl.cli import _bench, _capture, _lab, _mirror, _pcap, _report  # noqa: PLC0415

    parser = argparse.ArgumentParser(
        prog="mirrorctl",
        description="Set up Kube-OVN traffic mirroring into mirror0 and analyse what it carries.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        help="TOML file of flag values, top level or per command ([capture.run]); env "
        "MIRRORSCOPE_CONFIG. Every flag is also read from MIRRORSCOPE_<FLAG>, e.g. "
        "MIRRORSCOPE_KEEP_MIRROR; the command line wins, then the environment, then the file",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (_mirror, _lab, _capture, _pcap, _report, _bench):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    try:
        _settings.settle(parser, argv, os.environ)
    except MirrorscopeError as exc:
        print(f"mirrorctl: error: {exc}", file=sys.stderr)
        return exc.exit_code
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    handler: Handler = args.handler
    try:
        return handler(args)
    except MirrorscopeError as exc:
        print(f"mirrorctl: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`mirrorctl capture read x.pcap | head`): not an error worth a
        # traceback. Point stdout at /dev/null so the interpreter's final flush stays quiet too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def kubectl_main(argv: Sequence[str] | None = None) -> int:
    """The ``kubectl-mirrorscope`` console script (``kubectl mirrorscope ...``)."""
    from mirrorctl.cli import _kubectl  # noqa: PLC0415 - only the plugin pays for it

    return _kubectl.main(argv)
