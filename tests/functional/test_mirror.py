"""mirrorctl enable/disable/status on the shared lab (real userspace OVS): frames reach mirror0.

Every test removes all mirrors and the mirror0 port afterwards, leaving the shared lab as it was.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from mirrorctl import KubeOvnMirror, LabPod, LabState
from mirrorctl.cli import main
from tests.functional._ovs import remove_mirrors_and_mirror0, vsctl

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
PROBE_PORT = 9  # discard: nobody listens, the probe only has to cross br-int


def in_netns(netns: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a thread that joined ``netns``; sockets it opens stay in that netns."""
    out: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/var/run/netns/{netns}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {netns}")
            finally:
                os.close(fd)
            out.append(fn())
        except BaseException as exc:  # re-raised in the caller's thread below
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return out[0]


def packet_socket(netns: str, ifname: str) -> socket.socket:
    def open_() -> socket.socket:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sock.bind((ifname, 0))
        sock.settimeout(0.05)
        return sock

    return in_netns(netns, open_)


def send_probe(src: LabPod, dst: LabPod, marker: bytes) -> None:
    """One UDP datagram from ``src`` to ``dst`` carrying ``marker``."""

    def send() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(marker, (dst.ipv4, PROBE_PORT))

    in_netns(src.netns, send)


def drain(sock: socket.socket, seconds: float) -> list[bytes]:
    frames, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            frames.append(sock.recv(65535))
        except TimeoutError:
            continue
    return frames


def capture_probes(
    sock: socket.socket,
    wanted: dict[bytes, tuple[LabPod, LabPod]],
    unwanted: dict[bytes, tuple[LabPod, LabPod]],
) -> list[bytes]:
    """Send every probe until each wanted marker was read on mirror0; return all frames read.

    Unwanted probes go first in each round: OVS keeps order on one port, so once the wanted ones
    of a round arrived, a mirrored unwanted one would have arrived too.
    """
    frames: list[bytes] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for marker, (src, dst) in [*unwanted.items(), *wanted.items()]:
            send_probe(src, dst, marker)
        frames += drain(sock, 0.2)
        if all(any(m in f for f in frames) for m in wanted):
            frames += drain(sock, 0.2)
            return frames
    missing = [m for m in wanted if not any(m in f for f in frames)]
    pytest.fail(f"probes never reached mirror0: {missing}")


def mirrorctl(
    state: LabState, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    rc = main([*args, "--ovsdb", state.ovsdb, "--netns", state.node_netns])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def mirror_rows(state: LabState) -> dict[str, dict[str, str]]:
    """Every Mirror row as ovs-vsctl prints it, by name (statistics left out: they move)."""
    doc = json.loads(vsctl(state, "--format=json", "list", "Mirror"))
    heads = doc["headings"]
    rows = {}
    for data in doc["data"]:
        row = {h: json.dumps(v) for h, v in zip(heads, data, strict=True) if h != "statistics"}
        rows[json.loads(row["name"])] = row
    return rows


@pytest.fixture
def clean(lab: LabState) -> Iterator[LabState]:
    """The lab with no mirror and no mirror0 port after each test, whatever it did."""
    yield lab
    remove_mirrors_and_mirror0(lab)


@pytest.fixture
def mirror0(clean: LabState) -> Callable[[], socket.socket]:
    """Opens a raw socket on mirror0 in the node netns (call it after mirror0 exists)."""
    opened: list[socket.socket] = []

    def open_() -> socket.socket:
        opened.append(packet_socket(clean.node_netns, "mirror0"))
        return opened[-1]

    yield open_  # type: ignore[misc]
    for sock in opened:
        sock.close()


def marker(tag: str) -> bytes:
    return f"mirrorscope-{tag}-{secrets.token_hex(6)}".encode()


def test_global_mirror_copies_pod_to_pod_frames_to_mirror0(
    clean: LabState, mirror0: Callable[[], socket.socket], capsys: pytest.CaptureFixture[str]
) -> None:
    """enable --global makes mirror0 an internal port; a pod-to-pod frame is read on it."""
    rc, out, _ = mirrorctl(clean, capsys, "enable", "--global")
    assert rc == 0
    assert "all traffic on br-int -> mirror0" in out
    assert vsctl(clean, "get", "Interface", "mirror0", "type") == "internal"
    a, b = clean.pods[0], clean.pods[1]
    probe = marker("global")
    frames = capture_probes(mirror0(), {probe: (a, b)}, {})
    assert any(probe in f for f in frames)


def test_pod_mirror_sees_both_directions_of_that_pod_only(
    clean: LabState, mirror0: Callable[[], socket.socket], capsys: pytest.CaptureFixture[str]
) -> None:
    """enable --pod A: A→B and B→A reach mirror0, C→D does not (Kube-OVN only mirrors to-pod)."""
    a, b, c, d = clean.pods[:4]
    rc, out, _ = mirrorctl(clean, capsys, "enable", "--pod", a.label)
    assert rc == 0
    assert f"both directions of {a.label}" in out
    from_a, to_a, others = marker("from-a"), marker("to-a"), marker("c-to-d")
    frames = capture_probes(mirror0(), {from_a: (a, b), to_a: (b, a)}, {others: (c, d)})
    assert any(from_a in f for f in frames)
    assert any(to_a in f for f in frames)
    assert not any(others in f for f in frames)


def test_disable_pod_undoes_only_that_pod(
    clean: LabState, capsys: pytest.CaptureFixture[str]
) -> None:
    """disable --pod removes one pod from both selections and keeps the other pod and the row."""
    a, b = clean.pods[0], clean.pods[1]
    assert mirrorctl(clean, capsys, "enable", "--pod", a.label, "--pod", b.label)[0] == 0
    assert mirrorctl(clean, capsys, "disable", "--pod", a.label)[0] == 0
    rows = mirror_rows(clean)
    assert list(rows) == ["mirrorscope-mirror0"]
    src = vsctl(clean, "get", "Mirror", "mirrorscope-mirror0", "select_src_port")
    dst = vsctl(clean, "get", "Mirror", "mirrorscope-mirror0", "select_dst_port")
    b_port = vsctl(clean, "get", "Port", b.host_veth, "_uuid")
    assert src == dst == f"[{b_port}]"
    assert mirrorctl(clean, capsys, "disable", "--pod", b.label)[0] == 0
    assert mirror_rows(clean) == {}


def _foreign_mirrors(state: LabState) -> None:
    """Kube-OVN's m0 (pod-level mode: no selection) and an OVN-owned mirror on a pod port."""
    vsctl(
        state,
        "--may-exist", "add-port", state.bridge, "mirror0",
        "--", "set", "Interface", "mirror0", "type=internal",
        "--", "--id=@p", "get", "Port", "mirror0",
        "--", "--id=@m", "create", "Mirror", "name=m0", "output_port=@p",
        "--", "add", "Bridge", state.bridge, "mirrors", "@m",
        "--", "--id=@src", "get", "Port", state.pods[2].host_veth,
        "--", "--id=@o", "create", "Mirror", "name=ovn-span", "select_src_port=@src",
        "output_port=@p", "external_ids:ovn-owned=true",
        "--", "add", "Bridge", state.bridge, "mirrors", "@o",
    )  # fmt: skip


def test_foreign_mirrors_survive_enable_and_disable_untouched(
    clean: LabState, capsys: pytest.CaptureFixture[str]
) -> None:
    """m0 and an ovn-owned mirror are byte-for-byte the same after every enable/disable."""
    _foreign_mirrors(clean)
    before = mirror_rows(clean)
    a = clean.pods[0]
    for args in (
        ["enable", "--global"],
        ["enable", "--pod", a.label],
        ["enable", "--namespace", a.namespace],
        ["disable", "--namespace", a.namespace],
        ["disable", "--pod", a.label],
        ["disable", "--global"],
    ):
        assert mirrorctl(clean, capsys, *args)[0] == 0, args
        after = mirror_rows(clean)
        assert {k: after[k] for k in ("m0", "ovn-span")} == {
            k: before[k] for k in ("m0", "ovn-span")
        }
    assert set(mirror_rows(clean)) == {"m0", "ovn-span"}


def test_enable_global_with_foreign_select_all_adds_nothing(
    clean: LabState, capsys: pytest.CaptureFixture[str]
) -> None:
    """A foreign select_all mirror into mirror0 does the job: say so, exit 0, add nothing."""
    _foreign_mirrors(clean)
    vsctl(clean, "set", "Mirror", "m0", "select_all=true")
    rc, out, _ = mirrorctl(clean, capsys, "enable", "--global")
    assert rc == 0
    assert "mirror 'm0' (not ours) already sends all traffic on br-int to mirror0" in out
    assert set(mirror_rows(clean)) == {"m0", "ovn-span"}


def test_unknown_pod_namespace_and_bridge_are_clear_errors(
    clean: LabState, capsys: pytest.CaptureFixture[str]
) -> None:
    """Typos exit 2 with one line naming what exists, and change nothing."""
    rc, _, err = mirrorctl(clean, capsys, "enable", "--pod", "shop/no-such-pod")
    assert rc == 2
    assert err.startswith("mirrorctl: error: no pod shop/no-such-pod on bridge br-int")
    rc, _, err = mirrorctl(clean, capsys, "enable", "--namespace", "nowhere")
    assert rc == 2
    assert "namespace nowhere" in err
    rc, _, err = mirrorctl(clean, capsys, "status", "--bridge", "br-nope")
    assert rc == 2
    assert "bridge 'br-nope' not found in OVSDB (bridges: br-int)" in err
    assert mirror_rows(clean) == {}


def test_status_json_names_pods_and_counts_mirrored_packets(
    clean: LabState, mirror0: Callable[[], socket.socket], capsys: pytest.CaptureFixture[str]
) -> None:
    """After traffic, status --json names the pod, tx_packets > 0, mirror0 up with rx counters."""
    a, b = clean.pods[0], clean.pods[1]
    assert mirrorctl(clean, capsys, "enable", "--pod", a.label)[0] == 0
    capture_probes(mirror0(), {marker("stats"): (a, b)}, {})
    deadline = time.monotonic() + 8  # ovs-vswitchd writes Mirror statistics every 5 s
    while True:
        rc, out, _ = mirrorctl(clean, capsys, "status", "--json")
        assert rc == 0
        ours = next(m for m in json.loads(out)["mirrors"] if m["owner"] == "mirrorctl")
        if (ours["statistics"]["tx_packets"] or 0) > 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert ours["select_src"] == [{"port": a.host_veth, "pod": a.label}]
    assert ours["select_dst"] == ours["select_src"]
    assert ours["statistics"]["tx_packets"] > 0
    assert ours["statistics"]["tx_bytes"] > 0
    assert ours["output_link"]["up"] is True
    assert ours["output_link"]["rx_packets"] > 0
    rc, out, _ = mirrorctl(clean, capsys, "status")
    assert f"from pods: {a.label}" in out


@pytest.fixture(scope="module")
def kube_ovn_lab(lab_factory: Callable[..., LabState]) -> LabState:
    """A node laid out by Kube-OVN itself (its m0 present, mirroring in pod-level mode)."""
    return lab_factory(kube_ovn_mirror=KubeOvnMirror.PODS)


def test_works_against_an_ovsdb_laid_out_by_kube_ovn(
    kube_ovn_lab: LabState, capsys: pytest.CaptureFixture[str]
) -> None:
    """With Kube-OVN's m0 and mirror0 present, pod mirroring works; m0 is reported, untouched."""
    state = kube_ovn_lab
    before = mirror_rows(state)["m0"]
    a, b = state.pods[0], state.pods[1]
    try:
        assert mirrorctl(state, capsys, "enable", "--pod", a.label)[0] == 0
        sock = packet_socket(state.node_netns, "mirror0")
        try:
            probe = marker("kube-ovn")
            assert any(probe in f for f in capture_probes(sock, {probe: (b, a)}, {}))
        finally:
            sock.close()
        rc, out, _ = mirrorctl(state, capsys, "status", "--json")
        assert rc == 0
        owners = {m["name"]: m["owner"] for m in json.loads(out)["mirrors"]}
        assert owners == {"m0": "kube-ovn", "mirrorscope-mirror0": "mirrorctl"}
        assert mirror_rows(state)["m0"] == before
    finally:
        assert mirrorctl(state, capsys, "disable", "--pod", a.label)[0] == 0
    assert set(mirror_rows(state)) == {"m0"}


def test_existing_nic_is_added_as_plain_port_and_carries_the_copy(
    lab: LabState, capsys: pytest.CaptureFixture[str]
) -> None:
    """--iface naming an existing link adds it as a plain port; the copy leaves through it."""
    nic, peer = f"msnic{secrets.token_hex(2)}", f"mspeer{secrets.token_hex(2)}"
    node = ["ip", "-n", lab.node_netns, "link"]
    subprocess.run([*node, "add", nic, "type", "veth", "peer", "name", peer], check=True)
    try:
        subprocess.run([*node, "set", peer, "up"], check=True)
        rc, out, _ = mirrorctl(lab, capsys, "enable", "--global", "--iface", nic)
        assert rc == 0
        assert f"-> {nic}" in out
        assert vsctl(lab, "get", "Interface", nic, "type") == '""'
        a, b = lab.pods[0], lab.pods[1]
        sock = packet_socket(lab.node_netns, peer)
        try:
            probe = marker("nic")
            assert any(probe in f for f in capture_probes(sock, {probe: (a, b)}, {}))
        finally:
            sock.close()
        assert mirrorctl(lab, capsys, "disable", "--global", "--iface", nic)[0] == 0
        assert mirror_rows(lab) == {}
    finally:
        vsctl(lab, "--no-wait", "clear", "bridge", lab.bridge, "mirrors")
        vsctl(lab, "--no-wait", "--if-exists", "del-port", nic)
        subprocess.run([*node, "del", nic], check=False)
