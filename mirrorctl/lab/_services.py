"""Servers inside lab pods for test traffic: nginx (HTTP), dnsmasq (DNS), iperf3.

Every config, pidfile, log and document lives in the lab's run dir; nothing under /etc or
/var is read or written, so labs never disturb each other or the host's own daemons.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from mirrorctl.lab import _daemons
from mirrorctl.lab._daemons import Daemon
from mirrorctl.lab._errors import LabError
from mirrorctl.lab._namespaces import netns_exec
from mirrorctl.lab._state import LabService, LabState, ServiceKind

log = logging.getLogger(__name__)

READY_TIMEOUT = 5.0
DNS_DOMAIN = "cluster.local"
# Documents of known sizes under the HTTP root, for tests that want a given transfer size.
HTTP_DOCUMENTS = {"index.html": 0, "1k.bin": 1024, "100k.bin": 100 * 1024, "1m.bin": 1024 * 1024}
_BINARY: dict[ServiceKind, str] = {
    ServiceKind.HTTP: "nginx",
    ServiceKind.DNS: "dnsmasq",
    ServiceKind.IPERF3: "iperf3",
}


def daemon(run_dir: Path, kind: ServiceKind, netns: str | None = None) -> Daemon:
    binary = _BINARY[kind]
    return Daemon(name=binary, pidfile=run_dir / f"{binary}.pid", marker=f"{run_dir}/", netns=netns)


def dns_name(namespace: str, pod: str) -> str:
    """The name dnsmasq answers for a pod (a Service-style name, so tests can resolve pods)."""
    return f"{pod}.{namespace}.svc.{DNS_DOMAIN}"


def nginx_config(run_dir: Path, port: int) -> str:
    """Keep-alive on and large request budgets, so one connection can carry many requests."""
    return f"""\
daemon on;
master_process on;
worker_processes 1;
user root;
pid {run_dir}/nginx.pid;
error_log {run_dir}/nginx-error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 65s;
    keepalive_requests 100000;
    client_body_temp_path {run_dir}/nginx-tmp/body;
    proxy_temp_path {run_dir}/nginx-tmp/proxy;
    fastcgi_temp_path {run_dir}/nginx-tmp/fastcgi;
    uwsgi_temp_path {run_dir}/nginx-tmp/uwsgi;
    scgi_temp_path {run_dir}/nginx-tmp/scgi;
    server {{
        listen {port} default_server;
        listen [::]:{port} default_server;
        root {run_dir}/www;
        location = /healthz {{ return 200 "ok\\n"; }}
    }}
}}
"""


def dnsmasq_argv(state: LabState, service: LabService) -> list[str]:
    run_dir = state.run_dir
    argv = [
        "dnsmasq",
        "--conf-file=/dev/null",  # ignore /etc/dnsmasq.conf and /etc/dnsmasq.d
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--bind-interfaces",
        f"--listen-address={service.pod.ipv4}",
        f"--listen-address={service.pod.ipv6}",
        "--listen-address=127.0.0.1",
        f"--port={service.port}",
        # Names under cluster.local we do not know get NXDOMAIN here, never an upstream lookup.
        f"--local=/{DNS_DOMAIN}/",
        "--user=root",
        "--group=root",
        f"--pid-file={run_dir}/dnsmasq.pid",
        f"--log-facility={run_dir}/dnsmasq.log",
    ]
    for pod in state.pods:
        argv.append(f"--host-record={dns_name(pod.namespace, pod.name)},{pod.ipv4},{pod.ipv6}")
    node = state.node_port
    argv.append(f"--host-record={node.node_name}.node.{DNS_DOMAIN},{node.ipv4}")
    return argv


def iperf3_argv(run_dir: Path, service: LabService) -> list[str]:
    return [
        "iperf3",
        "--server",
        "--daemon",
        f"--port={service.port}",
        f"--pidfile={run_dir}/iperf3.pid",
        f"--logfile={run_dir}/iperf3.log",
    ]


def _write_http_root(run_dir: Path) -> None:
    www = run_dir / "www"
    www.mkdir(exist_ok=True)
    (run_dir / "nginx-tmp").mkdir(exist_ok=True)
    for name, size in HTTP_DOCUMENTS.items():
        path = www / name
        if name == "index.html":
            path.write_text("mirrorscope lab\n", encoding="ascii")
        elif not path.exists() or path.stat().st_size != size:
            # A fixed pattern, not zeros: compressible-looking payloads hide nothing, but a
            # recognisable one makes reassembled streams easy to check.
            path.write_bytes((b"mirrorscope-lab-" * (size // 16 + 1))[:size])


def _listening(netns: str, kind: ServiceKind, port: int) -> bool:
    flag = "-lun" if kind is ServiceKind.DNS else "-ltn"
    result = netns_exec(
        netns, ["ss", "-H", flag, f"sport = :{port}"], capture_output=True, text=True, check=False
    )
    return result.returncode == 0 and bool(result.stdout.strip())


def start(state: LabState, service: LabService) -> int:
    """Start ``service`` in its pod unless it runs; returns once it listens."""
    run_dir = state.run_dir
    kind = service.kind
    if kind is ServiceKind.HTTP:
        _write_http_root(run_dir)
        conf = run_dir / "nginx.conf"
        conf.write_text(nginx_config(run_dir, service.port), encoding="ascii")
        argv = ["nginx", "-p", f"{run_dir}/", "-c", str(conf), "-e", f"{run_dir}/nginx-error.log"]
        log_file = run_dir / "nginx-error.log"
    elif kind is ServiceKind.DNS:
        argv = dnsmasq_argv(state, service)
        log_file = run_dir / "dnsmasq.log"
    else:
        argv = iperf3_argv(run_dir, service)
        log_file = run_dir / "iperf3.log"
    spec = daemon(run_dir, kind, service.pod.netns)
    pid = _daemons.start(spec, argv, netns=service.pod.netns, log_file=log_file)
    deadline = time.monotonic() + READY_TIMEOUT
    while not _listening(service.pod.netns, kind, service.port):
        if time.monotonic() > deadline:
            raise LabError(f"{spec.name} in {service.pod.label} is not listening on {service.port}")
        time.sleep(0.02)
    return pid


def daemons(run_dir: Path) -> list[Daemon]:
    return [daemon(run_dir, kind) for kind in ServiceKind]


def placed_daemons(state: LabState) -> list[Daemon]:
    """The service daemons with the pod namespace each must run in."""
    return [daemon(state.run_dir, s.kind, s.pod.netns) for s in state.services]


def stop_all(run_dir: Path) -> None:
    for spec in daemons(run_dir):
        _daemons.stop(spec)


def files(run_dir: Path) -> list[Path]:
    names = ["nginx.conf", "nginx-error.log", "dnsmasq.log", "iperf3.log"]
    return [run_dir / n for n in names]


def dirs(run_dir: Path) -> list[Path]:
    return [run_dir / "www", run_dir / "nginx-tmp"]


def check_binaries() -> None:
    """Fail early with the fix, not halfway through ``up``."""
    for binary in (*_BINARY.values(), "ss", "ethtool", "ip"):
        if shutil.which(binary) is None:
            raise LabError(f"{binary} is not installed: run make bootstrap")
