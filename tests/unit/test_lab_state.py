"""The lab state file: round trip, lookups, and refusal of files it cannot trust."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from mirrorctl.lab import LabError
from mirrorctl.lab._plan import plan_lab
from mirrorctl.lab._state import KubeOvnMirror, LabState, ServiceKind, read_state, write_state
from mirrorctl.ovs import NotFoundError


def planned(run_dir: Path) -> LabState:
    return plan_lab("st", run_dir, 4, KubeOvnMirror.GLOBAL, random.Random(3), created_run_dir=False)


def test_state_survives_a_write_read_round_trip(tmp_path: Path) -> None:
    """What up writes is exactly what state() reads back, services pointing at the same pods."""
    state = planned(tmp_path)
    write_state(state)
    back = read_state(tmp_path)
    assert back == state
    assert back is not None
    assert back.service(ServiceKind.HTTP).pod is back.pods[0]


def test_missing_state_file_means_the_lab_is_down(tmp_path: Path) -> None:
    """No state file reads as None, not as an error."""
    assert read_state(tmp_path) is None


@pytest.mark.parametrize(
    "content",
    ["{not json", "[]", json.dumps({"version": 99}), json.dumps({"version": 1, "name": "x"})],
)
def test_untrusted_state_files_raise_lab_error(tmp_path: Path, content: str) -> None:
    """A corrupt, foreign or future state file gives a LabError that says what to do."""
    (tmp_path / "lab.json").write_text(content)
    with pytest.raises(LabError, match=r"remove|lab down"):
        read_state(tmp_path)


def test_pod_lookup_names_the_pods_that_exist(tmp_path: Path) -> None:
    """Looking up an unknown pod raises NotFoundError listing the lab's pods."""
    state = planned(tmp_path)
    pod = state.pods[1]
    assert state.pod(pod.namespace, pod.name) is pod
    with pytest.raises(NotFoundError, match=pod.name):
        state.pod("nope", "nope")


def test_iface_id_and_label_follow_kube_ovn_and_kubectl(tmp_path: Path) -> None:
    """iface-id is <pod>.<ns> (Kube-OVN), label is <ns>/<pod> (kubectl)."""
    pod = planned(tmp_path).pods[0]
    assert pod.iface_id == f"{pod.name}.{pod.namespace}"
    assert pod.label == f"{pod.namespace}/{pod.name}"
