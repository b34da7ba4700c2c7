"""`mirrorctl capture run | read`: the command line of the capture service and offline analyser.

Argparse and output only: the pipeline is assembled in ``mirrorctl.service`` (one worker,
``--workers N`` and ``capture read``), whose modules load only when the command that runs needs
them.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from analyzers import PipelineOptions
from capture import DEFAULT_COALESCE_MS
from exporters import (
    DEFAULT_ACTIVE_TIMEOUT_S,
    DEFAULT_LISTEN,
    DEFAULT_MTU,
    CardinalityConfig,
    MetricsConfig,
)
from mirrorctl import ovs, service
from mirrorctl.cli._mirror import follower
from mirrorctl.cli._notices import add_notice_options
from mirrorctl.cli._pcapflags import add_pcap_options
from mirrorctl.ovs import DEFAULT_BRIDGE, DEFAULT_KUBE_OVN_GRACE_S, DEFAULT_OUTPUT, ENDPOINT_ENV
from mirrorctl.service import NETNS_ENV, TOKEN_ENV


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``capture run`` and ``capture read`` to the CLI."""
    capture = sub.add_parser(
        "capture",
        help="capture mirror0 into flows, metrics and records, or analyse pcap files",
        description="The capture service (run) and the offline analyser (read).",
    )
    actions = capture.add_subparsers(dest="capture_command", required=True, metavar="ACTION")

    run = actions.add_parser("run", help="the capture service: mirror0 -> flows, /metrics, records")
    run.add_argument(
        "--iface", default=DEFAULT_OUTPUT, help="interface to capture (default mirror0)"
    )
    run.add_argument(
        "--netns", metavar="NAME", help=f"network namespace of the interface (env {NETNS_ENV})"
    )
    run.add_argument("--filter", metavar="EXPR", help="tcpdump filter expression (libpcap BPF)")
    run.add_argument("--snaplen", type=int, default=65535, help="bytes kept per frame (65535)")
    run.add_argument(
        "--workers", type=int, default=1, help="capture processes in one fanout group (default 1)"
    )
    run.add_argument(
        "--records",
        metavar="DIR",
        type=Path,
        help="write flow records as JSON lines into DIR (hourly files, or --rotate-mb)",
    )
    run.add_argument(
        "--rotate-mb", type=int, default=256, help="start a new records file past this size (256)"
    )
    run.add_argument(
        "--records-quota",
        metavar="SIZE",
        help="keep the records directory under SIZE (500M, 10G): oldest files deleted first",
    )
    run.add_argument(
        "--records-retention",
        metavar="AGE",
        help="delete records files whose last flow ended more than AGE ago (12h, 7d)",
    )
    run.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="ADDR:PORT",
        help=f"serve /metrics /healthz /readyz and the /api/ here (default {DEFAULT_LISTEN}; "
        "'off' to disable)",
    )
    run.add_argument(
        "--token-file",
        metavar="FILE",
        type=Path,
        help=f"bearer token (first line of FILE) every /api/ request must carry; /metrics and the "
        f"probes stay open (env {TOKEN_ENV}; without either the API is open)",
    )
    run.add_argument(
        "--tls-cert",
        metavar="FILE",
        type=Path,
        help="serve HTTPS with this PEM certificate (chain); needs --tls-key",
    )
    run.add_argument("--tls-key", metavar="FILE", type=Path, help="the PEM key of --tls-cert")
    run.add_argument(
        "--peers",
        action="extend",
        nargs="+",
        metavar="URL",
        help="base URLs of the other nodes' services: the page links each pod to the same pod "
        "there",
    )
    run.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long")
    run.add_argument(
        "--keep-mirror",
        choices=["none", "global", "follow-kube-ovn"],
        default="none",
        help="also keep a mirror into --iface applied: global, like `mirrorctl watch --global`, "
        "or the pods Kube-OVN's m0 selects, like `mirrorctl watch --follow-kube-ovn`",
    )
    run.add_argument(
        "--kube-ovn-grace-s",
        type=float,
        default=DEFAULT_KUBE_OVN_GRACE_S,
        metavar="SECONDS",
        help="with --keep-mirror follow-kube-ovn: keep the last selection this long after "
        f"kube-ovn-cni's restart wiped m0 (default {DEFAULT_KUBE_OVN_GRACE_S:g})",
    )
    run.add_argument("--block-mb", type=int, default=4, help="ring block size in MiB (default 4)")
    run.add_argument("--blocks", type=int, default=64, help="ring blocks (default 64)")
    run.add_argument(
        "--coalesce-ms",
        type=int,
        default=DEFAULT_COALESCE_MS,
        metavar="MS",
        help="after a wake-up, wait up to this long (or until a quarter of the ring is filled) "
        f"for more ring blocks: fewer cold starts, less CPU; 0 works at once "
        f"(default {DEFAULT_COALESCE_MS})",
    )
    run.add_argument("--pidfile", type=Path, help="write the service's pid here while it runs")
    defaults = CardinalityConfig()
    window_s = MetricsConfig(node="").coverage_window_s
    run.add_argument(
        "--metrics-top-k",
        type=int,
        default=defaults.top_k,
        metavar="N",
        help=f"remotes per pod with their own pod-pair series; the rest fold into 'other' "
        f"(default {defaults.top_k})",
    )
    run.add_argument(
        "--metrics-max-series",
        type=int,
        default=defaults.max_series,
        metavar="N",
        help=f"hard bound on the series /metrics can hold (default {defaults.max_series})",
    )
    run.add_argument(
        "--metrics-grace-s",
        type=float,
        default=defaults.grace_s,
        metavar="SECONDS",
        help=f"keep a deleted pod's series this long (default {defaults.grace_s:g})",
    )
    run.add_argument(
        "--coverage-window-s",
        type=float,
        default=window_s,
        metavar="SECONDS",
        help=f"window of mirrorscope_capture_coverage_ratio (default {window_s:g})",
    )
    _analysis_options(run)
    _ipfix_options(run)
    add_notice_options(run)
    add_pcap_options(run)
    _ovsdb_options(run)
    run.set_defaults(handler=_run)

    read = actions.add_parser(
        "read",
        help="analyse pcap/pcapng files: flow records as JSON lines on stdout, summary on stderr",
    )
    read.add_argument("files", nargs="+", metavar="FILE", type=Path)
    read.add_argument(
        "--identity",
        metavar="FILE",
        type=Path,
        help='JSON naming addresses: {"10.16.0.5": "ns/pod", "100.64.0.2": "node/NAME"} or a '
        "lab state file (lab.json)",
    )
    read.add_argument(
        "--filter",
        metavar="EXPR",
        help="tcpdump filter expression, run by libpcap's BPF interpreter on each frame",
    )
    read.add_argument("--no-summary", action="store_true", help="no summary on stderr")
    read.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes, each analysing a share of the flows (records only; default 1)",
    )
    _analysis_options(read)
    _ipfix_options(read)
    add_notice_options(read, offline=True)
    _ovsdb_options(read, offline=True)
    read.set_defaults(handler=_read)


def _analysis_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--node", metavar="NAME", help="this node's name (default: from OVSDB, else hostname)"
    )
    max_flows = PipelineOptions().max_flows
    p.add_argument(
        "--max-flows", type=int, default=max_flows, help=f"flow table bound ({max_flows})"
    )
    p.add_argument(
        "--no-dedup", action="store_true", help="count mirrored copies of a packet separately"
    )


def _ipfix_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ipfix",
        action="append",
        default=[],
        metavar="[tcp:]HOST:PORT",
        help="export flows over IPFIX to this collector (UDP unless tcp:; repeatable)",
    )
    p.add_argument(
        "--ipfix-mtu",
        type=int,
        default=DEFAULT_MTU,
        metavar="BYTES",
        help=f"largest IPFIX message (default {DEFAULT_MTU})",
    )
    p.add_argument(
        "--ipfix-active-timeout",
        type=float,
        default=DEFAULT_ACTIVE_TIMEOUT_S,
        metavar="SECONDS",
        help=f"export running flows this often (default {DEFAULT_ACTIVE_TIMEOUT_S:g})",
    )


def _ovsdb_options(p: argparse.ArgumentParser, *, offline: bool = False) -> None:
    p.add_argument(
        "--ovsdb",
        metavar="ENDPOINT",
        help=(
            "read pod identity once from this OVSDB (unix:PATH or tcp:HOST:PORT)"
            if offline
            else f"OVSDB for pod identity and mirror counters (env {ENDPOINT_ENV}; default "
            "unix:/var/run/openvswitch/db.sock)"
        ),
    )
    p.add_argument("--bridge", default=DEFAULT_BRIDGE, help="OVS bridge (default br-int)")


def _read(args: argparse.Namespace) -> int:
    return service.read_files(args)


def _run(args: argparse.Namespace) -> int:
    cfg = service.run_config(args)
    keep: ovs.MirrorSpec | ovs.SpecSource | None = None
    if args.keep_mirror == "global":
        keep = ovs.MirrorSpec(select_all=True)
    elif args.keep_mirror == "follow-kube-ovn":
        keep = follower(args.bridge, args.kube_ovn_grace_s)
    if args.pidfile is not None:
        args.pidfile.write_text(f"{os.getpid()}\n", encoding="utf-8")
    try:
        if cfg.workers == 1:
            return service.run_single(cfg, args.listen, keep)
        return service.run_multi(cfg, args.listen, keep)
    finally:
        if args.pidfile is not None:
            args.pidfile.unlink(missing_ok=True)
