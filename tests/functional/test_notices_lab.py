"""Security notices on the lab: real nmap and hping3 from one pod raise notices for that pod.

The running service (its OVSDB identity feed names the pods) must raise ``port_scan`` for an
``nmap -sS`` within seconds, ``address_scan`` for a sweep of one port, ``syn_flood`` for an
hping3 SYN flood, each on /metrics (``mirrorscope_notices_total``) and in the notice log beside
the records; ordinary busy traffic raises none.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mirrorctl import LabPod, LabState, ServiceKind, pod_exec
from mirrorctl.cli import main
from tests.functional._flowtruth import client, run_traffic
from tests.functional._service import Service
from tests.functional.conftest import LabFactory

SWEEP_NET = "10.16.200"  # unused addresses in the pod subnet, given neighbour entries below


@pytest.fixture(scope="module")
def mirrored_lab(lab_factory: LabFactory) -> Iterator[LabState]:
    """A lab of our own with a global mirror into mirror0."""
    state = lab_factory(pods=4)
    assert main(["enable", "--global", "--ovsdb", state.ovsdb, "--netns", state.node_netns]) == 0
    yield state
    main(["disable", "--global", "--ovsdb", state.ovsdb, "--netns", state.node_netns])


def _notices_metric(body: str, note: str, pod: LabPod) -> float:
    """``mirrorscope_notices_total`` of *note* for *pod* (labels in any order), 0 if absent."""
    want = {"note": note, "namespace": pod.namespace, "pod": pod.name}
    for m in re.finditer(r"^mirrorscope_notices_total{([^}]*)} (\S+)$", body, re.MULTILINE):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if all(labels.get(k) == v for k, v in want.items()):
            return float(m.group(2))
    return 0.0


def _wait_notice(service: Service, note: str, pod: LabPod, timeout: float) -> float:
    """Seconds until /metrics counts *note* for *pod* (fails after *timeout*)."""
    start = time.monotonic()
    body = ""
    while time.monotonic() - start < timeout:
        body = service.get("/metrics")[1]
        if _notices_metric(body, note, pod) >= 1:
            return time.monotonic() - start
        time.sleep(0.2)
    shown = [line for line in body.splitlines() if "notices" in line]
    raise AssertionError(f"no {note} for {pod.namespace}/{pod.name} within {timeout}s:\n"
                         + "\n".join(shown + service.lines[-20:]))  # fmt: skip


def _logged(records: Path) -> list[dict[str, object]]:
    files = sorted(records.glob("notices-*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def _run(pod: LabPod, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return pod_exec(pod, list(argv), capture_output=True, text=True, check=True, timeout=timeout)


def test_nmap_syn_scan_raises_port_scan_for_the_scanning_pod(
    mirrored_lab: LabState, tmp_path: Path
) -> None:
    """`nmap -sS` of 200 ports from the client pod: port_scan for default/client on /metrics
    within seconds of the scan's end, and in notices-*.jsonl with the victim and the count."""
    state = mirrored_lab
    scanner, victim = client(state), state.service(ServiceKind.IPERF3).pod
    records = tmp_path / "records"
    service = Service(state, records)
    try:
        _run(scanner, "nmap", "-sS", "-n", "-Pn", "-p", "1-200", "--max-retries", "0",
             victim.ipv4)  # fmt: skip
        # closed ports answer RST-ACK at once: the refusals raise it, well before the 5 s
        # attempt timeout would count unanswered probes (the victim's RST-ACKs differ only in
        # their source port, which the duplicate suppression must not take for NAT copies)
        waited = _wait_notice(service, "port_scan", scanner, timeout=10.0)
        assert waited < 4.0
        assert service.terminate() == 0
    finally:
        service.kill()
    logged = [n for n in _logged(records) if n["note"] == "port_scan"]
    assert [(n["src_pod"], n["target"]) for n in logged] == [(scanner.name, victim.ipv4)]
    assert logged[0]["count"] == 16


def test_address_sweep_raises_address_scan(mirrored_lab: LabState, tmp_path: Path) -> None:
    """An nmap sweep of 40 unused addresses on port 22 (no answers: S0) raises address_scan for
    the scanning pod once the attempt timeout passes."""
    state = mirrored_lab
    scanner = client(state)
    for host in range(1, 41):  # the SYNs leave the pod only once the neighbour is "known"
        _run(scanner, "ip", "neigh", "replace", f"{SWEEP_NET}.{host}", "lladdr",
             "02:00:00:00:c8:01", "dev", "eth0", "nud", "permanent")  # fmt: skip
    records = tmp_path / "records"
    service = Service(state, records)
    try:
        _run(scanner, "nmap", "-sS", "-n", "-Pn", "--send-ip", "-p", "22", "--max-retries", "0",
             "--host-timeout", "5s", f"{SWEEP_NET}.1-40")  # fmt: skip
        _wait_notice(service, "address_scan", scanner, timeout=12.0)
        assert service.terminate() == 0
    finally:
        service.kill()
        _run(scanner, "ip", "neigh", "flush", "to", f"{SWEEP_NET}.0/24")
    logged = [n for n in _logged(records) if n["note"] == "address_scan"]
    assert [(n["src_pod"], n["target"]) for n in logged] == [(scanner.name, "port 22/tcp")]


def test_hping3_syn_flood_raises_syn_flood(mirrored_lab: LabState, tmp_path: Path) -> None:
    """hping3 sends 4000 SYNs to the HTTP pod in under two seconds: syn_flood for the victim,
    raised for the flooding pod."""
    state = mirrored_lab
    flooder, victim = client(state), state.service(ServiceKind.HTTP).pod
    records = tmp_path / "records"
    service = Service(state, records)
    try:
        _run(flooder, "hping3", "-q", "-S", "-p", "80", "-i", "u300", "-c", "4000", victim.ipv4)
        _wait_notice(service, "syn_flood", flooder, timeout=5.0)
        assert service.terminate() == 0
    finally:
        service.kill()
    logged = [n for n in _logged(records) if n["note"] == "syn_flood"]
    assert [(n["src_pod"], n["target"]) for n in logged] == [(flooder.name, victim.ipv4)]


def test_busy_ordinary_traffic_raises_no_notice(mirrored_lab: LabState, tmp_path: Path) -> None:
    """wrk with a new connection per request, iperf3, DNS with NXDOMAIN, periodic probe-like
    HTTP and a refused connection: no notice on /metrics, no notice log."""
    state = mirrored_lab
    src = client(state)
    http = state.service(ServiceKind.HTTP)
    dns = state.service(ServiceKind.DNS)
    records = tmp_path / "records"
    service = Service(state, records)
    try:
        url = f"http://{http.pod.ipv4}:{http.port}/"
        _run(src, "wrk", "-t2", "-c32", "-d4s", "-H", "Connection: close", url)
        run_traffic(state)  # keep-alive HTTP, DNS incl. NXDOMAIN, ping, iperf3, one refusal
        for i in range(10):  # kubelet-style probes and lookups of names that do not exist
            _run(src, "curl", "-sS", "-o", "/dev/null", url)
            _run(src, "dig", f"@{dns.pod.ipv4}", f"nothing-{i}.example.invalid", "+time=1",
                 "+tries=1")  # fmt: skip
            time.sleep(0.2)
        time.sleep(6.0)  # past the attempt timeout: unanswered SYNs would count by now
        body = service.get("/metrics")[1]
        assert "mirrorscope_notices_total{" not in body, body
        assert service.terminate() == 0
    finally:
        service.kill()
    assert _logged(records) == []
