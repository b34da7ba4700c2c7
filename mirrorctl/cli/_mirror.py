"""`mirrorctl enable | disable | status | watch`: OVS mirroring into mirror0, Kube-OVN style, or
into a GRE/ERSPAN tunnel to a collector (remote mirroring)."""

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
            default=None,
            help="output interface: created as an OVS internal port unless a link of that name "
            "exists (default mirror0; with --output-tunnel the tunnel port, default "
            "gre-mirror or erspan-mirror)",
        )


def _tunnel_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "remote mirroring", "send the copies to a collector host in a tunnel instead of mirror0"
    )
    group.add_argument(
        "--output-tunnel",
        choices=["gre", "erspan"],
        help="the mirror's output is a GRE or ERSPAN port on the bridge",
    )
    group.add_argument("--remote-ip", metavar="IP", help="the collector's IPv4 address")
    group.add_argument(
        "--key", type=int, metavar="K", help="GRE key, or the ERSPAN session id (0-1023)"
    )
    group.add_argument(
        "--erspan-ver",
        type=int,
        choices=[1, 2],
        help="1: ERSPAN type II (default), 2: type III",
    )
    group.add_argument(
        "--erspan-idx", type=int, metavar="N", help="type II: the port index (default 1)"
    )
    group.add_argument(
        "--erspan-dir", type=int, choices=[0, 1], help="type III: 0 ingress (default), 1 egress"
    )
    group.add_argument(
        "--erspan-hwid", type=int, metavar="N", help="type III: the hardware id (default 0)"
    )


def _tunnel(args: argparse.Namespace) -> ovs.TunnelSpec | None:
    if args.output_tunnel is None:
        erspan = (args.erspan_ver, args.erspan_idx, args.erspan_dir, args.erspan_hwid)
        if args.remote_ip is not None or args.key is not None or any(v is not None for v in erspan):
            raise UsageError("--remote-ip, --key and --erspan-* need --output-tunnel gre|erspan")
        return None
    return ovs.tunnel_from_args(
        args.output_tunnel,
        args.remote_ip,
        key=args.key,
        erspan_ver=args.erspan_ver,
        erspan_idx=args.erspan_idx,
        erspan_dir=args.erspan_dir,
        erspan_hwid=args.erspan_hwid,
    )


def _output(args: argparse.Namespace, tunnel: ovs.TunnelSpec | None) -> str:
    if args.iface:
        return str(args.iface)
    return tunnel.default_port if tunnel is not None else DEFAULT_OUTPUT


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this module's subcommands to the CLI."""
    common = _common()
    enable = sub.add_parser(
        "enable",
        parents=[common],
        help="mirror all traffic, pods or namespaces to mirror0 (or to a GRE/ERSPAN collector)",
    )
    _selection(enable)
    _tunnel_options(enable)
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
    _tunnel_options(watch)
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
    tunnel = _tunnel(args)
    output = _output(args, tunnel)
    with ovs.connect(endpoint) as session:
        snap = session.snapshot()
        ovs.require_bridge(snap, args.bridge)
        ovs.require_selection(snap, add, args.bridge)
        spec = (ovs.recorded_spec(snap, args.bridge, output) or ovs.MirrorSpec()) | add
        report = ovs.reconcile(
            session,
            spec,
            bridge=args.bridge,
            output=output,
            netns=netns,
            snapshot=snap,
            tunnel=tunnel,
        )
    for line in ovs.describe_plan(report.plan):
        print(line)
    return 0


def _disable(args: argparse.Namespace) -> int:
    endpoint, netns = _where(args)
    drop = _requested(args, "disable")
    output = _output(args, None)
    with ovs.connect(endpoint) as session:
        snap = session.snapshot()
        ovs.require_bridge(snap, args.bridge)
        current = ovs.recorded_spec(snap, args.bridge, output) or ovs.MirrorSpec()
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
            session, spec, bridge=args.bridge, output=output, netns=netns, snapshot=snap
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
    tunnel = _tunnel(args)
    output = _output(args, tunnel)
    if args.follow_kube_ovn:
        if spec:
            raise UsageError("--follow-kube-ovn takes its selection from m0: drop the others")
        source = follower(args.bridge, args.kube_ovn_grace_s)
        return _keep(args, source, endpoint, netns, output=output, tunnel=tunnel)
    try:
        with ovs.connect(endpoint) as session:
            snap = session.snapshot()
            ovs.require_bridge(snap, args.bridge)
            spec = spec | (ovs.recorded_spec(snap, args.bridge, output) or ovs.MirrorSpec())
    except OVSDBUnreachableError as exc:
        if not spec:
            raise
        log.warning("%s; will keep retrying", exc)
    if not spec:
        raise UsageError(
            f"nothing to keep: pass --global, --pod or --namespace "
            f"(mirrorctl has no selection recorded on {args.bridge})"
        )
    return _keep(args, spec, endpoint, netns, output=output, tunnel=tunnel)


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
    *,
    output: str,
    tunnel: ovs.TunnelSpec | None,
) -> int:
    keeper = ovs.MirrorKeeper(
        endpoint, spec, bridge=args.bridge, output=output, netns=netns, tunnel=tunnel
    )
    stop = threading.Event()

    def _stop(_signum: int, _frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    what = spec.describe() if isinstance(spec, ovs.MirrorSpec) else "the pods Kube-OVN's m0 selects"
    target = output if tunnel is None else f"{output} ({tunnel.describe()})"
    print(f"keeping {what} on {args.bridge} -> {target}; Ctrl-C to stop", flush=True)
    try:
        keeper.run(stop)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    print(f"stopped; {keeper.restores} change(s) applied", flush=True)
    return 0
