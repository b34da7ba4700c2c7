"""The running service's pcap store on the lab: a pod's download equals what tcpdump saw on its
veth (1 and 2 workers, the last second included, no other pod's packets), `pcap follow` feeds
tshark live, an Alertmanager webhook posted with curl leaves a kept pcapng of the pod, the quota
evicts the oldest files without stopping anything, and a full filesystem is reported, not fatal."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from mirrorctl import LabPod, LabState, ServiceKind, pod_exec
from mirrorctl.cli import main
from tests.functional._flowtruth import Tcpdump, client
from tests.functional._service import Service, metric
from tests.functional.conftest import LabFactory

TOKEN = "pcap-lab-token"  # noqa: S105 - a test fixture, guards nothing real


@pytest.fixture(scope="module")
def mirrored_lab(lab_factory: LabFactory) -> Iterator[LabState]:
    state = lab_factory(pods=4)
    rc = main(["enable", "--global", "--ovsdb", state.ovsdb, "--netns", state.node_netns])
    assert rc == 0
    yield state
    main(["disable", "--global", "--ovsdb", state.ovsdb, "--netns", state.node_netns])


def start(state: LabState, tmp_path: Path, *extra: str) -> Service:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    service = Service(
        state, tmp_path / "records", "--token-file", str(token), "--pcap-min-free", "0", *extra
    )
    deadline = time.monotonic() + 15
    while service.get("/readyz")[0] != 200:
        assert time.monotonic() < deadline, "\n".join(service.lines)
        time.sleep(0.2)
    return service


def fetch(service: Service, path: str, **params: str) -> tuple[int, bytes]:
    url = service.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 - loopback
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def pod_filter(pod: LabPod) -> str:
    """A pod's packets as the issue defines them: its addresses, and ARP/ND by its MAC."""
    return (
        f"ip.addr=={pod.ipv4} or ipv6.addr=={pod.ipv6} or ((arp or (icmpv6.type>=133 and "
        f"icmpv6.type<=137)) and eth.addr=={pod.mac})"
    )


def lengths(pcap: Path, display: str = "") -> list[int]:
    argv = ["tshark", "-r", str(pcap), "-T", "fields", "-e", "frame.len"]
    if display:
        argv += ["-Y", display]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return sorted(int(x) for x in done.stdout.split())


def traffic(state: LabState, a: LabPod) -> subprocess.Popen[bytes]:
    """A's traffic with B (ARP and ND after a neighbour flush, HTTP v4/v6, pings); returns the
    background pings between two other pods, still running."""
    http = state.service(ServiceKind.HTTP)
    others = [p for p in state.pods if p not in (a, http.pod)]
    background = subprocess.Popen(
        ["ip", "netns", "exec", others[0].netns, "ping", "-i", "0.05", others[1].ipv4],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    pod_exec(a, ["ip", "neigh", "flush", "all"], check=True)
    run = lambda *argv: pod_exec(a, list(argv), check=True, capture_output=True, timeout=30)  # noqa: E731
    run("curl", "-sS", "-o", "/dev/null", f"http://{http.pod.ipv4}:{http.port}/")
    run("curl", "-sS", "-g", "-o", "/dev/null", f"http://[{http.pod.ipv6}]:{http.port}/")
    run("ping", "-c", "3", "-i", "0.2", http.pod.ipv4)
    run("ping", "-6", "-c", "3", "-i", "0.2", http.pod.ipv6)
    return background


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_pods_download_equals_tcpdump_on_its_veth(
    mirrored_lab: LabState, tmp_path: Path, workers: str
) -> None:
    """GET /api/v1/pcap?pod=A over the tcpdump's window: the same packets (count and lengths via
    tshark) as tcpdump on A's host-side veth, with A's last ping a moment before the download;
    every downloaded packet is A's."""
    a = client(mirrored_lab)
    service = start(mirrored_lab, tmp_path, "--pcap-dir", str(tmp_path / "pcap"),
                    "--workers", workers)  # fmt: skip
    truth = tmp_path / "veth.pcap"
    try:
        dump = Tcpdump(mirrored_lab.node_netns, truth, iface=a.host_veth, immediate=True)
        # The window opens a moment after tcpdump started and the truth is tcpdump's frames from
        # then on: a fresh lab's pod sends router solicitations by itself, and the mirror's copy
        # of a frame can be stamped microseconds before the veth's (one frame on both sides of
        # start_s failed this test once under two test workers)
        time.sleep(0.25)
        start_s = time.time()
        time.sleep(0.25)
        background = traffic(mirrored_lab, a)
        try:
            pod_exec(a, ["ping", "-c", "1", mirrored_lab.service(ServiceKind.HTTP).pod.ipv4],
                     check=True, capture_output=True)  # fmt: skip  # the last second
            last = time.time()
            time.sleep(0.3)
            dump.stop()
            end_s = time.time()
        finally:
            background.terminate()
            background.wait()
        code, body = fetch(service, "/api/v1/pcap", pod=a.label, start=f"{start_s:.6f}",
                           end=f"{end_s:.6f}")  # fmt: skip
        assert time.time() - last < 1.5
        assert code == 200, body
        got = tmp_path / "download.pcapng"
        got.write_bytes(body)
        expected = lengths(truth, f"({pod_filter(a)}) and frame.time_epoch >= {start_s:.6f}")
        assert len(expected) > 20
        assert lengths(got) == expected
        assert lengths(got, f"not ({pod_filter(a)})") == []  # nothing of another pod
        assert service.terminate() == 0
    finally:
        service.kill()


def test_pcap_follow_feeds_tshark_as_packets_happen(mirrored_lab: LabState, tmp_path: Path) -> None:
    """`mirrorctl pcap follow --pod A -w - | tshark -l -r -` prints A's ping within seconds of
    it, while the stream is still open (A pings twice a second from the follow's start on: a
    ping before the stream opened is not the follow's to show)."""
    a = client(mirrored_lab)
    b = mirrored_lab.service(ServiceKind.HTTP).pod
    service = start(mirrored_lab, tmp_path, "--pcap-dir", str(tmp_path / "pcap"))
    env = {**os.environ, "MIRRORSCOPE_TOKEN": TOKEN}
    follow = subprocess.Popen(
        [sys.executable, "-m", "mirrorctl.cli", "pcap", "follow", "--pod", a.label,
         "--server", service.url, "-w", "-"],
        stdout=subprocess.PIPE, env=env,
    )  # fmt: skip
    shark = subprocess.Popen(
        ["tshark", "-l", "-n", "-r", "-"], stdin=follow.stdout, stdout=subprocess.PIPE, text=True,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    # No fixed wait for the follow to connect (a loaded machine took longer than 1.5 s once):
    # the pings go on until one shows
    ping = subprocess.Popen(
        ["ip", "netns", "exec", a.netns, "ping", "-q", "-i", "0.5", "-c", "60", b.ipv4],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert shark.stdout is not None
        # A's other packets (IPv6 neighbour discovery, ARP) may come first: read until the ping
        seen: list[str] = []
        pinged = threading.Event()

        def read(out: IO[str]) -> None:
            for line in out:
                seen.append(line)
                if b.ipv4 in line and "ICMP" in line:
                    pinged.set()

        threading.Thread(target=read, args=(shark.stdout,), daemon=True).start()
        assert pinged.wait(15), seen
        assert follow.poll() is None  # still streaming
    finally:
        ping.kill()
        ping.wait()
        follow.terminate()
        shark.terminate()
        follow.wait()
        shark.wait()
        service.kill()


def test_an_alertmanager_webhook_posted_with_curl_yields_a_kept_pcapng(
    mirrored_lab: LabState, tmp_path: Path
) -> None:
    """curl POSTs Alertmanager's payload for pod A: 202; after the lookahead a pcapng of A's
    packets is listed in /pcap/kept and tshark reads A's pings in it."""
    a = client(mirrored_lab)
    b = mirrored_lab.service(ServiceKind.HTTP).pod
    service = start(mirrored_lab, tmp_path, "--pcap-dir", str(tmp_path / "pcap"),
                    "--alert-lookback", "10", "--alert-lookahead", "2")  # fmt: skip
    try:
        pod_exec(a, ["ping", "-c", "2", "-i", "0.2", b.ipv4], check=True, capture_output=True)
        payload = {
            "version": "4", "status": "firing", "receiver": "mirrorscope",
            "alerts": [{"status": "firing", "fingerprint": "f00d",
                        "labels": {"alertname": "PodSlow", "namespace": a.namespace,
                                   "pod": a.name},
                        "startsAt": "2026-01-01T00:00:00Z"}],
        }  # fmt: skip
        done = subprocess.run(
            ["curl", "-sS", "-w", "%{http_code}", "-H", f"Authorization: Bearer {TOKEN}",
             "-H", "Content-Type: application/json", "-d", json.dumps(payload),
             service.url + "/api/v1/alerts"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert done.stdout.endswith("202"), done.stdout
        pod_exec(a, ["ping", "-c", "2", "-i", "0.2", b.ipv4], check=True, capture_output=True)
        deadline = time.monotonic() + 15
        kept: list[dict[str, object]] = []
        while not kept and time.monotonic() < deadline:
            time.sleep(0.5)
            kept = json.loads(fetch(service, "/api/v1/pcap/kept")[1])["captures"]
        assert kept, "\n".join(service.lines)
        code, body = fetch(service, f"/api/v1/pcap/kept/{kept[0]['name']}")
        assert code == 200
        got = tmp_path / "kept.pcapng"
        got.write_bytes(body)
        pings = lengths(got, f"icmp and ip.addr=={a.ipv4}")
        assert len(pings) == 8  # both rounds: before (lookback) and after (lookahead)
        assert metric(service.get("/metrics")[1], "mirrorscope_pcap_kept_captures") == 1
    finally:
        service.kill()


def iperf(state: LabState, seconds: int) -> None:
    a = client(state)
    srv = state.service(ServiceKind.IPERF3)
    pod_exec(a, ["iperf3", "-c", srv.pod.ipv4, "-p", str(srv.port), "-t", str(seconds),
                 "-b", "100M"], check=True, capture_output=True, timeout=60)  # fmt: skip


def test_the_quota_evicts_the_oldest_files_and_downloads_keep_working(
    mirrored_lab: LabState, tmp_path: Path
) -> None:
    """A 4 MiB quota of 512 KiB files filled several times over: files were evicted, the store
    stays under its quota, the newest file is there, a download of the last seconds works, and
    the service never stopped."""
    service = start(mirrored_lab, tmp_path, "--pcap-dir", str(tmp_path / "pcap"),
                    "--pcap-quota", "4M", "--pcap-file-size", "512K")  # fmt: skip
    try:
        iperf(mirrored_lab, 3)
        body = service.get("/metrics")[1]
        assert metric(body, "mirrorscope_pcap_evictions_total") > 0
        assert metric(body, "mirrorscope_pcap_store_bytes") <= 4 << 20
        doc = json.loads(fetch(service, "/api/v1/pcap/files")[1])
        assert doc["files"][-1]["writing"]  # the newest, being written, is never evicted
        code, _ = fetch(service, "/api/v1/pcap", pod=client(mirrored_lab).label, since="3s")
        assert code == 200
        assert service.proc.poll() is None
        assert service.terminate() == 0
    finally:
        service.kill()


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "fs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_filesystem_keeps_the_service_up_and_reports_it(
    mirrored_lab: LabState, tmp_path: Path, small_fs: Path
) -> None:
    """The store on a 1 MiB tmpfs that something else fills: the service keeps capturing and
    stays ready, /pcap/files and /metrics say the store is full and count the frames not stored;
    once the space is freed it stores again."""
    service = start(mirrored_lab, tmp_path, "--pcap-dir", str(small_fs / "pcap"),
                    "--pcap-quota", "64M", "--pcap-file-size", "256K")  # fmt: skip
    filler = small_fs / "filler"
    try:
        with filler.open("wb", buffering=0) as f, contextlib.suppress(OSError):
            while True:  # until ENOSPC
                f.write(b"\0" * 65536)
        iperf(mirrored_lab, 2)
        store = json.loads(fetch(service, "/api/v1/pcap/files")[1])["store"]
        assert store["full"] is True, store
        assert store["full_reason"]
        assert store["frames_not_stored"] > 0
        body = service.get("/metrics")[1]
        assert metric(body, "mirrorscope_pcap_store_full") == 1
        assert metric(body, "mirrorscope_pcap_frames_not_stored_total") > 0
        assert service.get("/readyz")[0] == 200
        assert service.proc.poll() is None
        filler.unlink()
        stored = metric(body, "mirrorscope_pcap_frames_stored_total")
        time.sleep(1.5)  # the store tries again every second
        iperf(mirrored_lab, 1)
        body = service.get("/metrics")[1]
        assert metric(body, "mirrorscope_pcap_frames_stored_total") > stored
        assert service.terminate() == 0
    finally:
        service.kill()
