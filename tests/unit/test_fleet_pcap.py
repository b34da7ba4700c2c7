"""Several agents' pcaps merged into one pcapng: time order, an interface per node, the pods'
comments kept, and an agent that fails (refuses, hangs, stops mid-way) named while the others'
packets still arrive. The agents are real HTTP servers on loopback (tests/unit/_agents.py)."""

from __future__ import annotations

import io
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from capture import CaptureError, PcapngWriter, StreamPacket, read_pcapng_stream
from exporters._pcapngout import pcapng_chunks
from mirrorctl.cli import main
from mirrorctl.fleet import TOKEN_HEADER, targets_from_dns
from tests.unit._agents import PODS, Agent, Behaviour, Silent, closed_port_url, frame

T0 = 1_800_000_000_000_000_000


def packets(path: Path) -> list[StreamPacket]:
    with path.open("rb") as f:
        return list(read_pcapng_stream(f.read))


def blocks(path: Path, btype: int) -> list[bytes]:
    """Bodies of the blocks of one type (the file is little-endian, as mirrorscope writes it)."""
    raw, pos, out = path.read_bytes(), 0, []
    while pos < len(raw):
        t, n = struct.unpack_from("<II", raw, pos)
        if t == btype:
            out.append(raw[pos + 8 : pos + n - 4])
        pos += n
    return out


@pytest.fixture
def agents() -> Iterator[list[Agent]]:
    started: list[Agent] = []
    yield started
    for a in started:
        a.stop()


def serve(agents: list[Agent], behaviour: Behaviour) -> Agent:
    agent = Agent(behaviour)
    agents.append(agent)
    return agent


def test_the_stream_reader_gives_each_packet_with_node_and_comment_however_it_trickles() -> None:
    """A download's pcapng read one byte per read(): every packet, its time, length, node
    (interface name) and pods' comment as written."""
    frames = [frame("node-a", T0 + i * 1000, 60 + i) for i in range(5)]
    raw = b"".join(pcapng_chunks(frames, pod_of=PODS.get))
    src = io.BytesIO(raw)
    got = list(read_pcapng_stream(lambda n: src.read(1)))
    assert [(p.ts_ns, p.data, p.wirelen) for p in got] == [
        (f.ts_ns, f.data, f.wirelen) for f in frames
    ]
    assert {p.interface.name for p in got} == {"node-a"}
    assert got[0].comment == "src default/web-0 dst default/db-0"


def test_a_stream_cut_inside_a_block_is_an_error_naming_the_source() -> None:
    """Bytes ending mid-block (an agent killed mid-way) raise CaptureError with the source."""
    raw = b"".join(pcapng_chunks([frame("n", T0)], pod_of=PODS.get))
    src = io.BytesIO(raw[:-10])
    with pytest.raises(CaptureError, match="agent-x: the stream ended inside"):
        list(read_pcapng_stream(src.read, source="agent-x"))


def test_microsecond_and_offset_timestamps_of_other_writers_convert_to_ns() -> None:
    """An interface without if_tsresol counts microseconds (pcapng's default): 1 tick = 1000 ns."""
    buf = io.BytesIO()
    w = PcapngWriter(buf)
    w.add_interface("eth0")
    w.write_packet(0, 5, b"x" * 20)
    raw = bytearray(buf.getvalue())
    at = raw.index(bytes([9, 0, 1, 0, 9]))  # if_tsresol option: code 9, length 1, value 9
    raw[at : at + 8] = bytes(8)  # replace it by end-of-options padding: microseconds
    src = io.BytesIO(bytes(raw))
    (pkt,) = read_pcapng_stream(src.read)
    assert pkt.ts_ns == 5000


def test_get_from_two_agents_merges_both_in_time_order_with_the_node_per_packet(
    agents: list[Agent], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pcap get --server A --server B`: the union of both downloads, in time order, each packet
    on an interface named after its node, its pods' comment kept; exit 0; the token reaches
    each agent in Authorization and in X-Mirrorscope-Token."""
    a_frames = [frame("node-a", T0 + i * 10) for i in range(0, 50, 2)]
    b_frames = [frame("node-b", T0 + i * 10 + 5) for i in range(0, 50, 3)]
    a = serve(agents, Behaviour(a_frames))
    b = serve(agents, Behaviour(b_frames))
    monkeypatch.setenv("MIRRORSCOPE_TOKEN", "tok")
    out = tmp_path / "both.pcapng"
    rc = main(["pcap", "get", "--pod", "default/web-0", "--server", a.url, "--server", b.url,
               "--since", "1h", "-o", str(out)])  # fmt: skip
    assert rc == 0
    got = packets(out)
    assert len(got) == len(a_frames) + len(b_frames)
    assert [p.ts_ns for p in got] == sorted(f.ts_ns for f in a_frames + b_frames)
    for p in got:
        assert p.data.startswith(f"{p.interface.name}@{p.ts_ns}".encode())
        assert p.comment == "src default/web-0 dst default/db-0"
    assert {p.interface.name for p in got} == {"node-a", "node-b"}
    for agent in (a, b):
        (path,) = agent.behaviour.requests
        assert "pod=default%2Fweb-0" in path
        assert "start=" in path  # one absolute window for all nodes
        assert "since" not in path
        assert agent.behaviour.headers[0]["Authorization"] == "Bearer tok"
        assert agent.behaviour.headers[0][TOKEN_HEADER] == "tok"


def test_an_agent_cut_mid_way_is_named_and_the_others_packets_all_arrive(
    agents: list[Agent], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """B's connection closes after 3 of its packets: stderr names B, the file's Interface
    Statistics Block says why, A's packets are all there with B's first 3, exit 3 (partial)."""
    a_frames = [frame("node-a", T0 + i * 10) for i in range(20)]
    b_frames = [frame("node-b", T0 + i * 10 + 5) for i in range(20)]
    a = serve(agents, Behaviour(a_frames))
    b = serve(agents, Behaviour(b_frames, cut_after=3))
    out = tmp_path / "partial.pcapng"
    rc = main(["pcap", "get", "--ip", "10.16.0.10", "--server", a.url, "--server", b.url,
               "-o", str(out)])  # fmt: skip
    assert rc == 3
    err = capsys.readouterr().err
    b_name = b.url.removeprefix("http://")
    assert f"{b_name}: the connection closed mid-way" in err
    got = packets(out)
    assert [p.ts_ns for p in got if p.interface.name == "node-a"] == [f.ts_ns for f in a_frames]
    assert [p.ts_ns for p in got if p.interface.name == "node-b"] == [f.ts_ns for f in b_frames[:3]]
    (isb,) = blocks(out, 5)
    assert f"{b_name} failed: the connection closed mid-way".encode() in isb


def test_agents_that_refuse_hang_or_lack_the_pod_do_not_stop_the_merge(
    agents: list[Agent], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Of four agents one answers, one refuses the connection, one never answers (cut after
    --server-timeout), one has no such pod (404): the file holds the first's packets, the
    section comment names each agent and what it said, stderr the two failures; exit 3."""
    ok = serve(agents, Behaviour([frame("node-a", T0 + i) for i in range(4)]))
    elsewhere = serve(agents, Behaviour(status=404))
    silent = Silent()
    refused = closed_port_url()
    out = tmp_path / "some.pcapng"
    started = time.monotonic()
    try:
        rc = main(["pcap", "get", "--pod", "default/web-0", "--server", ok.url,
                   "--server", refused, "--server", silent.url, "--server", elsewhere.url,
                   "--server-timeout", "1", "-o", str(out)])  # fmt: skip
    finally:
        silent.stop()
    assert time.monotonic() - started < 5  # asked in parallel, each bounded by the timeout
    assert rc == 3
    assert len(packets(out)) == 4
    (shb,) = blocks(out, 0x0A0D0D0A)
    comment = shb.decode(errors="replace")
    assert "from 4 agents" in comment
    assert f"{refused.removeprefix('http://')}: FAILED: no answer" in comment
    assert f"{silent.url.removeprefix('http://')}: FAILED: no answer: timed out" in comment
    assert f"{elsewhere.url.removeprefix('http://')}: nothing: 404 not here" in comment
    err = capsys.readouterr().err
    assert refused.removeprefix("http://") in err
    assert "timed out" in err
    assert "404" not in err  # a node without the pod is normal, not a failure


def test_no_agent_with_packets_writes_nothing_and_says_so(
    agents: list[Agent], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every agent answers 204 or 404: no file, exit 1, one line saying so."""
    a = serve(agents, Behaviour(status=204))
    b = serve(agents, Behaviour(status=404))
    out = tmp_path / "none.pcapng"
    rc = main(["pcap", "get", "--pod", "x/y", "--server", a.url, "--server", b.url,
               "-o", str(out)])  # fmt: skip
    assert rc == 1
    assert not out.exists()
    assert "no packets in that window on any of the 2 agents" in capsys.readouterr().err


def test_classic_pcap_cannot_merge_nodes() -> None:
    """--format pcap with several agents is refused (a classic pcap has no interface names)."""
    rc = main(["pcap", "get", "--pod", "x/y", "--server", "http://127.0.0.1:1",
               "--server", "http://127.0.0.1:2", "--format", "pcap", "-o", "-"])  # fmt: skip
    assert rc == 2


def test_a_headless_name_becomes_one_agent_per_address_of_one_family() -> None:
    """localhost resolves to 127.0.0.1 (and ::1): one IPv4 target on --dns-port, since a
    dual-stack headless Service would otherwise list every agent twice."""
    found = targets_from_dns("localhost", 10097, "t")
    assert [t.url for t in found] == ["http://127.0.0.1:10097"]
    with pytest.raises(Exception, match="cannot resolve"):
        targets_from_dns("no-such-name.invalid", 10097, None)


def test_servers_from_dns_merges_what_the_name_resolves_to(
    agents: list[Agent], tmp_path: Path
) -> None:
    """`--servers-from-dns localhost --dns-port P` asks the agent there through the merge."""
    a = serve(agents, Behaviour([frame("node-a", T0 + i) for i in range(3)]))
    port = a.url.rsplit(":", 1)[1]
    out = tmp_path / "dns.pcapng"
    rc = main(["pcap", "get", "--pod", "default/web-0", "--servers-from-dns", "localhost",
               "--dns-port", port, "-o", str(out)])  # fmt: skip
    assert rc == 0
    assert [p.interface.name for p in packets(out)] == ["node-a"] * 3


def test_follow_merges_live_streams_in_time_order_and_outlives_one_that_stops(
    agents: list[Agent], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pcap follow` over two live agents sending a packet each 50 ms, B cut after 4: every
    packet of A and B's 4, in time order, B named as stopped; the follow ends when A's stream
    ends; exit 3."""
    now = time.time_ns()
    a_frames = [frame("node-a", now + i * 50_000_000) for i in range(10)]
    b_frames = [frame("node-b", now + i * 50_000_000 + 25_000_000) for i in range(10)]
    a = serve(agents, Behaviour(a_frames, gap_s=0.05))
    b = serve(agents, Behaviour(b_frames, gap_s=0.05, cut_after=4))
    out = tmp_path / "live.pcapng"
    rc = main(["pcap", "follow", "--pod", "default/web-0", "--server", a.url, "--server", b.url,
               "--hold", "0.3", "-w", str(out)])  # fmt: skip
    assert rc == 3
    got = packets(out)
    assert [p.ts_ns for p in got] == sorted(f.ts_ns for f in a_frames + b_frames[:4])
    assert f"{b.url.removeprefix('http://')}: the connection closed mid-way" in (
        capsys.readouterr().err
    )


def test_the_fan_out_does_not_need_a_socket_module_double() -> None:
    """(guard) these tests talk to real sockets: loopback resolves."""
    assert socket.gethostbyname("localhost") == "127.0.0.1"
