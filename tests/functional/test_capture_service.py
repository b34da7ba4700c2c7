"""`mirrorctl capture run` as a process on the lab: records, metrics, and SIGTERM losing nothing.

The service captures mirror0 while real programs talk between pods and tcpdump captures the same
mirror independently; a TCP connection is held open until after SIGTERM, so its record can only
come from the shutdown flush.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from mirrorctl import LabState, ServiceKind, pod_exec
from mirrorctl.cli import main
from tests.functional._flowtruth import (
    Tcpdump,
    by_proto,
    client,
    our_flows,
    record_lines,
    run_traffic,
    tshark_flows,
)
from tests.functional._service import Service, metric
from tests.functional.conftest import LabFactory

HOLD = """
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.sendall(b"GET / HTTP/1.1\\r\\nHost: lab\\r\\n\\r\\n")
s.recv(65536)
print("held", s.getsockname()[1], flush=True)
time.sleep(120)
"""


@pytest.fixture(scope="module")
def mirrored_lab(lab_factory: LabFactory) -> Iterator[LabState]:
    """A lab of our own with a global mirror into mirror0, enabled through mirrorctl's CLI."""
    state = lab_factory(pods=4)
    assert main(["enable", "--global", "--ovsdb", state.ovsdb, "--netns", state.node_netns]) == 0
    yield state
    main(["disable", "--global", "--ovsdb", state.ovsdb, "--netns", state.node_netns])


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_flushes_open_flows_and_records_match_tshark(
    mirrored_lab: LabState, tmp_path: Path, workers: int
) -> None:
    """While real traffic runs: /metrics and /readyz answer; SIGTERM exits 0; the held-open
    connection is recorded with end_reason flush; all TCP/UDP records equal tshark's view of a
    tcpdump capture of the same mirror (with 2 workers: their records together)."""
    state = mirrored_lab
    records = tmp_path / "records"
    service = Service(state, records, "--workers", str(workers))
    held: subprocess.Popen[str] | None = None
    try:
        dump = Tcpdump(state.node_netns, tmp_path / "mirror0.pcap")
        try:
            http = state.service(ServiceKind.HTTP)
            held = subprocess.Popen(
                ["ip", "netns", "exec", client(state).netns, sys.executable, "-c", HOLD,
                 http.pod.ipv4, str(http.port)],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            assert held.stdout is not None
            held_port = int(held.stdout.readline().split()[1])
            run_traffic(state)
            time.sleep(1.5)  # last packets in both captures; one tick of worker reports
        finally:
            tcpdump_stats = dump.stop()
        assert "0 packets dropped by kernel" in tcpdump_stats, tcpdump_stats
        status, body = service.get("/metrics")
        assert status == 200
        assert metric(body, "mirrorscope_capture_received_packets_total") > 50
        assert metric(body, "mirrorscope_capture_kernel_dropped_packets_total") == 0
        assert service.get("/readyz")[0] == 200
        assert service.get("/healthz")[0] == 200
        assert service.terminate() == 0, "\n".join(service.lines)
    finally:
        service.kill()
        if held is not None:
            held.kill()
            held.wait()
    files = sorted(records.glob("*.parquet"))  # closed files are rewritten as Parquet
    assert not list(records.glob("*.part")), "a records file was left half-written"
    assert len({re.sub(r"-\d{8}T.*", "", f.name) for f in files}) == workers  # one per worker
    ours = our_flows(record_lines(records))
    held_recs = [r for r in ours.records if r["proto"] == "tcp" and r["id.orig_p"] == held_port]
    assert [r["end_reason"] for r in held_recs] == ["flush"]
    assert held_recs[0]["conn_state"] == "S1"  # established, never closed
    truth = tshark_flows(tmp_path / "mirror0.pcap")
    assert by_proto(ours.counts) == by_proto(truth)
    assert ours.counts == truth


def test_unreachable_ovsdb_is_not_fatal_and_shows_on_readyz(
    mirrored_lab: LabState, tmp_path: Path
) -> None:
    """With OVSDB pointing nowhere the service still captures and serves /metrics, /readyz says
    not ready, the log says why, and SIGTERM still exits 0."""
    state = mirrored_lab
    service = Service(
        state, tmp_path / "records", "--node", "n1", "--ovsdb", f"unix:{tmp_path}/nothing.sock"
    )
    try:
        src = client(state)
        pod_exec(src, ["ping", "-c", "3", "-i", "0.2", state.pods[0].ipv4], check=True,
                 capture_output=True, timeout=10)  # fmt: skip
        time.sleep(0.5)
        status, body = service.get("/readyz")
        assert status == 503
        assert "not ready" in body
        status, body = service.get("/metrics")
        assert status == 200
        assert metric(body, "mirrorscope_capture_received_packets_total") >= 6
        assert service.terminate() == 0
    finally:
        service.kill()
    assert any("unreachable" in line for line in service.lines), "\n".join(service.lines)


def test_keep_mirror_global_creates_the_mirror_and_captures_through_it(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    """On a lab with no mirror, --keep-mirror global writes one, waits for mirror0 to appear and
    captures pod traffic through it; the ping is in the records with both pods named."""
    state = lab_factory(pods=4)
    records = tmp_path / "records"
    service = Service(state, records, "--keep-mirror", "global")
    try:
        src, dst = client(state), state.service(ServiceKind.HTTP).pod
        pod_exec(src, ["ping", "-c", "3", "-i", "0.2", dst.ipv4], check=True,
                 capture_output=True, timeout=10)  # fmt: skip
        time.sleep(0.5)
        assert service.terminate() == 0, "\n".join(service.lines)
    finally:
        service.kill()
    ours = our_flows(record_lines(records))
    pings = [
        r for r in ours.records
        if r["proto"] == "icmp" and r["id.orig_h"] == src.ipv4 and r["id.resp_h"] == dst.ipv4
    ]  # fmt: skip
    assert [(r["orig_pkts"], r["resp_pkts"]) for r in pings] == [(3, 3)]
    assert (pings[0]["orig_pod"], pings[0]["resp_pod"]) == (src.name, dst.name)


def _children(pid: int) -> set[int]:
    """PIDs whose parent is ``pid`` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _state(pid: int) -> str:
    """The process's state letter from /proc (R, S, D, Z...), "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _running(pid: int) -> bool:
    """Not exited: a zombie has exited and only waits for whoever adopted it to reap it."""
    return _state(pid) not in ("", "Z", "X")


def test_workers_exit_when_the_parent_is_killed(mirrored_lab: LabState, tmp_path: Path) -> None:
    """SIGKILL to `capture run --workers 2`'s parent: every worker notices and exits within
    seconds instead of blocking forever on a report nobody reads."""
    service = Service(mirrored_lab, tmp_path / "records", "--workers", "2")
    try:
        workers = _children(service.proc.pid)
        workers = {p for p in workers if "capture" in Path(f"/proc/{p}/cmdline").read_text()}
        assert len(workers) >= 2, f"expected 2 worker processes, found {workers}"
        time.sleep(1.5)  # at least one report tick each
        service.proc.kill()
        service.proc.wait()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_running(p) for p in workers):
            time.sleep(0.1)
        alive = {p: _state(p) for p in workers if _running(p)}
        assert not alive, f"workers still running after the parent died (pid: state): {alive}"
    finally:
        service.kill()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_token_file_guards_the_running_services_api_not_its_metrics(
    mirrored_lab: LabState, tmp_path: Path, workers: str
) -> None:
    """`capture run --token-file F` (1 and 2 workers): /api/v1/status is 401 without the token
    and reports captured frames with it, while /metrics and /healthz answer without credentials."""
    token = tmp_path / "token"
    token.write_text("lab-token\n")
    service = Service(
        mirrored_lab, tmp_path / "records", "--token-file", str(token), "--workers", workers
    )
    try:
        ping = ["ping", "-c", "3", "-i", "0.2", mirrored_lab.pods[0].ipv4]
        pod_exec(client(mirrored_lab), ping, check=True, capture_output=True, timeout=10)
        assert service.get("/api/v1/status")[0] == 401
        req = urllib.request.Request(  # noqa: S310 - the service's loopback http:// URL
            service.url + "/api/v1/status", headers={"Authorization": "Bearer lab-token"}
        )
        received = 0
        deadline = time.monotonic() + 10  # with workers, counters arrive with their 1 s reports
        while received < 6 and time.monotonic() < deadline:
            time.sleep(0.5)
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - the same URL
                received = json.loads(resp.read())["capture"]["received"]
        assert received >= 6
        assert service.get("/metrics")[0] == 200
        assert service.get("/healthz")[0] == 200
        assert service.terminate() == 0
    finally:
        service.kill()
    assert not any("no API token" in line for line in service.lines)
