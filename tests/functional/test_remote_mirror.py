"""Remote mirrors on the lab (issue 16): GRE and ERSPAN type II/III received in a collector netns.

One lab with a collector (``br-phy`` on the node, a veth to the collector's namespace). For each
tunnel kind, two mirrors run at once on br-int: mirrorctl's plain one into mirror0 and one into
the tunnel (``mirrorctl enable --output-tunnel``). The same pod traffic (TCP, UDP, ICMP; some
dozens of flows) is captured on mirror0 and, encapsulated, on the collector's veth; the inner
packets of the collector's capture must be those of the plain one.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mirrorctl import LabState, ServiceKind, analyse_pcap, pod_exec
from mirrorctl.cli import main
from mirrorctl.lab import RemoteMirror, learn_collector, tunnel_to
from mirrorctl.lab._services import dns_name
from mirrorctl.ovs import MirrorKeeper, MirrorSpec, TunnelKind
from tests.functional._flowtruth import client
from tests.functional._ovs import remove_mirrors_and_mirror0, vsctl
from tests.functional.conftest import LabFactory

#: (proto, src, sport or ICMP type, dst, dport or ICMP code) of one inner IPv4 packet
Tuple5 = tuple[str, str, int, str, int]
ROUNDS = 15  # HTTP connections and DNS queries each: with pings, some dozens of flows
PROTOS = {"1": "icmp", "6": "tcp", "17": "udp"}


class Tcpdump:
    """``tcpdump -w`` in a netns with a capture filter, each packet written as it arrives."""

    def __init__(self, netns: str, iface: str, pcap: Path, bpf: tuple[str, ...] = ()) -> None:
        self.pcap = pcap
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, "tcpdump", "-i", iface, "-n", "-U", "--immediate-mode",
             "-B", "65536", "-w", str(pcap), *bpf],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 20
        while b"listening on" not in self.proc.stderr.readline():
            assert self.proc.poll() is None, f"tcpdump on {iface} in {netns} exited"
            assert time.monotonic() < deadline, "tcpdump did not start within 20 s"

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=20)
        return err.decode(errors="replace")


@dataclass(frozen=True)
class Captures:
    kind: RemoteMirror
    state: LabState
    plain: Path  # mirror0
    remote: Path  # the collector's veth: GRE/ERSPAN only


def mirrorctl(state: LabState, *args: str) -> None:
    assert main([*args, "--ovsdb", state.ovsdb, "--netns", state.node_netns]) == 0


def tunnel_args(state: LabState, kind: RemoteMirror) -> list[str]:
    """The ``mirrorctl enable`` flags a user would type for the lab's tunnel of ``kind``."""
    assert state.collector is not None
    tunnel = tunnel_to(state.collector, kind)
    args = ["--output-tunnel", str(tunnel.kind), "--remote-ip", tunnel.remote_ip]
    args += ["--key", str(tunnel.key)]
    if tunnel.kind is TunnelKind.ERSPAN:
        args += ["--erspan-ver", str(tunnel.erspan_ver)]
        if tunnel.erspan_ver == 1:
            args += ["--erspan-idx", str(tunnel.erspan_idx)]
        else:
            args += ["--erspan-dir", str(tunnel.erspan_dir)]
            args += ["--erspan-hwid", str(tunnel.erspan_hwid)]
    return args


def run_traffic(state: LabState) -> None:
    """From the client pod: ROUNDS HTTP connections, ROUNDS DNS queries (a source port each),
    and pings to two pods."""
    http = state.service(ServiceKind.HTTP)
    dns = state.service(ServiceKind.DNS)
    iperf = state.service(ServiceKind.IPERF3)
    name = dns_name(http.pod.namespace, http.pod.name)
    script = (
        f"for i in $(seq {ROUNDS}); do curl -sS -o /dev/null "
        f"http://{http.pod.ipv4}:{http.port}/ || exit 1; done; "
        f"for i in $(seq {ROUNDS}); do dig @{dns.pod.ipv4} {name} A +time=2 +tries=1 "
        ">/dev/null || exit 1; done; "
        f"ping -c 3 -i 0.2 -W 2 {iperf.pod.ipv4} >/dev/null && "
        f"ping -c 3 -i 0.2 -W 2 {dns.pod.ipv4} >/dev/null"
    )
    done = pod_exec(
        client(state), ["sh", "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def _num(text: str) -> int | None:
    """A tshark number field (decimal or 0x-hex), None when the frame has no such field."""
    return int(text, 0) if text else None


def tshark(pcap: Path, display: str, fields: list[str], occurrence: str) -> list[list[str]]:
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-n", "-T", "fields", "-E", "separator=\t",
         "-E", f"occurrence={occurrence}", *[a for f in fields for a in ("-e", f)],
         "-Y", display],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    return [line.split("\t") for line in out.splitlines()]


def inner_packets(pcap: Path, display: str, pods: set[str]) -> Counter[Tuple5]:
    """Every IPv4 packet between two pods, by 5-tuple; in a tunnel capture the last (inner)
    IP, TCP, UDP and ICMP headers are the ones read."""
    fields = ["ip.proto", "ip.src", "ip.dst", "tcp.srcport", "tcp.dstport", "udp.srcport",
              "udp.dstport", "icmp.type", "icmp.code"]  # fmt: skip
    packets: Counter[Tuple5] = Counter()
    for proto, src, dst, tsp, tdp, usp, udp, itype, icode in tshark(pcap, display, fields, "l"):
        if src in pods and dst in pods:
            sport, dport = (tsp, tdp) if tsp else (usp, udp) if usp else (itype, icode)
            packets[(PROTOS.get(proto, proto), src, int(sport), dst, int(dport))] += 1
    return packets


@pytest.fixture(scope="module")
def collector_lab(lab_factory: LabFactory) -> LabState:
    """A lab of its own with a collector: its br-phy and collector netns stay out of the shared
    lab."""
    return lab_factory(pods=4, collector=True)


@pytest.fixture(scope="module", params=list(RemoteMirror))
def captures(
    request: pytest.FixtureRequest,
    collector_lab: LabState,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Captures]:
    """The same traffic captured on mirror0 and, through a ``kind`` tunnel, at the collector."""
    kind = RemoteMirror(request.param)
    state = collector_lab
    coll = state.collector
    assert coll is not None
    tunnel = tunnel_to(coll, kind)
    out = tmp_path_factory.mktemp(f"remote-{kind}")
    try:
        mirrorctl(state, "enable", "--global")
        mirrorctl(state, "enable", "--global", *tunnel_args(state, kind))
        learn_collector(state)
        plain = Tcpdump(state.node_netns, "mirror0", out / "plain.pcap")
        remote = Tcpdump(
            coll.netns, coll.collector_veth, out / "remote.pcap", ("ip", "proto", "gre")
        )
        try:
            run_traffic(state)
            time.sleep(0.5)  # the last copies are in flight through two datapaths
        finally:
            plain.stop()
            remote.stop()
        yield Captures(kind, state, plain.pcap, remote.pcap)
    finally:
        remove_mirrors_and_mirror0(state)
        vsctl(state, "--if-exists", "del-port", tunnel.default_port)


def pod_ips(state: LabState) -> set[str]:
    return {p.ipv4 for p in state.pods}


def test_remote_mirror_carries_the_plain_mirrors_packets(captures: Captures) -> None:
    """The collector's GRE/ERSPAN capture holds, inside the tunnel, exactly the pod packets the
    plain mirror0 capture holds (same 5-tuples, same count of each), TCP, UDP and ICMP."""
    pods = pod_ips(captures.state)
    plain = inner_packets(captures.plain, "ip", pods)
    remote = inner_packets(captures.remote, "gre", pods)
    by_proto = Counter(t[0] for t in plain)  # distinct 5-tuples
    assert by_proto["tcp"] >= 2 * ROUNDS  # both directions of each connection
    assert by_proto["icmp"] >= 2
    # dig's source port is the kernel's random pick, so two queries can share a 5-tuple: count
    # the queries and answers themselves, not their distinct tuples
    dns = Counter("query" if t[4] == 53 else "answer" for t in plain.elements() if t[0] == "udp")
    assert dns["query"] >= ROUNDS
    assert dns["answer"] >= ROUNDS
    assert set(remote) == set(plain)
    assert remote == plain


def test_remote_mirror_frames_are_the_tunnel_asked_for(captures: Captures) -> None:
    """Every frame at the collector comes from br-phy's address in the tunnel mirrorctl was
    given: keyed GRE with Ethernet inside, ERSPAN type II with its index, or type III with its
    hardware id, the session id being the key."""
    coll = captures.state.collector
    assert coll is not None
    tunnel = tunnel_to(coll, captures.kind)
    fields = ["ip.src", "ip.dst", "gre.proto", "gre.key", "erspan.version", "erspan.spanid",
              "erspan.index", "erspan.hw"]  # fmt: skip
    rows = tshark(captures.remote, "gre", fields, "f")
    assert len(rows) > 4 * ROUNDS
    seen = {(src, dst, int(proto, 0), *(_num(v) for v in rest)) for src, dst, proto, *rest in rows}
    ends = (coll.node_ip, coll.collector_ip)
    if captures.kind is RemoteMirror.GRE:
        want = {(*ends, 0x6558, tunnel.key, None, None, None, None)}
    elif captures.kind is RemoteMirror.ERSPAN1:
        want = {(*ends, 0x88BE, None, 1, tunnel.key, tunnel.erspan_idx, None)}
    else:
        want = {(*ends, 0x22EB, None, 2, tunnel.key, None, tunnel.erspan_hwid)}
    assert seen == want


FlowCounts = dict[tuple[str, str, int, str, int], tuple[int, int, int, int]]


def pod_flows(pcap: Path, pods: set[str]) -> tuple[FlowCounts, list[object]]:
    counts: FlowCounts = {}
    records = []
    for r in analyse_pcap(pcap):
        if r.orig_h in pods and r.resp_h in pods and r.ip_version == 4:
            key = (r.proto, r.orig_h, r.orig_p, r.resp_h, r.resp_p)
            counts[key] = (r.orig_pkts, r.orig_ip_bytes, r.resp_pkts, r.resp_ip_bytes)
            records.append(r)
    return counts, records


def test_mirrorscope_finds_the_plain_mirrors_flows_inside_the_tunnel(captures: Captures) -> None:
    """analyse_pcap on the collector's capture finds the flows it finds on mirror0 (5-tuple,
    packets and IP bytes of the inner packets), each record naming the tunnel and its ends."""
    pods = pod_ips(captures.state)
    plain, _ = pod_flows(captures.plain, pods)
    remote, records = pod_flows(captures.remote, pods)
    assert len(plain) >= 2 * ROUNDS
    assert remote == plain
    coll = captures.state.collector
    assert coll is not None
    expected = {"gre": "gre", "erspan1": "erspan2", "erspan2": "erspan3"}[captures.kind]
    assert {getattr(r, "tunnel", None) for r in records} == {expected}
    assert {(getattr(r, "outer_src", None), getattr(r, "outer_dst", None)) for r in records} == {
        (coll.node_ip, coll.collector_ip)
    }


def test_watch_restores_a_wiped_tunnel_mirror_and_its_port(collector_lab: LabState) -> None:
    """The keeper given a tunnel brings back both the Mirror row and the GRE port after
    kube-ovn-cni's ``clear bridge br-int mirrors`` and a deleted port."""
    state = collector_lab
    assert state.collector is not None
    tunnel = tunnel_to(state.collector, RemoteMirror.GRE)
    port = tunnel.default_port
    keeper = MirrorKeeper(
        state.ovsdb,
        MirrorSpec(select_all=True),
        bridge=state.bridge,
        output=port,
        netns=state.node_netns,
        tunnel=tunnel,
    )
    stop = threading.Event()
    thread = threading.Thread(target=keeper.run, args=(stop,))
    thread.start()

    def mirrored() -> bool:
        names = vsctl(state, "--columns=name", "--format=csv", "--no-headings", "list", "Mirror")
        if f"mirrorscope-{port}" not in names.split():
            return False
        kind = vsctl(state, "--if-exists", "get", "Interface", port, "type")
        return kind == "gre" and vsctl(state, "get", "Interface", port, "options:key") == '"100"'

    def wait_until(check: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 10
        while not check():
            assert time.monotonic() < deadline, "the keeper did not restore the tunnel mirror"
            time.sleep(0.05)

    try:
        wait_until(mirrored)
        vsctl(state, "clear", "bridge", state.bridge, "mirrors", "--", "del-port", port)
        wait_until(mirrored)
        assert keeper.restores >= 2
    finally:
        stop.set()
        thread.join(timeout=10)
        remove_mirrors_and_mirror0(state)
        vsctl(state, "--if-exists", "del-port", port)
