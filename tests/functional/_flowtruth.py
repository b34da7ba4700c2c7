"""Lab traffic from real programs, an independent capture (tcpdump) and tshark's view of it.

The reference for the capture service's accuracy: tshark numbers TCP and UDP conversations
(``tcp.stream`` / ``udp.stream``); for each we take the first packet's sender as the originator
and sum packets and IP bytes (``ip.len``, or ``ipv6.plen`` + 40) per direction.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from mirrorctl import LabPod, LabState, ServiceKind, pod_exec
from mirrorctl.lab._services import dns_name

#: (proto, orig_h, orig_p, resp_h, resp_p)
FlowKey = tuple[str, str, int, str, int]
#: (orig_pkts, orig_ip_bytes, resp_pkts, resp_ip_bytes)
Counts = tuple[int, int, int, int]
CLOSED_PORT = 81  # nothing listens there in the HTTP pod: the connection is refused


def client(state: LabState) -> LabPod:
    """A pod that runs no service, so its traffic is always 'from another pod'."""
    serving = {s.pod for s in state.services}
    return next(p for p in state.pods if p not in serving)


class Tcpdump:
    """``tcpdump -i IFACE -w FILE`` in a netns, started and stopped cleanly."""

    def __init__(
        self, netns: str, pcap: Path, iface: str = "mirror0", *, immediate: bool = False
    ) -> None:
        """``immediate``: each packet is written as it arrives (libpcap's immediate mode), so
        stopping right after traffic loses nothing still waiting in the ring."""
        self.pcap = pcap
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, "tcpdump", "-i", iface, "-n", "-U", "-B", "65536",
             *(["--immediate-mode"] if immediate else []), "-w", str(pcap)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 20
        while b"listening on" not in self.proc.stderr.readline():
            assert self.proc.poll() is None, "tcpdump exited before capturing"
            assert time.monotonic() < deadline, "tcpdump did not start within 20 s"

    def wait_for(self, display: str, timeout: float = 15.0) -> None:
        """Until a packet matching tshark's ``display`` filter is in the file (``-U`` writes each
        packet as tcpdump gets it), instead of guessing how long the mirror path takes."""
        deadline = time.monotonic() + timeout
        while True:
            seen = subprocess.run(
                ["tshark", "-r", str(self.pcap), "-Y", display, "-T", "fields",
                 "-e", "frame.number"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip  # a packet cut short at the file's end is only a warning
            if seen.stdout.strip():
                return
            assert time.monotonic() < deadline, f"no {display!r} in {self.pcap} within {timeout}s"
            time.sleep(0.1)

    def stop(self) -> str:
        """SIGINT, wait, and return tcpdump's closing statistics."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=20)
        return err.decode(errors="replace")


def run_traffic(state: LabState) -> None:
    """HTTP keep-alive (two fetches on one connection, v4 and v6), DNS incl. NXDOMAIN, ping and
    ping6, a short iperf3, and a connection refused by a closed port."""
    src = client(state)
    http = state.service(ServiceKind.HTTP)
    dns = state.service(ServiceKind.DNS)
    iperf = state.service(ServiceKind.IPERF3)

    def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return pod_exec(src, list(argv), capture_output=True, text=True, check=check, timeout=30)

    url4 = f"http://{http.pod.ipv4}:{http.port}/"
    url6 = f"http://[{http.pod.ipv6}]:{http.port}/"
    out = run("curl", "-sS", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{num_connects}\n",
              url4, url4)  # fmt: skip
    assert out.stdout.split() == ["1", "0"], out.stdout  # the second fetch reused the connection
    run("curl", "-sS", "-g", "-o", "/dev/null", url6)
    name = dns_name(http.pod.namespace, http.pod.name)
    run("dig", f"@{dns.pod.ipv4}", name, "A", "+time=2", "+tries=1")
    missing = dns_name("nowhere", "no-such-pod")  # in the lab's domain: NXDOMAIN, no upstream
    nx = run("dig", f"@{dns.pod.ipv4}", missing, "A", "+time=2", "+tries=1")
    assert "NXDOMAIN" in nx.stdout, nx.stdout
    run("dig", f"@{dns.pod.ipv6}", name, "AAAA", "+time=2", "+tries=1")
    run("ping", "-c", "2", "-i", "0.2", "-W", "2", iperf.pod.ipv4)
    run("ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", iperf.pod.ipv6)
    run("iperf3", "-c", iperf.pod.ipv4, "-p", str(iperf.port), "-t", "1", "-b", "20M")
    refused = run("curl", "-sS", "-o", "/dev/null", f"http://{http.pod.ipv4}:{CLOSED_PORT}/",
                  check=False)  # fmt: skip
    assert refused.returncode == 7, refused.stderr  # curl: "Failed to connect"


def tshark_flows(pcap: Path) -> dict[FlowKey, Counts]:
    """tshark's TCP and UDP conversations with per-direction packets and IP bytes."""
    fields = ["tcp.stream", "udp.stream", "ip.src", "ipv6.src", "ip.dst", "ipv6.dst",
              "tcp.srcport", "udp.srcport", "tcp.dstport", "udp.dstport",
              "ip.len", "ipv6.plen"]  # fmt: skip
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-n", "-T", "fields", "-E", "separator=\t",
         "-E", "occurrence=f", *[a for f in fields for a in ("-e", f)],
         "-Y", "(tcp or udp) and not icmp and not icmpv6"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    first: dict[tuple[str, int], FlowKey] = {}
    counts: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for line in out.splitlines():
        tcp_s, udp_s, s4, s6, d4, d6, tsp, usp, tdp, udp_, ip_len, plen = line.split("\t")
        proto, stream = ("tcp", int(tcp_s)) if tcp_s else ("udp", int(udp_s))
        src, dst = s4 or s6, d4 or d6
        sport, dport = int(tsp or usp), int(tdp or udp_)
        size = int(ip_len) if ip_len else int(plen) + 40
        key = first.setdefault((proto, stream), (proto, src, sport, dst, dport))
        c = counts[(proto, stream)]
        if (src, sport) == (key[1], key[2]):
            c[0] += 1
            c[1] += size
        else:
            c[2] += 1
            c[3] += size
    return {first[k]: (c[0], c[1], c[2], c[3]) for k, c in counts.items()}


@dataclass(frozen=True)
class OurFlows:
    """Our TCP/UDP records in the same shape as ``tshark_flows``, and the records themselves."""

    counts: dict[FlowKey, Counts]
    records: list[dict[str, object]]


def our_flows(lines: list[str]) -> OurFlows:
    """Parse JSON-lines records; several records of one 5-tuple (slices) are summed."""
    recs = [json.loads(line) for line in lines if line.strip()]
    counts: dict[FlowKey, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for r in recs:
        if r["proto"] not in ("tcp", "udp"):
            continue
        key = (r["proto"], r["id.orig_h"], r["id.orig_p"], r["id.resp_h"], r["id.resp_p"])
        c = counts[key]
        c[0] += r["orig_pkts"]
        c[1] += r["orig_ip_bytes"]
        c[2] += r["resp_pkts"]
        c[3] += r["resp_ip_bytes"]
    return OurFlows({k: (c[0], c[1], c[2], c[3]) for k, c in counts.items()}, recs)


def by_proto(flows: dict[FlowKey, Counts]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for k in flows:
        out[k[0]] += 1
    return dict(out)


def pods_by_ip(state: LabState) -> dict[str, tuple[str, str, str]]:
    """ip → (kind, namespace, pod) as the records should name it."""
    out = {}
    for p in state.pods:
        out[p.ipv4] = ("pod", p.namespace, p.name)
        out[p.ipv6] = ("pod", p.namespace, p.name)
    out[state.node_port.ipv4] = ("node", "", "")
    return out


def record_lines(directory: Path) -> list[str]:
    """The service's flow records in ``directory`` as JSON lines: completed Parquet files (fields
    that are null left out, as the writer leaves them out) and any JSON-lines files; the notice
    logs beside them (``notices-*``) are not records."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    lines: list[str] = []
    for f in sorted(directory.glob("flows-*.parquet")):
        for row in pq.read_table(f).to_pylist():
            lines.append(json.dumps({k: v for k, v in row.items() if v is not None}))
    for f in sorted(directory.glob("flows-*.jsonl")):
        lines += f.read_text().splitlines()
    return lines
