"""`mirrorctl enable | disable | status | watch`: OVS mirroring into mirror0, Kube-OVN style."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from typing import Any

from mirrorctl import ovs
from mirrorctl.ovs import (
    DEFAULT_BRIDGE,
    DEFAULT_KUBE_OVN_GRACE_S,
    DEFAULT_OUTPUT,
    ENDPOINT_ENV,
    OVSDBUnreachableError,
    UsageError,
)

log = logging.getLogger(__name__)

NETNS_ENV = "MIRRORSCOPE_NETNS"


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--ovsdb",
        metavar="ENDPOINT",
        help=f"unix:PATH or tcp:HOST:PORT (env {ENDPOINT_ENV}; default Kube-OVN's "
        "unix:/var/run/openvswitch/db.sock)",
    )
    common.add_argument("--bridge", default=DEFAULT_BRIDGE, help="OVS bridge (default br-int)")
    common.add_argument(
        "--netns",
        metavar="NAME",
        help=f"network namespace of the bridge's links and mirror0 (env {NETNS_ENV}; "
        "default the host's)",
    )
    return common


def _selection(parser: argparse.ArgumentParser, *, iface: bool = True) -> None:
    parser.add_argument(
        "--global", dest="select_all", action="store_true", help="all traffic on the bridge"
    )
    parser.add_argument(
        "--pod",
        action="append",
        default=[],
        metavar="NS/NAME",
        help="a pod, both directions (repeatable)",
    )
    parser.add_argument(
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="every pod of a namespace, both directions (repeatable)",
    )
    if iface:
        parser.add_argument(
            "--iface",
            default=DEFAULT_OUTPUT,
            help="output interface: created as an OVS internal port unless a link of that name "
            "exists (default mirror0)",
        )


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this module's subcommands to the CLI."""
    common = _common()
    enable = sub.add_parser(
        "enable", parents=[common], help="mirror all traffic, pods or namespaces to mirror0"
    )
    _selection(enable)
    enable.set_defaults(handler=_enable)
    disable = sub.add_parser(
        "disable", parents=[common], help="stop mirroring exactly what is named"
    )
    _selection(disable)
    disable.set_defaults(handler=_disable)
    status = sub.add_parser(
        "status", parents=[common], help="every mirror on the bridge, with counters"
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=_status)
    watch = sub.add_parser(
        "watch",
        parents=[common],
        help="keep the selection in place (restores it after wipes and restarts)",
    )
    _selection(watch)
    _follow_options(watch)
    watch.set_defaults(handler=_watch)


def _follow_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--follow-kube-ovn",
        action="store_true",
        help="mirror, both directions, the pods Kube-OVN's own mirror m0 selects (annotation "
        "ovn.kubernetes.io/mirror), following it as it changes",
    )
    parser.add_argument(
        "--kube-ovn-grace-s",
        type=float,
        default=DEFAULT_KUBE_OVN_GRACE_S,
        metavar="SECONDS",
        help="with --follow-kube-ovn: keep the last selection this long after kube-ovn-cni's "
        f"restart wiped m0, until it is written again (default {DEFAULT_KUBE_OVN_GRACE_S:g})",
    )


def _where(args: argparse.Namespace) -> tuple[str, str | None]:
    endpoint = ovs.resolve_endpoint(args.ovsdb, os.environ)
    netns = args.netns or os.environ.get(NETNS_ENV) or None
    return endpoint, netns


def _requested(args: argparse.Namespace, verb: str) -> ovs.MirrorSpec:
    spec = ovs.spec_from_args(args.select_all, args.pod, args.namespace)
    if not spec:
        raise UsageError(f"{verb} needs --global, --pod NS/NAME or --namespace NS")
    return spec


def _enable(args: argparse.Namespace) -> int:
    endpoint, netns = _where(args)
    add = _requested(args, "enable")
    with ovs.connect(endpoint) as session:
        snap = session.snapshot()
        ovs.require_bridge(snap, args.bridge)
        ovs.require_selection(snap, add, args.bridge)
        spec = (ovs.recorded_spec(snap, args.bridge, args.iface) or ovs.MirrorSpec()) | add
        report = ovs.reconcile(
            session, spec, bridge=args.bridge, output=args.iface, netns=netns, snapshot=snap
        )
    for line in ovs.describe_plan(report.plan):
        print(line)
    return 0


def _disable(args: argparse.Namespace) -> int:
    endpoint, netns = _where(args)
    drop = _requested(args, "disable")
    with ovs.connect(endpoint) as session:
        snap = session.snapshot()
        ovs.require_bridge(snap, args.bridge)
        current = ovs.recorded_spec(snap, args.bridge, args.iface) or ovs.MirrorSpec()
        notes = [f"pod {p} was not enabled by mirrorctl" for p in sorted(drop.pods - current.pods)]
        notes += [
            f"namespace {n} was not enabled by mirrorctl"
            for n in sorted(drop.namespaces - current.namespaces)
        ]
        spec = current - drop
        notes += [
            f"pod {p} stays mirrored: its namespace {p.namespace} is selected"
            for p in sorted(drop.pods)
            if p.namespace in spec.namespaces
        ]
        if drop.select_all:
            br = snap.bridges[args.bridge]
            notes += [
                f"mirror {m.name!r} (owner {ovs.owner_of(m)}) still mirrors all traffic: "
                "mirrorctl leaves mirrors it does not own alone"
                for u in br.mirrors
                if (m := snap.mirrors.get(u))
                and m.select_all
                and ovs.owner_of(m) is not ovs.Owner.MIRRORCTL
            ]
        report = ovs.reconcile(
            session, spec, bridge=args.bridge, output=args.iface, netns=netns, snapshot=snap
        )
    for line in notes + ovs.describe_plan(report.plan):
        print(line)
    return 0


def _status(args: argparse.Namespace) -> int:
    endpoint, netns = _where(args)
    with ovs.connect(endpoint) as session:
        snap = session.snapshot()
    status = ovs.collect_status(snap, endpoint=endpoint, bridge=args.bridge, netns=netns)
    if args.json:
        json.dump(ovs.status_json(status), sys.stdout, indent=2, sort_keys=True)
        print()
    else:
        print(ovs.format_status(status))
    return 0


def _watch(args: argparse.Namespace) -> int:
    endpoint, netns = _where(args)
    spec = ovs.spec_from_args(args.select_all, args.pod, args.namespace)
    if args.follow_kube_ovn:
        if spec:
            raise UsageError("--follow-kube-ovn takes its selection from m0: drop the others")
        return _keep(args, follower(args.bridge, args.kube_ovn_grace_s), endpoint, netns)
    try:
        with ovs.connect(endpoint) as session:
            snap = session.snapshot()
            ovs.require_bridge(snap, args.bridge)
            spec = spec | (ovs.recorded_spec(snap, args.bridge, args.iface) or ovs.MirrorSpec())
    except OVSDBUnreachableError as exc:
        if not spec:
            raise
        log.warning("%s; will keep retrying", exc)
    if not spec:
        raise UsageError(
            f"nothing to keep: pass --global, --pod or --namespace "
            f"(mirrorctl has no selection recorded on {args.bridge})"
        )
    return _keep(args, spec, endpoint, netns)


def follower(bridge: str, grace_s: float) -> ovs.KubeOvnFollower:
    """The spec source of --follow-kube-ovn (``watch`` and ``capture run --keep-mirror``)."""
    if grace_s < 0:
        raise UsageError(f"--kube-ovn-grace-s must not be negative, not {grace_s:g}")
    return ovs.KubeOvnFollower(bridge=bridge, grace_s=grace_s)


def _keep(
    args: argparse.Namespace,
    spec: ovs.MirrorSpec | ovs.SpecSource,
    endpoint: str,
    netns: str | None,
) -> int:
    keeper = ovs.MirrorKeeper(endpoint, spec, bridge=args.bridge, output=args.iface, netns=netns)
    stop = threading.Event()

    def _stop(_signum: int, _frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    what = spec.describe() if isinstance(spec, ovs.MirrorSpec) else "the pods Kube-OVN's m0 selects"
    print(f"keeping {what} on {args.bridge} -> {args.iface}; Ctrl-C to stop", flush=True)
    try:
        keeper.run(stop)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    print(f"stopped; {keeper.restores} change(s) applied", flush=True)
    return 0
