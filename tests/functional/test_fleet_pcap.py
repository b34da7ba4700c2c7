"""One pod on two nodes: two labs on this machine (the same pod names, each lab its own node
and mirror0), a service capturing each, and `mirrorctl pcap get --server A --server B` returns
one pcapng holding exactly the union of both nodes' packets of the pod, in time order, each on an
interface named after its node; a service killed mid-download is named and the other's packets
all arrive."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from mirrorctl import LabPod, LabState, ServiceKind, pod_exec
from mirrorctl.cli import main
from tests.functional._flowtruth import Tcpdump, client
from tests.functional._service import Service
from tests.functional.conftest import LabFactory
from tests.functional.test_pcap_service import TOKEN, iperf, pod_filter, start


@pytest.fixture(scope="module")
def two_nodes(lab_factory: LabFactory) -> Iterator[tuple[LabState, LabState]]:
    seed = random.randrange(1 << 30)
    labs = (
        lab_factory(pods=4, rng=random.Random(seed)),
        lab_factory(pods=4, rng=random.Random(seed)),
    )
    for state in labs:
        assert (
            main(["enable", "--global", "--ovsdb", state.ovsdb, "--netns", state.node_netns]) == 0
        )
    assert client(labs[0]).label == client(labs[1]).label  # one pod name on both nodes
    yield labs
    for state in labs:
        main(["disable", "--global", "--ovsdb", state.ovsdb, "--netns", state.node_netns])


def shark(pcap: Path, display: str, *fields: str) -> list[list[str]]:
    argv = ["tshark", "-r", str(pcap), "-T", "fields", "-E", "separator=|"]
    for f in fields:
        argv += ["-e", f]
    if display:
        argv += ["-Y", display]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return [line.split("|") for line in out.splitlines()]


def serve(state: LabState, home: Path) -> Service:
    """A service on ``state``'s mirror0 storing pcaps under ``home``."""
    home.mkdir()
    return start(state, home, "--pcap-dir", str(home / "pcap"))


def pings(state: LabState, pod: LabPod, count: int) -> None:
    http = state.service(ServiceKind.HTTP).pod
    pod_exec(pod, ["ping", "-c", str(count), "-i", "0.1", http.ipv4], check=True,
             capture_output=True)  # fmt: skip
    pod_exec(pod, ["curl", "-sS", "-o", "/dev/null", f"http://{http.ipv4}/"], check=True,
             capture_output=True)  # fmt: skip


def test_get_from_two_nodes_is_the_union_of_their_captures_in_time_order(
    two_nodes: tuple[LabState, LabState], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pod talks on both nodes (3 pings there, 5 here, HTTP on each): the merged download
    holds per node interface exactly the packets tcpdump saw on that node's veth of the pod
    (count and lengths via tshark), in time order, and the two interfaces are the nodes."""
    services = []
    dumps = []
    try:
        for i, state in enumerate(two_nodes):
            services.append(serve(state, tmp_path / f"n{i}"))
            pod = client(state)
            dumps.append(Tcpdump(state.node_netns, tmp_path / f"truth{i}.pcap",
                                 iface=pod.host_veth, immediate=True))  # fmt: skip
        # The window opens a moment after the tcpdumps started, not at it: a fresh lab's pods
        # sent router solicitations right then once, and the mirror's copy of a frame can be
        # stamped some microseconds before the veth's, putting one frame on both sides of start_s
        time.sleep(0.25)
        start_s = time.time()
        time.sleep(0.5)
        for state, count in zip(two_nodes, (3, 5), strict=True):
            pings(state, client(state), count)
        time.sleep(1.0)
        for d in dumps:
            d.stop()
        end_s = time.time()
        monkeypatch.setenv("MIRRORSCOPE_TOKEN", TOKEN)
        merged = tmp_path / "merged.pcapng"
        label = client(two_nodes[0]).label
        rc = main(["pcap", "get", "--pod", label, "--server", services[0].url,
                   "--server", services[1].url, "--start", f"{start_s:.6f}",
                   "--end", f"{end_s:.6f}", "-o", str(merged)])  # fmt: skip
        assert rc == 0
        rows = shark(merged, "", "frame.interface_name", "frame.len", "frame.time_epoch")
        times = [float(r[2]) for r in rows]
        assert times == sorted(times)
        assert {r[0] for r in rows} == {s.name for s in two_nodes}
        for i, state in enumerate(two_nodes):
            # from the window's start: node A's tcpdump runs through B's service start (seconds
            # on a loaded machine), when a fresh lab's pods send router solicitations
            since = f"frame.time_epoch >= {start_s:.6f}"
            truth = shark(tmp_path / f"truth{i}.pcap", f"({pod_filter(client(state))}) and {since}",
                          "frame.len")  # fmt: skip
            assert len(truth) > 10
            mine = sorted(int(r[1]) for r in rows if r[0] == state.name)
            assert mine == sorted(int(r[0]) for r in truth), state.name
        echo = shark(merged, "icmp.type == 8", "frame.interface_name")
        assert sorted(r[0] for r in echo) == sorted(
            [two_nodes[0].name] * 3 + [two_nodes[1].name] * 5
        )
        for s in services:
            assert s.terminate() == 0
    finally:
        for d in dumps:
            if d.proc.poll() is None:
                d.stop()
        for s in services:
            s.kill()


def test_a_node_killed_mid_download_is_named_and_the_other_nodes_packets_arrive(
    two_nodes: tuple[LabState, LabState], tmp_path: Path
) -> None:
    """Node B holds ~25 MB of the pod's iperf3 traffic; while the merged download is held back
    (its reader pauses) B's service is killed: stderr and the file name B, exit 3, and every
    packet of the pod on node A (counted by tcpdump there) is in the file."""
    a_state, b_state = two_nodes
    services = [serve(s, tmp_path / f"n{i}") for i, s in enumerate(two_nodes)]
    try:
        pod_a = client(a_state)
        dump = Tcpdump(a_state.node_netns, tmp_path / "truth-a.pcap", iface=pod_a.host_veth,
                       immediate=True)  # fmt: skip
        start_s = time.time()
        time.sleep(0.5)
        pings(a_state, pod_a, 20)
        iperf(b_state, 2)
        time.sleep(1.0)
        dump.stop()
        end_s = time.time()
        env = {**os.environ, "MIRRORSCOPE_TOKEN": TOKEN}
        get = subprocess.Popen(
            [sys.executable, "-m", "mirrorctl.cli", "pcap", "get", "--pod", pod_a.label,
             "--server", services[0].url, "--server", services[1].url,
             "--start", f"{start_s:.6f}", "--end", f"{end_s:.6f}", "-o", "-"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, bufsize=0,
        )  # fmt: skip  # unbuffered: communicate() reads the pipe itself, past any buffer
        assert get.stdout is not None
        head = get.stdout.read(1 << 16)  # the merge has begun; it now blocks on the pipe
        time.sleep(1.0)
        services[1].proc.send_signal(signal.SIGKILL)
        services[1].proc.wait()
        body, err = get.communicate(timeout=60)
        merged = tmp_path / "partial.pcapng"
        merged.write_bytes(head + body)
        b_name = services[1].url.removeprefix("http://")
        assert get.returncode == 3, err.decode()
        assert f"{b_name}: " in err.decode()
        rows = shark(merged, "", "frame.interface_name", "frame.len")
        truth_a = shark(tmp_path / "truth-a.pcap", pod_filter(pod_a), "frame.len")
        assert sorted(int(r[1]) for r in rows if r[0] == a_state.name) == sorted(
            int(r[0]) for r in truth_a
        )
        assert any(r[0] == b_state.name for r in rows)  # B's packets up to the kill
        assert f"{b_name} failed".encode() in merged.read_bytes()  # its statistics block
        assert services[0].terminate() == 0
    finally:
        for s in services:
            s.kill()


def test_the_report_over_both_nodes_is_the_sum_of_each_nodes_report(
    two_nodes: tuple[LabState, LabState], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`report --server A --server B` per pod (the same names on both nodes): flows, tx and rx
    bytes equal the sum of A's and B's own reports over the same window."""
    services = [serve(s, tmp_path / f"n{i}") for i, s in enumerate(two_nodes)]
    try:
        start_s = time.time()
        for state, count in zip(two_nodes, (2, 4), strict=True):
            pings(state, client(state), count)
        time.sleep(2.0)  # the last packets through the ring and into the table
        end_s = time.time()
        monkeypatch.setenv("MIRRORSCOPE_TOKEN", TOKEN)

        def report(name: str, *urls: str) -> pd.DataFrame:
            out = tmp_path / f"{name}.csv"
            argv = ["report", "--start", f"{start_s:.3f}", "--end", f"{end_s:.3f}",
                    "--format", "csv", "-o", str(out)]  # fmt: skip
            for url in urls:
                argv += ["--server", url]
            assert main(argv) == 0
            return pd.read_csv(out, keep_default_na=False).set_index(["namespace", "pod"])

        a = report("a", services[0].url)
        b = report("b", services[1].url)
        both = report("both", services[0].url, services[1].url)
        pod = (client(two_nodes[0]).namespace, client(two_nodes[0]).name)
        assert a.loc[pod, "flows"] > 0
        assert b.loc[pod, "flows"] > 0
        for column in ("flows", "tx_bytes", "rx_bytes"):
            summed = a[column].add(b[column], fill_value=0)
            assert both[column].sort_index().to_dict() == summed.sort_index().to_dict(), column
    finally:
        for s in services:
            s.kill()
