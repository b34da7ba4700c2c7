"""What `mirrorctl lab up` and `lab status` print, from a planned state (no root needed)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from mirrorctl.cli import main
from mirrorctl.cli._lab import format_status, format_up
from mirrorctl.lab._plan import plan_lab
from mirrorctl.lab._state import KubeOvnMirror, LabState
from mirrorctl.lab._status import LabCheck, LabStatus


def planned(mirror: KubeOvnMirror = KubeOvnMirror.NONE) -> LabState:
    return plan_lab(
        "demo", Path("/run/mirrorscope/lab-demo"), 4, mirror, random.Random(5), created_run_dir=True
    )


def test_up_output_lists_every_pod_and_ends_with_the_env_to_export() -> None:
    """One row per pod with namespace, name, IPs and host veth; then the two export lines."""
    state = planned()
    lines = format_up(state).splitlines()
    for pod in state.pods:
        row = next(line for line in lines if pod.name in line)
        assert row.split()[:5] == [pod.namespace, pod.name, pod.ipv4, pod.ipv6, pod.host_veth]
    assert lines[-2:] == [
        "export MIRRORSCOPE_OVSDB=unix:/run/mirrorscope/lab-demo/db.sock",
        "export MIRRORSCOPE_NETNS=ms-demo-node",
    ]


def test_up_output_names_the_service_each_pod_runs_and_the_kube_ovn_mirror() -> None:
    """The SERVICES column says kind:port; the mirror line names m0 and mirror0 when present."""
    text = format_up(planned(KubeOvnMirror.GLOBAL))
    assert "http:80" in text
    assert "dns:53" in text
    assert "iperf3:5201" in text
    assert "kube-ovn mirror: global (Mirror m0 -> mirror0)" in text
    assert "node port ovn0: 100.64.0.1/16 (iface-id node-demo)" in text


def test_status_output_marks_missing_pieces() -> None:
    """A missing piece is shown as MISSING and the verdict says how to repair."""
    status = LabStatus(
        planned(),
        (
            LabCheck("netns", "ms-demo-node", True),
            LabCheck("daemon", "nginx", False, "not running"),
        ),
    )
    text = format_status(status)
    assert "DEGRADED" in text
    assert any(line.startswith("MISSING") and "nginx" in line for line in text.splitlines())


def test_status_of_a_lab_that_is_not_up_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """lab status on a run dir without state says the lab is down and exits 1."""
    assert main(["lab", "status", "--name", "nolab", "--run-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().out.strip() == f"lab nolab is down (no state in {tmp_path})"
