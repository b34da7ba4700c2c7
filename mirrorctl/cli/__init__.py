"""The ``mirrorctl`` command line: argparse and output only. The only place that configures logging
handlers; every error mirrorscope raises on purpose derives from ``MirrorscopeError``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from capture import MirrorscopeError

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    # Command modules are imported here, not at package import, so `import mirrorctl` stays cheap.
    from mirrorctl.cli import _bench, _capture, _lab, _mirror  # noqa: PLC0415

    parser = argparse.ArgumentParser(
        prog="mirrorctl",
        description="Set up Kube-OVN traffic mirroring into mirror0 and analyse what it carries.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (_mirror, _lab, _capture, _bench):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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
