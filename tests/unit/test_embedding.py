"""The embedding API: a pcap's records from Python, a pipeline that cannot lose active flows."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet
from scapy.utils import wrpcap

import mirrorctl
from analyzers import FlowRecord, IdentityMap
from capture import open_capture_file
from mirrorctl import Pipeline, analyse_pcap

T0 = 1_700_000_000.0
CLIENT, SERVER = "10.0.0.1", "10.0.0.2"


def exchange(sport: int, t: float) -> list[Packet]:
    """A 10-byte request from CLIENT:sport to SERVER:7000 and a 30-byte reply, at time t."""
    q = Ether() / IP(src=CLIENT, dst=SERVER) / UDP(sport=sport, dport=7000) / (b"q" * 10)
    r = Ether() / IP(src=SERVER, dst=CLIENT) / UDP(sport=7000, dport=sport) / (b"r" * 30)
    q.time, r.time = t, t + 0.001
    return [q, r]


@pytest.fixture
def three_flows(tmp_path: Path) -> Path:
    """Three UDP exchanges one second apart, all still active at the end of the file."""
    path = tmp_path / "three_flows.pcap"
    wrpcap(str(path), [p for i in range(3) for p in exchange(40000 + i, T0 + i)])
    return path


def test_analyse_pcap_yields_every_flow_with_identity_and_the_flushed_ones(
    three_flows: Path,
) -> None:
    """Each flow comes back once, counted both ways, named by the mapping, flushed at EOF."""
    records = list(
        analyse_pcap(three_flows, identity={CLIENT: "shop/cart-1", SERVER: "node/worker-2"})
    )
    assert sorted(r.orig_p for r in records) == [40000, 40001, 40002]
    assert {(r.orig_pkts, r.resp_pkts, r.orig_ip_bytes, r.resp_ip_bytes) for r in records} == {
        (1, 1, 20 + 8 + 10, 20 + 8 + 30)
    }
    assert {(r.orig_namespace, r.orig_pod) for r in records} == {("shop", "cart-1")}
    assert {(r.resp_kind, r.resp_node) for r in records} == {("node", "worker-2")}
    assert {r.end_reason for r in records} == {"flush"}


def test_analyse_pcap_takes_an_identity_map_and_a_filter(three_flows: Path) -> None:
    """An ``IdentityMap`` works as is; a tcpdump filter keeps only the frames it matches."""
    identity = IdentityMap()
    records = list(analyse_pcap(three_flows, identity=identity, filter="udp port 40001"))
    assert [(r.orig_p, r.orig_kind) for r in records] == [(40001, "external")]


def test_analyse_pcap_yields_ended_flows_before_the_end_and_may_be_left_early(
    tmp_path: Path,
) -> None:
    """A flow idle past its timeout comes before EOF; stopping there raises nothing."""
    path = tmp_path / "idle_then_more.pcap"
    wrpcap(str(path), exchange(40000, T0) + exchange(40001, T0 + 300))
    records = analyse_pcap(path)
    first = next(records)
    assert (first.orig_p, first.end_reason) == (40000, "idle")
    records.close()  # what `break` does: the file is closed, the active flow dropped quietly


def read_then_fail(path: Path, got: list[FlowRecord], seen: list[Pipeline]) -> None:
    """Read ``path`` into a Pipeline, then fail inside its block as a caller's bug would."""
    with Pipeline(on_flows=got.extend) as pipeline:
        seen.append(pipeline)
        with open_capture_file(path) as source:
            pipeline.read(source)
        if not got:  # nothing ended yet: all three flows are active
            raise RuntimeError("caller failed")


def test_pipeline_flushes_active_flows_when_its_block_raises(three_flows: Path) -> None:
    """Leaving a ``Pipeline`` by an exception still hands every active flow to ``on_flows``."""
    got: list[FlowRecord] = []
    seen: list[Pipeline] = []
    with pytest.raises(RuntimeError, match="caller failed"):
        read_then_fail(three_flows, got, seen)
    assert sorted(r.orig_p for r in got) == [40000, 40001, 40002]
    assert {r.end_reason for r in got} == {"flush"}
    assert seen[0].counters().flows_ended == 3


def test_pipeline_writes_records_files_and_closes_once(three_flows: Path, tmp_path: Path) -> None:
    """With ``records``, leaving the block leaves complete JSON-lines files; a second close is a
    no-op."""
    out = tmp_path / "records"
    with Pipeline(records=out, node="n1") as p, open_capture_file(three_flows) as source:
        for batch in source.batches():
            p.feed(batch)
    p.close()
    files = sorted(out.glob("flows-n1-*.jsonl"))
    assert len(files) == 1
    assert len(files[0].read_text(encoding="utf-8").splitlines()) == 3


def test_the_embedding_api_is_importable_from_mirrorctl() -> None:
    """The names a user looks for are at the top of the package."""
    assert {"analyse_pcap", "live_capture", "Pipeline", "MirrorscopeError"} <= set(
        mirrorctl.__all__
    )
