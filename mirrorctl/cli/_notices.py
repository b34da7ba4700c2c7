"""The --notice-* flags of `capture run` and `capture read` (defaults from ``NoticeOptions``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from analyzers import NoticeOptions


def add_notice_options(p: argparse.ArgumentParser, *, offline: bool = False) -> None:
    """Add the detectors' thresholds and windows; ``capture read`` also gets ``--notices``."""
    d = NoticeOptions()
    if offline:
        p.add_argument(
            "--notices",
            metavar="OUT.jsonl",
            type=Path,
            help="run the notice detectors and write their notices to this file as JSON lines",
        )
    else:
        p.add_argument(
            "--no-notices",
            action="store_true",
            help="do not run the notice detectors (port_scan, address_scan, syn_flood, ...)",
        )
    flags: list[tuple[str, type, object, str]] = [
        ("--notice-port-scan", int, d.port_scan_threshold,
         "port_scan past this many distinct failed ports of one destination"),
        ("--notice-port-scan-window", float, d.port_scan_window_s,
         "port_scan counting window, seconds"),
        ("--notice-address-scan", int, d.address_scan_threshold,
         "address_scan past this many distinct failed destinations on one port"),
        ("--notice-address-scan-window", float, d.address_scan_window_s,
         "address_scan counting window, seconds"),
        ("--notice-syn-flood", int, d.syn_flood_threshold,
         "syn_flood past this many half-open TCP connections to one destination"),
        ("--notice-syn-flood-window", float, d.syn_flood_window_s,
         "syn_flood counting window, seconds"),
        ("--notice-suppress", float, d.suppress_s,
         "one notice per note, source and target this often, seconds"),
        ("--notice-learn", float, d.new_peers_learn_s,
         "new_external_peer: seconds of learning before new peers are raised"),
        ("--notice-max-entries", int, d.max_entries,
         "entries each detector keeps; beyond, the least recently seen are dropped"),
    ]  # fmt: skip
    for flag, kind, default, text in flags:
        p.add_argument(
            flag,
            type=kind,
            default=default,
            metavar="SECONDS" if kind is float else "N",
            help=f"{text} (default {default:g})",
        )
    p.add_argument(
        "--notice-new-peers",
        action="store_true",
        help="raise new_external_peer when a pod talks to an external address it did not talk to "
        "in the learning window (off by default)",
    )
