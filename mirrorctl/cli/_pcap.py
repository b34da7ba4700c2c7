"""`mirrorctl pcap get | follow | ls`: a service's pcap store from the command line.

Plain HTTP with the standard library (no web framework loads): ``--server URL`` (default the
local service), the token from ``--token-file`` or ``MIRRORSCOPE_TOKEN``. ``get`` writes the
download to ``-o FILE`` (or stdout with ``-o -``) with a byte count on a terminal; ``follow``
copies the live stream as it arrives, for ``| wireshark -k -i -`` or ``| tshark -r -``. With
several ``--server`` or ``--servers-from-dns`` the agents are asked at once and their pcapngs
merged (``_pcapfleet``); one server's bytes are copied as they come.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO, Any

from mirrorctl.cli._pcapfleet import add_fleet_options, fleet_follow, fleet_get, targets
from mirrorctl.fleet import Target
from mirrorctl.ovs import UsageError
from mirrorctl.service import TOKEN_ENV, resolve_token

_DEFAULT_SERVER = "http://127.0.0.1:10097"
_CHUNK = 1 << 16


class PcapClientError(UsageError):
    """The service refused or could not be reached; the message says what it answered."""


def register(sub: argparse._SubParsersAction[Any]) -> None:
    pcap = sub.add_parser(
        "pcap",
        help="download a pod's packets from a running service's pcap store",
        description="Talk to `capture run --pcap-dir`'s store over its HTTP API.",
    )
    actions = pcap.add_subparsers(dest="pcap_command", required=True, metavar="ACTION")
    get = actions.add_parser("get", help="the stored packets of a pod over a window")
    _who(get)
    get.add_argument("--since", help="this long before now: 30s, 5m, 1h (default 5m)")
    get.add_argument("--start", help="window start, RFC 3339 or epoch seconds")
    get.add_argument("--end", help="window end, RFC 3339 or epoch seconds (default now)")
    get.add_argument("--format", choices=["pcapng", "pcap"], default="pcapng")
    get.add_argument("-o", "--output", required=True, help="file to write, or - for stdout")
    get.set_defaults(handler=_get)
    follow = actions.add_parser("follow", help="a pod's packets live, from now until Ctrl-C")
    _who(follow)
    follow.add_argument("-w", "--write", default="-", help="file to write, or - (default)")
    follow.add_argument(
        "--hold",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="with several agents: how long a packet waits for earlier ones of other nodes (2)",
    )
    follow.set_defaults(handler=_follow)
    ls = actions.add_parser("ls", help="list the store's files (and --kept alert captures)")
    ls.add_argument("--kept", action="store_true", help="list the alert captures instead")
    ls.add_argument("--json", action="store_true", help="print the service's JSON as it is")
    _server(ls)
    ls.set_defaults(handler=_ls)


def _server(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--server",
        action="append",
        metavar="URL",
        help=f"the service ({_DEFAULT_SERVER}); repeat it to ask every node's agent and merge",
    )
    p.add_argument(
        "--token-file", type=Path, metavar="FILE", help=f"bearer token (env {TOKEN_ENV})"
    )


def _who(p: argparse.ArgumentParser) -> None:
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--pod", metavar="NS/NAME")
    who.add_argument("--namespace", metavar="NS")
    who.add_argument("--ip", metavar="ADDR")
    p.add_argument("--filter", metavar="EXPR", help="tcpdump expression")
    _server(p)
    add_fleet_options(p)


def _params(args: argparse.Namespace, *names: str) -> dict[str, str]:
    out = {n: getattr(args, n) for n in ("pod", "namespace", "ip", *names)}
    return {k: str(v) for k, v in out.items() if v}


def _fleet(args: argparse.Namespace) -> list[Target] | None:
    """The agents to merge, or None for the one server whose bytes are copied as they come."""
    if not args.servers_from_dns and len(args.server or []) <= 1:
        return None
    return targets(args, resolve_token(args.token_file, os.environ))


def _one_server(args: argparse.Namespace) -> str:
    servers = args.server or [_DEFAULT_SERVER]
    if len(servers) > 1:
        raise UsageError(f"this command asks one --server, not {len(servers)}")
    return str(servers[0])


def _open(args: argparse.Namespace, path: str, params: dict[str, str]) -> Any:
    server = _one_server(args)
    url = server.rstrip("/") + path
    if params:
        url += "?" + urllib.parse.urlencode(params)
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--server {server!r}: expected http://HOST:PORT")
    req = urllib.request.Request(url)  # noqa: S310 - the scheme is checked above
    token = resolve_token(args.token_file, os.environ)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        return urllib.request.urlopen(req, timeout=30)  # noqa: S310 - the scheme is checked above
    except urllib.error.HTTPError as e:
        raise PcapClientError(f"{e.code} from {server}: {_detail(e)}") from None
    except urllib.error.URLError as e:
        raise PcapClientError(f"cannot reach {server}: {e.reason}") from None


def _detail(e: urllib.error.HTTPError) -> str:
    body = e.read().decode(errors="replace")
    try:
        return str(json.loads(body)["detail"])
    except (ValueError, KeyError, TypeError):
        return body.strip() or str(e.reason)


def _copy(resp: Any, out: IO[bytes], *, live: bool) -> int:
    progress = sys.stderr.isatty()
    total = 0
    while chunk := (resp.read1(_CHUNK) if live else resp.read(_CHUNK)):
        out.write(chunk)
        if live:
            out.flush()
        total += len(chunk)
        if progress:
            print(f"\r{total / 1e6:9.2f} MB", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    return total


def _sink(name: str) -> tuple[IO[bytes], bool]:
    if name == "-":
        return sys.stdout.buffer, False
    return Path(name).open("wb"), True


def _get(args: argparse.Namespace) -> int:
    fleet = _fleet(args)
    if fleet is not None:
        return fleet_get(args, fleet, _params(args, "since", "start", "end", "filter"))
    resp = _open(args, "/api/v1/pcap", _params(args, "since", "start", "end", "filter", "format"))
    with resp:
        if resp.status == 204:
            print("mirrorctl: no packets in that window (204)", file=sys.stderr)
            return 1
        out, close = _sink(args.output)
        try:
            total = _copy(resp, out, live=False)
        finally:
            if close:
                out.close()
    if args.output != "-":
        print(f"wrote {total} bytes to {args.output}", file=sys.stderr)
    return 0


def _follow(args: argparse.Namespace) -> int:
    fleet = _fleet(args)
    if fleet is not None:
        return fleet_follow(args, fleet, _params(args, "filter"))
    resp = _open(args, "/api/v1/pcap/stream", _params(args, "filter"))
    out, close = _sink(args.write)
    try:
        with resp:
            _copy(resp, out, live=True)
    finally:
        if close:
            out.close()
    return 0


def _ls(args: argparse.Namespace) -> int:
    with _open(args, "/api/v1/pcap/kept" if args.kept else "/api/v1/pcap/files", {}) as resp:
        doc = json.loads(resp.read())
    if args.json:
        print(json.dumps(doc, indent=1))
        return 0
    if args.kept:
        for k in doc["captures"]:
            print(f"{k['name']}  {k['size']:>10}  {k.get('pod', '')}  {k.get('alertname', '')}")
        return 0
    store = doc["store"]
    state = f"FULL ({store['full_reason']})" if store["full"] else "storing"
    print(f"{store['files']} files, {store['bytes']} bytes, {state}")
    for f in doc["files"]:
        pods = ",".join(f["pods"]) or "-"
        mark = "*" if f["writing"] else " "
        print(f"{mark}{f['name']}  {f['size']:>10}  {f['start'] or '-'}  {f['packets']:>8}  {pods}")
    return 0
