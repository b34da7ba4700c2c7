"""The lab's remote-mirror collector as planned: addresses, state file, the tunnel per kind."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from mirrorctl.lab._collector import tunnel_to
from mirrorctl.lab._plan import plan_lab
from mirrorctl.lab._state import KubeOvnMirror, LabState, RemoteMirror
from mirrorctl.ovs import TunnelKind


def _plan(collector: bool) -> LabState:
    return plan_lab(
        "c1",
        Path("/run/x"),
        2,
        KubeOvnMirror.NONE,
        random.Random(1),
        created_run_dir=True,
        collector=collector,
    )


def test_collector_is_planned_clear_of_pod_and_join_subnets() -> None:
    """The collector netns is named after the lab; its underlay is 10.250.0.0/24, jumbo MTU."""
    coll = _plan(True).collector
    assert coll is not None
    assert coll.netns == "ms-c1-collector"
    assert (coll.node_ip, coll.collector_ip, coll.prefixlen) == ("10.250.0.1", "10.250.0.2", 24)
    assert coll.bridge == "br-phy"
    assert coll.mtu > 1500 + 50  # a full-size pod frame plus GRE/ERSPAN headers fits
    assert _plan(False).collector is None


@pytest.mark.parametrize("collector", [True, False])
def test_state_file_round_trips_the_collector(collector: bool) -> None:
    """lab.json keeps the collector (or its absence) so down removes its namespace."""
    state = _plan(collector)
    assert LabState.from_json(state.to_json()) == state


def test_state_without_collector_key_reads_as_no_collector() -> None:
    """A state file written before collectors existed still reads (no collector)."""
    doc = _plan(False).to_json()
    del doc["collector"]
    assert LabState.from_json(doc).collector is None


def test_remote_mirror_kinds_map_to_ovs_tunnels() -> None:
    """gre is a keyed GRE port; erspan1 is ERSPAN type II (index), erspan2 type III (hwid)."""
    coll = _plan(True).collector
    assert coll is not None
    gre = tunnel_to(coll, RemoteMirror.GRE)
    assert (gre.kind, gre.options()) == (
        TunnelKind.GRE,
        {"remote_ip": "10.250.0.2", "key": "100"},
    )
    v1 = tunnel_to(coll, "erspan1").options()
    assert (v1["erspan_ver"], v1["erspan_idx"]) == ("1", "1")
    v2 = tunnel_to(coll, "erspan2").options()
    assert (v2["erspan_ver"], v2["erspan_hwid"], v2["erspan_dir"]) == ("2", "1", "0")
