"""`capture run`'s pcap store, download limit and alert capture flags."""

from __future__ import annotations

import argparse

from mirrorctl.service import PcapApiConfig


def add_pcap_options(p: argparse.ArgumentParser) -> None:
    api = PcapApiConfig()
    g = p.add_argument_group("pcap store (GET /api/v1/pcap, POST /api/v1/alerts)")
    g.add_argument(
        "--pcap-dir",
        metavar="DIR",
        help="store every captured frame (before duplicate suppression) in rotating pcap files "
        "in DIR; downloads, live streams and alert captures read them",
    )
    g.add_argument(
        "--pcap-quota", default="1G", metavar="SIZE", help="bytes the store may hold (1G)"
    )
    g.add_argument(
        "--pcap-file-size", default="64M", metavar="SIZE", help="rotate a file at this size (64M)"
    )
    g.add_argument(
        "--pcap-file-age",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="rotate a file at this age (60)",
    )
    g.add_argument(
        "--pcap-min-free",
        default="256M",
        metavar="SIZE",
        help="free space the store leaves on the filesystem (256M)",
    )
    g.add_argument(
        "--pcap-snaplen",
        type=int,
        default=65535,
        metavar="BYTES",
        help="bytes stored per frame, apart from the analysis --snaplen (65535)",
    )
    g.add_argument(
        "--max-downloads",
        type=int,
        default=api.max_downloads,
        metavar="N",
        help=f"concurrent pcap downloads and streams; more get 429 ({api.max_downloads})",
    )
    g.add_argument(
        "--max-download-size",
        default="1G",
        metavar="SIZE",
        help="largest pcap download; a bigger window gets 413 (1G)",
    )
    g.add_argument(
        "--alert-lookback",
        type=float,
        default=api.alert_lookback_s,
        metavar="SECONDS",
        help=f"an alert's capture starts this long before it arrives ({api.alert_lookback_s:g})",
    )
    g.add_argument(
        "--alert-lookahead",
        type=float,
        default=api.alert_lookahead_s,
        metavar="SECONDS",
        help=f"and ends this long after ({api.alert_lookahead_s:g})",
    )
    g.add_argument(
        "--kept-quota",
        default="1G",
        metavar="SIZE",
        help="bytes the alert captures (DIR/kept, outside rotation) may hold (1G)",
    )
