"""``kubectl mirrorscope pcap | report | status``: the cluster's agents, found and reached through
the API server with the user's kubeconfig.

Installed on PATH as ``kubectl-mirrorscope`` (kubectl runs any ``kubectl-NAME`` as ``kubectl
NAME``). The agents are the DaemonSet's pods (``-n`` the chart's namespace); each is asked through
the API server's pod proxy, all at once, and ``pcap`` merges their answers as ``mirrorctl pcap``
does with several ``--server`` (one pcapng, an interface per node); ``report`` is one report over
the union of their flows, as ``mirrorctl report`` with several ``--server``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from capture import MirrorscopeError
from mirrorctl.cli._pcapfleet import fleet_follow, fleet_get
from mirrorctl.cli._report import remote_report, report_options
from mirrorctl.fleet import Answer, Target, ask_all
from mirrorctl.kube import SELECTOR, agent_targets, api_server, find_agents, kubeconfig, token_of
from mirrorctl.service import resolve_token

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl mirrorscope",
        description="Every node's mirrorscope agent through the Kubernetes API server.",
    )
    parser.add_argument("-n", "--namespace", default="mirrorscope", dest="agents_namespace",
                        help="where the chart is installed (mirrorscope)")  # fmt: skip
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: kubectl's)")
    parser.add_argument("-l", "--selector", default=SELECTOR, help=f"agent pods ({SELECTOR})")
    parser.add_argument("--token-file", type=Path, metavar="FILE",
                        help="the agents' token (default: MIRRORSCOPE_TOKEN, else the Secret "
                        "the agents mount)")  # fmt: skip
    parser.add_argument("--server-timeout", type=float, default=30.0, metavar="SECONDS")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    pcap = sub.add_parser("pcap", help="a pod's packets from every node, merged")
    actions = pcap.add_subparsers(dest="pcap_command", required=True, metavar="ACTION")
    get = actions.add_parser("get", help="the stored packets over a window")
    _who(get)
    get.add_argument("--since", help="this long before now (default 5m)")
    get.add_argument("--start", help="window start, RFC 3339 or epoch seconds")
    get.add_argument("--end", help="window end")
    get.add_argument("--format", choices=["pcapng"], default="pcapng")
    get.add_argument("-o", "--output", required=True, help="file to write, or -")
    get.set_defaults(handler=_get)
    follow = actions.add_parser("follow", help="live, until Ctrl-C")
    _who(follow)
    follow.add_argument("-w", "--write", default="-", help="file to write, or - (default)")
    follow.add_argument("--hold", type=float, default=2.0, metavar="SECONDS")
    follow.set_defaults(handler=_follow)
    report = sub.add_parser("report", help="one flow report over every node's flows")
    report_options(report)
    report.set_defaults(handler=_report)
    status = sub.add_parser("status", help="each node's agent: capture, store, drops")
    status.add_argument("--json", action="store_true", help="each agent's JSON, by node")
    status.set_defaults(handler=_status)
    return parser


def _who(p: argparse.ArgumentParser) -> None:
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--pod", metavar="NS/NAME")
    who.add_argument("--pod-namespace", dest="namespace", metavar="NS")
    who.add_argument("--ip", metavar="ADDR")
    p.add_argument("--filter", metavar="EXPR", help="tcpdump expression")


def _targets(args: argparse.Namespace) -> list[Target]:
    api = api_server(kubeconfig(args.kubeconfig, args.context))
    agents = find_agents(api, args.agents_namespace, args.selector)
    token = resolve_token(args.token_file, os.environ)
    if token is None:
        token = token_of(api, agents)
    return agent_targets(api, agents, token)


def _params(args: argparse.Namespace, *names: str) -> dict[str, str]:
    out = {n: getattr(args, n) for n in ("pod", "namespace", "ip", *names)}
    return {k: str(v) for k, v in out.items() if v}


def _get(args: argparse.Namespace) -> int:
    return fleet_get(args, _targets(args), _params(args, "since", "start", "end", "filter"))


def _follow(args: argparse.Namespace) -> int:
    return fleet_follow(args, _targets(args), _params(args, "filter"))


def _report(args: argparse.Namespace) -> int:
    return remote_report(args, _targets(args))


def _status(args: argparse.Namespace) -> int:
    targets = _targets(args)
    answers = ask_all(targets, "/api/v1/status", {}, args.server_timeout)
    docs: dict[str, object] = {}
    for a in answers:
        if isinstance(a, Answer):
            with a.response:
                docs[a.target.name] = json.loads(a.response.read())
        else:
            docs[a.target.name] = {"error": a.reason}
    if args.json:
        print(json.dumps(docs, indent=1))
    else:
        print("NODE\tREADY\tUPTIME_S\tRECEIVED\tKERNEL_DROPPED")
        for node, doc in docs.items():
            if not isinstance(doc, dict) or "error" in doc:
                print(f"{node}\tNO ANSWER: {doc.get('error') if isinstance(doc, dict) else doc}")
                continue
            cap = doc.get("capture") or {}
            print(f"{node}\t{doc.get('ready')}\t{doc.get('uptime_s')}\t"
                  f"{cap.get('received')}\t{cap.get('kernel_dropped')}")  # fmt: skip
    return 0 if all(isinstance(a, Answer) for a in answers) else 3


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        code: int = args.handler(args)
    except MirrorscopeError as exc:
        print(f"kubectl mirrorscope: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return code
