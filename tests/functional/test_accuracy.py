"""Accuracy on the lab: `capture read` of a tcpdump capture equals tshark's view of the same file.

Real programs generate the traffic (curl with keep-alive over IPv4 and IPv6, dig incl. NXDOMAIN,
ping, ping6, iperf3, a refused connection); a global mirror set up with mirrorctl copies it to
mirror0, where tcpdump writes the pcap both tools read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mirrorctl import LabState
from mirrorctl.cli import main
from tests.functional._flowtruth import (
    CLOSED_PORT,
    OurFlows,
    Tcpdump,
    by_proto,
    our_flows,
    pods_by_ip,
    run_traffic,
    tshark_flows,
)
from tests.functional.conftest import LabFactory


@pytest.fixture(scope="module")
def mirrored_lab(lab_factory: LabFactory) -> Iterator[LabState]:
    """A lab of our own with a global mirror into mirror0, enabled through mirrorctl's CLI."""
    state = lab_factory(pods=4)
    rc = main(["enable", "--global", "--ovsdb", state.ovsdb, "--netns", state.node_netns])
    assert rc == 0
    yield state
    main(["disable", "--global", "--ovsdb", state.ovsdb, "--netns", state.node_netns])


@pytest.fixture(scope="module")
def recorded(
    mirrored_lab: LabState, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, int]]:
    """The pcap of one round of lab traffic, and tshark's count of flows in it."""
    pcap = tmp_path_factory.mktemp("accuracy") / "mirror0.pcap"
    dump = Tcpdump(mirrored_lab.node_netns, pcap)
    try:
        run_traffic(mirrored_lab)
        # the refused connection is the traffic's last exchange: its RST on mirror0 means the
        # rest got there before it (a fixed 0.5 s was too short once on a loaded machine)
        dump.wait_for(f"tcp.srcport == {CLOSED_PORT} and tcp.flags.reset == 1")
    finally:
        stats = dump.stop()
    assert "0 packets dropped by kernel" in stats, stats
    return pcap, by_proto(tshark_flows(pcap))


def read(state: LabState, pcap: Path, capsys: pytest.CaptureFixture[str]) -> OurFlows:
    rc = main(["capture", "read", "--ovsdb", state.ovsdb, str(pcap)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return our_flows(out.splitlines())


def test_flows_match_tshark_exactly(
    mirrored_lab: LabState,
    recorded: tuple[Path, dict[str, int]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Same TCP and UDP flows as tshark, with the same per-direction packets and IP bytes."""
    pcap, tshark_by_proto = recorded
    ours = read(mirrored_lab, pcap, capsys)
    truth = tshark_flows(pcap)
    assert tshark_by_proto["tcp"] >= 5  # keep-alive v4, v6, iperf3 control + data, refused
    assert tshark_by_proto["udp"] >= 3  # three dig queries
    assert by_proto(ours.counts) == tshark_by_proto
    assert ours.counts == truth
    print(f"tshark and capture read agree on {tshark_by_proto} flows")


def test_both_sides_are_named_from_the_labs_ovsdb(
    mirrored_lab: LabState,
    recorded: tuple[Path, dict[str, int]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every TCP/UDP record names the pod (namespace and name) on each side, as OVSDB says."""
    pcap, _ = recorded
    ours = read(mirrored_lab, pcap, capsys)
    expect = pods_by_ip(mirrored_lab)
    checked = 0
    for r in ours.records:
        if r["proto"] not in ("tcp", "udp"):
            continue
        for side, addr in (("orig", r["id.orig_h"]), ("resp", r["id.resp_h"])):
            got = (r[f"{side}_kind"], r[f"{side}_namespace"], r[f"{side}_pod"])
            assert got == expect[str(addr)], r
            checked += 1
    assert checked >= 16


def test_refused_connection_is_rej_and_keepalive_is_one_flow(
    mirrored_lab: LabState,
    recorded: tuple[Path, dict[str, int]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The connection to the closed port is REJ; curl's two fetches are one SF flow with two
    requests' worth of packets; the NXDOMAIN answer is recorded as such."""
    pcap, _ = recorded
    ours = read(mirrored_lab, pcap, capsys)
    refused = [r for r in ours.records if r["proto"] == "tcp" and r["id.resp_p"] == CLOSED_PORT]
    assert [r["conn_state"] for r in refused] == ["REJ"]
    http = mirrored_lab.service("http")
    web = [
        r for r in ours.records
        if r["proto"] == "tcp" and r["id.resp_h"] == http.pod.ipv4 and r["id.resp_p"] == http.port
    ]  # fmt: skip
    assert len(web) == 1
    assert web[0]["conn_state"] == "SF"
    assert web[0]["orig_pkts"] >= 6  # SYN, ACK, 2 requests, FIN, ACKs
    rcodes = {r.get("dns_rcode_name") for r in ours.records if r["id.resp_p"] == 53}
    assert {"NOERROR", "NXDOMAIN"} <= rcodes
