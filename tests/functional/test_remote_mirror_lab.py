"""`mirrorctl lab up --remote-mirror`: a lab whose br-int already mirrors into a collector."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from mirrorctl.lab import read_state
from tests.functional.conftest import unique_lab_name


def mirrorctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mirrorctl.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_lab_up_remote_mirror_sends_erspan_iii_to_the_collector_and_down_removes_it(
    tmp_path: Path,
) -> None:
    """up --remote-mirror erspan2 builds the collector and a select_all ERSPAN III mirror whose
    frames reach the collector at once; status shows the tunnel; down removes the collector."""
    name = unique_lab_name("r")
    where = ["--name", name, "--run-dir", str(tmp_path / "run")]
    collector = f"ms-{name}-collector"
    pcap = tmp_path / "collector.pcap"
    try:
        up = mirrorctl("lab", "up", *where, "--pods", "2", "--remote-mirror", "erspan2")
        assert up.returncode == 0, up.stderr
        assert (
            "mirror mirrorscope-erspan-mirror: all traffic on br-int -> erspan-mirror" in up.stdout
        )
        assert f"collector: netns {collector}, eth0 10.250.0.2/24" in up.stdout
        state = read_state(tmp_path / "run")
        assert state is not None

        lab_status = json.loads(mirrorctl("lab", "status", *where, "--json").stdout)
        assert lab_status["healthy"] is True
        assert {"kind": "netns", "name": collector, "ok": True, "detail": ""} in lab_status[
            "checks"
        ]
        env = ["--ovsdb", state.ovsdb, "--netns", state.node_netns]
        doc = json.loads(mirrorctl("status", "--json", *env).stdout)
        (mirror,) = doc["mirrors"]
        assert mirror["output_tunnel"]["type"] == "erspan"
        assert mirror["output_tunnel"]["options"]["erspan_ver"] == "2"

        # No neighbour to learn first: up has waited for it, so the very first copies arrive.
        capture = subprocess.Popen(
            ["ip", "netns", "exec", collector, "tcpdump", "-i", "eth0", "-n", "-U",
             "--immediate-mode", "-w", str(pcap), "ip", "proto", "gre"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        assert capture.stderr is not None
        assert b"listening on" in capture.stderr.readline()
        a, b = state.pods
        try:
            subprocess.run(
                ["ip", "netns", "exec", a.netns, "ping", "-c", "1", "-W", "2", b.ipv4],
                check=True,
                capture_output=True,
                timeout=30,
            )
            time.sleep(0.3)
        finally:
            capture.send_signal(signal.SIGINT)
            capture.communicate(timeout=20)
        rows = subprocess.run(
            ["tshark", "-r", str(pcap), "-n", "-T", "fields", "-e", "erspan.version",
             "-e", "ip.src", "-e", "icmp.type", "-E", "occurrence=l", "-Y", "icmp"],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout.splitlines()  # fmt: skip
        assert rows == [f"2\t{a.ipv4}\t8", f"2\t{b.ipv4}\t0"]
    finally:
        down = mirrorctl("lab", "down", *where)
    assert down.returncode == 0, down.stderr
    assert not Path(f"/var/run/netns/{collector}").exists()
