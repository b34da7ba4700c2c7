"""The mirroring benchmark on a two-node lab: every scenario in three modes, one run.

Modes: mirroring off; a select_all mirror into mirror0 on both nodes' br-int ("on"); and the
same with the capture service reading each node's mirror0 with every sink on ("on+analysis").
Each mode runs all scenarios back to back, so CPU per mode is one /proc/<pid>/stat delta over
the whole mode.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mirrorctl import ovs
from mirrorctl.bench import _parse, _sinks
from mirrorctl.bench._errors import BenchError
from mirrorctl.bench._table import MODES, CpuRow
from mirrorctl.lab import LabState, ServiceKind, TwoNodeLab, netns_argv

log = logging.getLogger(__name__)

SIZES = ("64", "128", "512", "1k", "4k")
CONNECTIONS = ("10", "100")
QPERF_PORT = 19765
IPERF3_PORT = 5301
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_BUSY_RETRIES = 10


@dataclass(frozen=True, slots=True)
class Endpoint:
    netns: str
    ip: str


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    seed: str  # the seed's row this one reproduces
    client: Endpoint
    server: Endpoint


@dataclass(frozen=True, slots=True)
class Config:
    seconds: int = 1  # per point; qperf and iperf3 take whole seconds
    repeats: int = 3
    sizes: Sequence[str] = SIZES
    connections: Sequence[str] = CONNECTIONS
    modes: Sequence[str] = MODES
    scenarios: Sequence[str] | None = None  # names to run; None: all
    out: Path = Path("bench-out/mirror")


@dataclass
class Result:
    """A run's raw samples per (scenario, mode, point, metric), CPU per mode, and its notes."""

    samples: dict[tuple[str, str, str, str], list[float]] = field(default_factory=dict)
    cpu: list[CpuRow] = field(default_factory=list)
    seed_names: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, key: tuple[str, str, str, str], value: float) -> None:
        self.samples.setdefault(key, []).append(value)

    def to_json(self) -> str:
        """Every sample, CPU row and note: the tables can be rebuilt from this alone."""
        return json.dumps(
            {
                "samples": [[*key, values] for key, values in self.samples.items()],
                "cpu": [asdict(row) for row in self.cpu],
                "seed_names": self.seed_names,
                "notes": self.notes,
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> Result:
        doc = json.loads(text)
        return cls(
            samples={(s, m, p, k): list(v) for s, m, p, k, v in doc["samples"]},
            cpu=[CpuRow(**row) for row in doc["cpu"]],
            seed_names=dict(doc["seed_names"]),
            notes=list(doc["notes"]),
        )


def size_bytes(size: str) -> int:
    return int(size[:-1]) * 1024 if size.endswith("k") else int(size)


def scenarios(n1: LabState, n2: LabState) -> tuple[list[Scenario], list[Scenario]]:
    """Netperf scenarios and HTTP (wrk) scenarios on the two nodes."""
    client = Endpoint(n1.pods[-1].netns, n1.pods[-1].ipv4)
    peer = n1.service(ServiceKind.IPERF3).pod
    remote = n2.pods[-1]
    node1 = Endpoint(n1.node_netns, TwoNodeLab.underlay_ip(0))
    netperf = [
        Scenario("pod-pod same node", "pod-pod same node", client, Endpoint(peer.netns, peer.ipv4)),
        Scenario(
            "pod to own node",
            "pod to own node",
            client,
            Endpoint(n1.node_netns, n1.node_port.ipv4),
        ),
        Scenario(
            "pod-pod different nodes",
            "pod-pod different nodes",
            client,
            Endpoint(remote.netns, remote.ipv4),
        ),
        Scenario(
            "node-node", "node-node", node1, Endpoint(n2.node_netns, TwoNodeLab.underlay_ip(1))
        ),
    ]
    web1, web2 = n1.service(ServiceKind.HTTP).pod, n2.service(ServiceKind.HTTP).pod
    node1_join = Endpoint(n1.node_netns, n1.node_port.ipv4)
    http = [
        Scenario(
            "pod to pod, same node (ClusterIP not emulated)",
            "pod to cluster ip service",
            client,
            Endpoint(web1.netns, web1.ipv4),
        ),
        Scenario(
            "host to pod on other node (no NodePort NAT)",
            "host to nodeport (pod on other node)",
            node1_join,
            Endpoint(web2.netns, web2.ipv4),
        ),
        Scenario(
            "host to pod on own node (no NodePort NAT)",
            "host to nodeport (pod on target node)",
            node1_join,
            Endpoint(web1.netns, web1.ipv4),
        ),
    ]
    return netperf, http


def _run(netns: str, argv: list[str], timeout: float) -> str:
    try:
        done = subprocess.run(
            netns_argv(netns, argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{argv[0]} in {netns} took over {timeout:.0f} s") from exc
    if done.returncode != 0 and not done.stdout.strip():
        raise BenchError(f"{' '.join(argv)} in {netns} failed: {done.stderr.strip()[-300:]}")
    return done.stdout


@contextmanager
def _servers(endpoints: Sequence[Endpoint]) -> Iterator[None]:
    """qperf and iperf3 servers in every distinct server namespace, stopped after."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for netns in dict.fromkeys(e.netns for e in endpoints):
            for argv in (
                ["qperf", "-lp", str(QPERF_PORT)],
                ["iperf3", "-s", "-p", str(IPERF3_PORT)],
            ):
                procs.append(
                    subprocess.Popen(
                        netns_argv(netns, argv),
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
        time.sleep(0.5)  # both bind at once; a client a moment early would be refused
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


def _netperf_point(sc: Scenario, mode: str, size: str, cfg: Config, res: Result) -> None:
    t, ip, n = str(cfg.seconds), sc.server.ip, str(size_bytes(size))
    limit = cfg.seconds * 3 + 20.0
    qperf = ["qperf", ip, "-lp", str(QPERF_PORT), "-t", t, "-m", n, "tcp_lat", "udp_lat"]
    lat = _parse.qperf_latencies(_run(sc.client.netns, qperf, limit))
    res.add((sc.name, mode, size, "tcp_latency"), lat["tcp_lat"])
    res.add((sc.name, mode, size, "udp_latency"), lat["udp_lat"])
    iperf = ["iperf3", "-c", ip, "-p", str(IPERF3_PORT), "-t", t, "-l", n, "-J"]
    res.add(
        (sc.name, mode, size, "tcp_bandwidth"),
        _parse.iperf3_tcp(_iperf3(sc.client.netns, iperf, limit)),
    )
    udp = _parse.iperf3_udp(_iperf3(sc.client.netns, [*iperf, "-u", "-b", "0"], limit))
    res.add((sc.name, mode, size, "udp_bandwidth"), udp.bandwidth_bps)
    res.add((sc.name, mode, size, "udp_lost_rate"), udp.lost_pct)


def _iperf3(netns: str, argv: list[str], limit: float) -> str:
    """iperf3's output; retried while the server still finishes the previous test."""
    for _ in range(_BUSY_RETRIES):
        out = _run(netns, argv, limit)
        if "server is busy" not in out:
            return out
        time.sleep(0.3)
    return out


def _http_point(sc: Scenario, mode: str, conns: str, cfg: Config, res: Result) -> None:
    argv = ["wrk", "-t", "2", "-c", conns, "-d", f"{cfg.seconds}s", f"http://{sc.server.ip}/"]
    got = _parse.wrk(_run(sc.client.netns, argv, cfg.seconds * 3 + 20.0))
    for metric, value in (
        ("qps", got.qps),
        ("avg_resp_time", got.avg_us),
        ("stdev_resp_time", got.stdev_us),
        ("max_resp_time", got.max_us),
    ):
        res.add((sc.name, mode, conns, metric), value)


def _point(
    measure: Callable[[Scenario, str, str, Config, Result], None],
    sc: Scenario,
    mode: str,
    point: str,
    *,
    cfg: Config,
    res: Result,
) -> None:
    """One point; a tool that fails costs that sample (said in the notes), not the whole run."""
    try:
        measure(sc, mode, point, cfg, res)
    except BenchError as exc:
        log.warning("%s %s %s: %s", sc.name, mode, point, exc)
        res.notes.append(f"one sample lost: {sc.name}, {mode}, {point}: {exc}")


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def _vswitchd_pid(state: LabState) -> int:
    return int((state.run_dir / "ovs-vswitchd.pid").read_text().strip())


def set_mirror(state: LabState, on: bool) -> None:
    """A select_all mirror into mirror0 on the node's br-int, or none, through OVSDB."""
    spec = ovs.MirrorSpec(select_all=True) if on else ovs.MirrorSpec()
    with ovs.connect(state.ovsdb) as session:
        ovs.reconcile(session, spec, bridge=state.bridge, netns=state.node_netns)


@functools.cache
def _known_flags() -> frozenset[str]:
    return _sinks.capture_run_flags()  # a Python start-up: once per run, not once per pass


@contextmanager
def _analysis(nodes: Sequence[LabState], base: Path, res: Result) -> Iterator[list[int]]:
    """Services on every node with all sinks, Prometheus scraping them, nfcapd; yields pids."""
    base.mkdir(parents=True, exist_ok=True)
    token = base / "token"
    token.write_text(secrets.token_hex(16) + "\n")
    token.chmod(0o600)
    port = _sinks.free_port()
    collector = _sinks.nfcapd(base, port)
    services: list[_sinks.Service] = []
    prometheus: _sinks.Prometheus | None = None
    known = _known_flags()
    names: list[str] = []
    try:
        for state in nodes:
            node_dir = base / state.name
            flags, names = _sinks.sink_flags(node_dir, port, token, known)
            services.append(_sinks.Service(state, flags, base / f"{state.name}-service.log"))
        prometheus = _sinks.Prometheus(base / "prometheus", [s.target for s in services])
        yield [s.proc.pid for s in services]
        # A mode shorter than the scrape interval may end before the first scrape: wait for
        # one per service (after the CPU was measured), so the sink is shown working.
        deadline = time.monotonic() + 2.5 * _sinks.SCRAPE_SECONDS
        while (scrapes := prometheus.scrapes()) < len(services) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        if prometheus is not None:
            prometheus.stop()
        for service in services:
            service.stop()
        collector.stop()
    # Counted once the services stopped: records and IPFIX of open flows go out at shutdown.
    records = sum(_sinks.records_in(d) for d in base.glob("*/records"))
    ipfix = sum(f.stat().st_size for f in (base / "nfcapd").rglob("*") if f.is_file())
    missing = [
        n for f, n in (("--pcap-dir", "pcap store"), ("--no-notices", "notices")) if f not in known
    ]
    res.notes.append(
        f"sinks (on+analysis, {base.name}): Prometheus stored {scrapes} successful 5 s scrapes of "
        f"{len(services)} services; {records} flow records written; nfcapd files "
        f"{ipfix} bytes; sinks on: {', '.join(names)}"
        + (f"; not in this checkout's service: {', '.join(missing)}" if missing else "")
    )


@dataclass
class _Ticks:
    """CPU ticks and wall time a mode accumulated over its passes."""

    wall: float = 0.0
    ticks: list[int] = field(default_factory=list)

    def add(self, wall: float, ticks: Sequence[int]) -> None:
        self.wall += wall
        self.ticks = (
            [a + b for a, b in zip(self.ticks, ticks, strict=True)] if self.ticks else list(ticks)
        )

    def row(self, mode: str, nodes: int) -> CpuRow:
        pct = [t / _CLK_TCK / self.wall * 100 for t in self.ticks]
        return CpuRow(mode, self.wall, pct[:nodes], pct[nodes:])


def _mode(
    mode: str,
    nodes: Sequence[LabState],
    work: Callable[[], None],
    base: Path,
    res: Result,
) -> tuple[float, list[int]]:
    """Set the mode up, run ``work``; wall time and CPU ticks of vswitchds then services."""
    for state in nodes:
        set_mirror(state, mode != "off")
    vswitchd = [_vswitchd_pid(s) for s in nodes]

    def measured(service_pids: Sequence[int]) -> tuple[float, list[int]]:
        pids = [*vswitchd, *service_pids]
        before = [_cpu_ticks(p) for p in pids]
        t0 = time.monotonic()
        work()
        wall = time.monotonic() - t0
        return wall, [_cpu_ticks(p) - b for p, b in zip(pids, before, strict=True)]

    if mode == "on+analysis":
        with _analysis(nodes, base, res) as pids:
            return measured(pids)
    return measured([])


def run(cfg: Config, lab: TwoNodeLab | None = None, *, down: bool = False) -> Result:
    """Bring ``lab`` up (default a new bench-XXXX), measure; bring it down if ``down`` or new."""
    own = lab is None or down
    lab = lab if lab is not None else TwoNodeLab(f"bench-{secrets.token_hex(2)}")
    res = Result()
    try:
        n1, n2 = lab.up()
        netperf, http = scenarios(n1, n2)
        if cfg.scenarios is not None:
            netperf = [s for s in netperf if s.name in cfg.scenarios]
            http = [s for s in http if s.name in cfg.scenarios]
        res.seed_names = {s.name: s.seed for s in (*netperf, *http)}
        warm = [*netperf, *http]
        for sc in warm:  # ARP and MAC learning happen before the first timed point
            _run(sc.client.netns, ["ping", "-c", "2", "-i", "0.2", "-W", "2", sc.server.ip], 20)
        cpu = {mode: _Ticks() for mode in cfg.modes}
        with _servers([s.server for s in netperf]):
            # Repeat passes interleave the modes: the load other work puts on a shared machine
            # drifts over minutes, and each mode then sees the same drift.
            for rep in range(cfg.repeats):
                for mode in cfg.modes:

                    def work(mode: str = mode) -> None:
                        for sc in netperf:
                            log.info("%s: %s", mode, sc.name)
                            for size in cfg.sizes:
                                _point(_netperf_point, sc, mode, size, cfg=cfg, res=res)
                        for sc in http:
                            log.info("%s: %s", mode, sc.name)
                            for conns in cfg.connections:
                                _point(_http_point, sc, mode, conns, cfg=cfg, res=res)

                    log.info("pass %d/%d, mode %s", rep + 1, cfg.repeats, mode)
                    base = cfg.out / "analysis" / f"pass{rep + 1}"
                    cpu[mode].add(*_mode(mode, (n1, n2), work, base, res))
        res.cpu = [cpu[mode].row(mode, 2) for mode in cfg.modes]
    finally:
        if own:
            lab.down()
    return res
