"""`mirrorctl lab up|down|status`: the local lab from the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mirrorctl import lab as lab_api
from mirrorctl import ovs
from mirrorctl.lab import KubeOvnMirror, LabState, RemoteMirror

if TYPE_CHECKING:
    from mirrorctl.lab import LabStatus


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add this module's subcommands to the CLI."""
    lab = sub.add_parser(
        "lab",
        help="a local Kube-OVN-like node: OVS, br-int and pods in network namespaces",
        description="Build, inspect or remove a local lab laid out as Kube-OVN lays out a node.",
    )
    actions = lab.add_subparsers(dest="lab_command", required=True, metavar="ACTION")

    up = actions.add_parser("up", help="create the lab (or finish a half-built one)")
    _common(up)
    up.add_argument("--pods", type=int, default=4, help="number of pods (default 4)")
    up.add_argument(
        "--kube-ovn-mirror",
        choices=[m.value for m in KubeOvnMirror],
        default=KubeOvnMirror.NONE.value,
        help="also write what kube-ovn-cni writes: mirror0 and Mirror m0 "
        "(global: select_all; pods: no selection) (default none)",
    )
    up.add_argument(
        "--collector",
        action="store_true",
        help="also a collector namespace (ms-NAME-collector) reached over br-phy, for remote "
        "mirrors: mirrorctl enable --output-tunnel gre|erspan --remote-ip 10.250.0.2",
    )
    up.add_argument(
        "--remote-mirror",
        choices=[m.value for m in RemoteMirror],
        help="also mirror all of br-int into a tunnel to the collector (implies --collector): "
        "gre, erspan1 (ERSPAN type II) or erspan2 (type III)",
    )
    up.set_defaults(handler=_up)

    down = actions.add_parser("down", help="remove everything the lab created")
    _common(down)
    down.set_defaults(handler=_down)

    status = actions.add_parser("status", help="show whether each piece of the lab is there")
    _common(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=_status)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", default="lab", help="lab name (default lab)")
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="where the lab keeps OVSDB, sockets, pidfiles and logs "
        "(default /run/mirrorscope/lab-NAME)",
    )


def _up(args: argparse.Namespace) -> int:
    lab = lab_api.Lab(
        args.name,
        args.run_dir,
        pods=args.pods,
        kube_ovn_mirror=args.kube_ovn_mirror,
        collector=args.collector or args.remote_mirror is not None,
    )
    state = lab.up()
    print(format_up(state))
    if args.remote_mirror is not None:
        report = lab_api.remote_mirror(state, args.remote_mirror)
        for line in ovs.describe_plan(report.plan):
            print(line)
    return 0


def _down(args: argparse.Namespace) -> int:
    lab = lab_api.Lab(args.name, args.run_dir)
    was_up = lab.state() is not None
    lab.down()
    print(f"lab {args.name} is down" if was_up else f"lab {args.name} was not up; nothing left")
    return 0


def _status(args: argparse.Namespace) -> int:
    lab = lab_api.Lab(args.name, args.run_dir)
    status = lab.status()
    if status is None:
        if args.json:
            print(json.dumps({"name": args.name, "up": False, "run_dir": str(lab.run_dir)}))
        else:
            print(f"lab {args.name} is down (no state in {lab.run_dir})")
        return 1
    if args.json:
        print(json.dumps({"up": True, **status.to_json()}, indent=2))
    else:
        print(format_status(status))
    return 0 if status.healthy else 1


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def format_up(state: LabState) -> str:
    """What ``lab up`` prints: the pods, the node port and the two settings to export."""
    services: dict[str, list[str]] = {}
    for s in state.services:
        services.setdefault(s.pod.label, []).append(f"{s.kind}:{s.port}")
    rows = [["NAMESPACE", "POD", "IPV4", "IPV6", "HOST VETH", "SERVICES"]]
    rows += [
        [p.namespace, p.name, p.ipv4, p.ipv6, p.host_veth, ",".join(services.get(p.label, []))]
        for p in state.pods
    ]
    node = state.node_port
    mirror = (
        "none"
        if state.kube_ovn_mirror is KubeOvnMirror.NONE
        else f"{state.kube_ovn_mirror} "
        f"(Mirror {lab_api.KUBE_OVN_MIRROR_NAME} -> {lab_api.KUBE_OVN_MIRROR_PORT})"
    )
    lines = [
        f"lab {state.name} is up: bridge {state.bridge} in netns {state.node_netns}, "
        f"run dir {state.run_dir}",
        *_table(rows),
        f"node port {node.name}: {node.ipv4}/{node.prefixlen} (iface-id {node.iface_id})",
        f"kube-ovn mirror: {mirror}",
        *_collector_lines(state),
        "",
        "# point mirrorctl at this lab:",
        f"export MIRRORSCOPE_OVSDB={state.ovsdb}",
        f"export MIRRORSCOPE_NETNS={state.node_netns}",
    ]
    return "\n".join(lines)


def _collector_lines(state: LabState) -> list[str]:
    coll = state.collector
    if coll is None:
        return []
    return [
        f"collector: netns {coll.netns}, {coll.collector_veth} {coll.collector_ip}/"
        f"{coll.prefixlen}; node side {coll.bridge} {coll.node_ip} (veth {coll.node_veth})",
        f"  capture there: ip netns exec {coll.netns} tcpdump -i {coll.collector_veth} "
        "-w remote.pcap ip proto gre",
        f"  mirror to it:  mirrorctl enable --global --output-tunnel gre --remote-ip "
        f"{coll.collector_ip}",
    ]


def format_status(status: LabStatus) -> str:
    state = status.state
    verdict = "healthy" if status.healthy else "DEGRADED (run lab up to repair, or lab down)"
    rows = [["", "KIND", "NAME", "DETAIL"]]
    rows += [["ok" if c.ok else "MISSING", c.kind, c.name, c.detail] for c in status.checks]
    return "\n".join(
        [
            f"lab {state.name}: {verdict}",
            f"run dir {state.run_dir}, OVSDB {state.ovsdb}, node netns {state.node_netns}",
            *_table(rows),
        ]
    )
