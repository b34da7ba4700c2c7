"""The local lab: real namespaces, veths, a private OVS and in-pod services, tried with traffic."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mirrorctl import Lab, LabPod, LabState, ServiceKind, node_exec, pod_exec
from mirrorctl.lab import LabError
from mirrorctl.lab._services import dns_name
from tests.functional._ovs import vsctl
from tests.functional.conftest import LabFactory, unique_lab_name

pytestmark = pytest.mark.root


def vsctl_map(state: LabState, table: str, record: str, column: str) -> dict[str, str]:
    out = vsctl(state, "--format=json", "--columns", column, "list", table, record)
    cell = json.loads(out)["data"][0][0]
    assert cell[0] == "map"
    return dict(cell[1])


def client(state: LabState) -> LabPod:
    """A pod that runs no service, so its traffic is always 'from another pod'."""
    serving = {s.pod for s in state.services}
    return next(p for p in state.pods if p not in serving)


def ping(pod: LabPod, address: str) -> subprocess.CompletedProcess[str]:
    return pod_exec(
        pod, ["ping", "-c", "1", "-W", "2", address], capture_output=True, text=True, check=False
    )


def dig(pod: LabPod, server: str, name: str, rtype: str) -> str:
    result = pod_exec(
        pod,
        ["dig", f"@{server}", name, rtype, "+time=2", "+tries=1"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def our_processes(run_dir: Path) -> list[str]:
    """Live processes whose command line names the run dir (zombies have none)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if f"{run_dir}/" in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


def is_live(pid: int) -> bool:
    """A zombie's cmdline is empty: gone as far as anyone can tell, only not yet reaped."""
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())
    except OSError:
        return False


def netns_list() -> str:
    return subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=False
    ).stdout


def test_pods_reach_each_other_over_br_int_in_v4_and_v6(lab: LabState) -> None:
    """Every pod answers ICMP echo from another pod on both its IPv4 and IPv6 address."""
    src = client(lab)
    for pod in lab.pods:
        if pod is src:
            continue
        for address in (pod.ipv4, pod.ipv6):
            result = ping(src, address)
            assert result.returncode == 0, f"{src.label} -> {pod.label} {address}: {result.stdout}"


def test_pods_and_node_reach_each_other_through_ovn0(lab: LabState) -> None:
    """A pod reaches the node's join IP on ovn0, and the node reaches the pod back."""
    pod = lab.pods[0]
    assert ping(pod, lab.node_port.ipv4).returncode == 0
    back = node_exec(lab, ["ping", "-c", "1", "-W", "2", pod.ipv4], capture_output=True)
    assert back.returncode == 0


def test_http_service_answers_another_pod_with_keepalive(lab: LabState) -> None:
    """nginx serves a 1 MiB document to another pod, and a second request reuses the connection."""
    http = lab.service(ServiceKind.HTTP)
    url = f"http://{http.pod.ipv4}:{http.port}/1m.bin"
    result = pod_exec(
        client(lab),
        [
            *("curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-o", "/dev/null"),
            *("-w", "%{http_code} %{size_download} %{num_connects}\n", url, url),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    first, second = result.stdout.split("\n")[:2]
    assert first == "200 1048576 1"
    assert second == "200 1048576 0", "keep-alive: the second request must not open a connection"


def test_http_service_answers_over_ipv6(lab: LabState) -> None:
    """nginx also listens on the pod's IPv6 address."""
    http = lab.service(ServiceKind.HTTP)
    result = pod_exec(
        client(lab),
        ["curl", "-sS", "-g", "--max-time", "5", f"http://[{http.pod.ipv6}]:{http.port}/healthz"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == "ok\n"


def test_dns_service_answers_pod_records_and_nxdomain(lab: LabState) -> None:
    """dnsmasq resolves each pod's A and AAAA record and says NXDOMAIN for unknown cluster names."""
    dns = lab.service(ServiceKind.DNS)
    src = client(lab)
    for pod in lab.pods:
        name = dns_name(pod.namespace, pod.name)
        assert re.search(rf"\sA\s+{re.escape(pod.ipv4)}$", dig(src, dns.pod.ipv4, name, "A"), re.M)
        aaaa = dig(src, dns.pod.ipv6, name, "AAAA")
        assert re.search(rf"\sAAAA\s+{re.escape(pod.ipv6)}$", aaaa, re.M)
    unknown = dig(src, dns.pod.ipv4, "no-such-pod.default.svc.cluster.local", "A")
    assert "status: NXDOMAIN" in unknown


def test_iperf3_service_carries_tcp_at_line_rate(lab: LabState) -> None:
    """TCP through the userspace datapath does not stall: iperf3 moves > 100 Mbit/s in 1 s."""
    iperf = lab.service(ServiceKind.IPERF3)
    result = pod_exec(
        client(lab),
        ["iperf3", "-c", iperf.pod.ipv4, "-p", str(iperf.port), "-t", "1", "-J"],
        capture_output=True,
        text=True,
        check=True,
        timeout=20,
    )
    received = json.loads(result.stdout)["end"]["sum_received"]["bits_per_second"]
    assert received > 100e6


def test_veths_have_tx_checksum_offload_off_on_both_ends(lab: LabState) -> None:
    """Both ends of every pod veth report tx-checksumming off (else TCP stalls in OVS netdev)."""
    for pod in lab.pods:
        for netns, ifname in ((lab.node_netns, pod.host_veth), (pod.netns, "eth0")):
            out = subprocess.run(
                ["ip", "netns", "exec", netns, "ethtool", "-k", ifname],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            assert "tx-checksumming: off" in out, f"{ifname} in {netns}"


def test_interface_rows_carry_kube_ovns_external_ids(lab: LabState) -> None:
    """Pod Interface rows hold exactly kube-ovn-cni's external_ids; Port rows hold none."""
    for pod in lab.pods:
        assert re.fullmatch(r"[0-9a-f]{12}_h", pod.host_veth)
        assert vsctl_map(lab, "Interface", pod.host_veth, "external_ids") == {
            "iface-id": f"{pod.name}.{pod.namespace}",
            "vendor": "kube-ovn",
            "pod_name": pod.name,
            "pod_namespace": pod.namespace,
            "pod_netns": f"/var/run/netns/{pod.netns}",
            "ip": f"{pod.ipv4},{pod.ipv6}",
            "ovn-installed": "true",
        }
        assert vsctl_map(lab, "Port", pod.host_veth, "external_ids") == {}
    assert len({p.namespace for p in lab.pods}) >= 2


def test_node_port_and_bridge_are_laid_out_as_kube_ovn_does(lab: LabState) -> None:
    """br-int uses the netdev datapath; ovn0 is internal, iface-id node-<name>, with its join IP."""
    assert vsctl(lab, "get", "Bridge", "br-int", "datapath_type") == "netdev"
    assert vsctl(lab, "get", "Interface", "ovn0", "type") == "internal"
    assert vsctl_map(lab, "Interface", "ovn0", "external_ids") == {
        "iface-id": f"node-{lab.node_port.node_name}",
        "ip": "100.64.0.1",
    }
    addrs = node_exec(lab, ["ip", "-o", "addr", "show", "ovn0"], capture_output=True, text=True)
    assert "inet 100.64.0.1/16" in addrs.stdout


def test_bridge_taps_and_host_veths_live_only_in_the_node_netns(lab: LabState) -> None:
    """br-int, ovn0 and the _h veths exist in the lab's node netns and not in the root netns."""
    node_links = node_exec(
        lab, ["ip", "-o", "link"], capture_output=True, text=True, check=False
    ).stdout
    root_links = subprocess.run(
        ["ip", "-o", "link"], capture_output=True, text=True, check=False
    ).stdout
    for ifname in ("br-int", "ovn0", *(p.host_veth for p in lab.pods)):
        assert f" {ifname}:" in node_links or f" {ifname}@" in node_links
        assert f" {ifname}@" not in root_links
    for pod in lab.pods:
        assert f" {pod.host_veth}@" not in root_links


def test_kube_ovn_global_mirror_matches_kube_ovn_cni_and_carries_traffic(
    lab_factory: LabFactory,
) -> None:
    """--kube-ovn-mirror global writes mirror0 and an m0 without external_ids that copies pods."""
    state = lab_factory(pods=3, kube_ovn_mirror="global")
    assert vsctl(state, "get", "Interface", "mirror0", "type") == "internal"
    assert vsctl(state, "get", "Mirror", "m0", "select_all") == "true"
    assert vsctl_map(state, "Mirror", "m0", "external_ids") == {}
    assert vsctl(state, "get", "Mirror", "m0", "output_port") == vsctl(
        state, "get", "Port", "mirror0", "_uuid"
    )
    assert vsctl(state, "get", "Bridge", "br-int", "mirrors").strip("[]") == vsctl(
        state, "get", "Mirror", "m0", "_uuid"
    )

    def mirror0_rx() -> int:
        out = node_exec(
            state, ["ip", "-j", "-s", "link", "show", "mirror0"], capture_output=True, text=True
        )
        return int(json.loads(out.stdout)[0]["stats64"]["rx"]["packets"])

    before = mirror0_rx()
    for _ in range(3):
        assert ping(state.pods[1], state.pods[2].ipv4).returncode == 0
    assert mirror0_rx() - before >= 6, "3 echo requests and 3 replies are copied to mirror0"


def test_kube_ovn_pods_mode_writes_m0_without_selection(lab_factory: LabFactory) -> None:
    """--kube-ovn-mirror pods writes m0 into mirror0 with nothing selected, as with global off."""
    state = lab_factory(pods=2, kube_ovn_mirror="pods")
    assert vsctl(state, "get", "Mirror", "m0", "select_all") == "false"
    assert vsctl(state, "get", "Mirror", "m0", "select_dst_port") == "[]"
    assert vsctl(state, "get", "Mirror", "m0", "select_src_port") == "[]"


@pytest.fixture
def own_lab(tmp_path: Path) -> Iterator[Lab]:
    """A lab only this test touches, brought down even if the test fails."""
    lab = Lab(unique_lab_name("d"), tmp_path / "run", pods=3)
    try:
        yield lab
    finally:
        lab.down()


def assert_nothing_left(lab: Lab, state: LabState) -> None:
    assert not our_processes(state.run_dir)
    listed = netns_list()
    for netns in (state.node_netns, *(p.netns for p in state.pods)):
        assert netns not in listed
    root_links = subprocess.run(
        ["ip", "-o", "link"], capture_output=True, text=True, check=False
    ).stdout
    for pod in state.pods:
        assert pod.host_veth.removesuffix("_h") not in root_links
    assert not state.run_dir.exists(), "no pidfile, socket or log is left behind"
    assert lab.state() is None


def test_up_twice_is_harmless_and_down_leaves_nothing_behind(own_lab: Lab) -> None:
    """A second up returns the same state and keeps the same daemons; down removes everything."""
    first = own_lab.up()
    status = own_lab.status()
    assert status is not None
    pids = {c.name: c.detail for c in status.checks if c.kind == "daemon"}
    second = own_lab.up()
    assert second == first
    again = own_lab.status()
    assert again is not None
    assert again.healthy
    assert {c.name: c.detail for c in again.checks if c.kind == "daemon"} == pids
    assert ping(first.pods[0], first.pods[1].ipv6).returncode == 0

    own_lab.down()
    assert_nothing_left(own_lab, first)
    own_lab.down()  # down on a lab that is down is harmless too


def test_up_repairs_a_half_broken_lab_and_down_clears_it(own_lab: Lab) -> None:
    """After a pod netns and a daemon vanish, status says so, up restores them, down clears all."""
    state = own_lab.up()
    victim = state.pods[-1]
    subprocess.run(["ip", "netns", "del", victim.netns], check=True)
    dns = state.service(ServiceKind.DNS)
    pid = int((state.run_dir / "dnsmasq.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while is_live(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    broken = own_lab.status()
    assert broken is not None
    missing = {(c.kind, c.name) for c in broken.checks if not c.ok}
    assert ("netns", victim.netns) in missing
    assert ("daemon", "dnsmasq") in missing

    assert own_lab.up() == state
    repaired = own_lab.status()
    assert repaired is not None
    assert repaired.healthy, [c for c in repaired.checks if not c.ok]
    assert ping(state.pods[0], victim.ipv4).returncode == 0
    answer = dig(state.pods[0], dns.pod.ipv4, dns_name(victim.namespace, victim.name), "A")
    assert victim.ipv4 in answer

    own_lab.down()
    assert_nothing_left(own_lab, state)


def mirrorctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mirrorctl.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_cli_lab_up_status_down(tmp_path: Path) -> None:
    """The CLI prints pods and the env to export, status --json is healthy, down clears the lab."""
    name = unique_lab_name("c")
    where = ["--name", name, "--run-dir", str(tmp_path / "run")]
    try:
        up = mirrorctl("lab", "up", *where, "--pods", "3")
        assert up.returncode == 0, up.stderr
        assert f"export MIRRORSCOPE_OVSDB=unix:{tmp_path}/run/db.sock" in up.stdout
        assert f"export MIRRORSCOPE_NETNS=ms-{name}-node" in up.stdout
        assert re.search(
            r"^shop\s+frontend-\S+\s+10\.16\.0\.10\s+fd00:10:16::a\s+[0-9a-f]{12}_h",
            up.stdout,
            re.M,
        )

        status = mirrorctl("lab", "status", *where, "--json")
        assert status.returncode == 0, status.stderr
        doc = json.loads(status.stdout)
        assert doc["healthy"] is True
        assert {c["kind"] for c in doc["checks"]} == {"netns", "daemon", "port", "link"}
    finally:
        down = mirrorctl("lab", "down", *where)
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip() == f"lab {name} is down"
    after = mirrorctl("lab", "status", *where)
    assert after.returncode == 1
    assert "is down" in after.stdout


def test_cli_user_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    """A bad --pods or lab name gives one 'mirrorctl: error:' line and a non-zero exit."""
    for args in (["--pods", "0"], ["--name", "Bad_Name"]):
        result = mirrorctl("lab", "up", "--run-dir", str(tmp_path / "run"), *args)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert result.stderr.strip().count("\n") == 0
        assert result.stderr.startswith("mirrorctl: error:")
    assert not (tmp_path / "run").exists(), "a rejected up creates nothing"


def test_a_second_lab_with_the_same_name_elsewhere_is_refused(
    lab: LabState, tmp_path: Path
) -> None:
    """up with a taken name but another run dir fails clearly instead of sharing the node netns."""
    other = Lab(lab.name, tmp_path / "other", pods=2)
    with pytest.raises(LabError, match="already runs"):
        other.up()
    assert not (tmp_path / "other").exists()
    status = Lab.of(lab).status()
    assert status is not None
    assert status.healthy, "the first lab is untouched"


def test_a_run_dir_holding_other_files_is_refused(tmp_path: Path) -> None:
    """up never writes into, so down never deletes from, a directory that is not a lab's."""
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "keep.txt").write_text("someone's file")
    with pytest.raises(LabError, match="holds no lab"):
        Lab(unique_lab_name("r"), tmp_path, pods=2).up()
    assert (tmp_path / "www" / "keep.txt").read_text() == "someone's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["www"]
