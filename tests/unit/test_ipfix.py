"""IPFIX export over real loopback sockets, decoded by the test's own RFC 7011 decoder."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from analyzers import FlowRecord
from exporters import (
    IpfixExporter,
    IpfixMetricsCollector,
    IpfixOptions,
    IpfixTarget,
    IpfixTargetError,
    SenderCounters,
    merge_counters,
)
from exporters._ipfix_message import Body, tcp_flags
from exporters._ipfix_transport import IpfixSender
from mirrorctl.cli import main
from tests.unit import flowkit
from tests.unit._ipfix_decode import Decoder, receive_all
from tests.unit.test_cli_capture import udp_exchange, write


@pytest.fixture
def collector() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def target(sock: socket.socket, transport: str = "udp") -> IpfixTarget:
    return IpfixTarget(transport, "127.0.0.1", sock.getsockname()[1])


def pod_records() -> list[FlowRecord]:
    """A TCP connection between two pods (one retransmission) and an IPv6 UDP exchange."""
    pkts = flowkit.handshake()
    pkts.insert(4, replace(pkts[3], ts=pkts[3].ts + 0.001))  # the data segment again
    pkts += [
        flowkit.Pkt("fd00::1", "fd00::2", 5000, 53, proto=17, plen=20, ts=1.0),
        flowkit.Pkt("fd00::2", "fd00::1", 53, 5000, proto=17, plen=60, ts=1.01),
    ]
    return flowkit.run(pkts, identity=flowkit.pod_identity())


def export(records: list[FlowRecord], sock: socket.socket, **kw: object) -> list[bytes]:
    exporter = IpfixExporter(IpfixOptions((target(sock),), **kw))  # type: ignore[arg-type]
    exporter.on_flows_ended(records)
    exporter.close()
    return receive_all(sock)


def test_records_round_trip_with_reverse_pod_and_ntop_elements(collector: socket.socket) -> None:
    """Each flow decodes back to its addresses, counts both ways, pods, nodes and TCP health."""
    tcp, udp6 = pod_records()
    decoder = Decoder()
    msgs = [decoder.message(d) for d in export([tcp, udp6], collector)]
    assert msgs[0].set_ids == [2]  # templates first
    assert sorted(tid for _, tid in decoder.templates) == [256, 257]
    recs = [r for m in msgs for r in m.records]
    t, u = sorted(recs, key=lambda r: r["protocolIdentifier"])  # type: ignore[arg-type, return-value]
    assert t == t | {
        "sourceIPv4Address": "10.0.0.1",
        "destinationIPv4Address": "10.0.0.2",
        "sourceTransportPort": 40000,
        "destinationTransportPort": 80,
        "protocolIdentifier": 6,
        "packetDeltaCount": tcp.orig_pkts,
        "octetDeltaCount": tcp.orig_ip_bytes,
        "reversePacketDeltaCount": tcp.resp_pkts,
        "reverseOctetDeltaCount": tcp.resp_ip_bytes,
        "flowStartMilliseconds": round(tcp.ts * 1000),
        "flowEndMilliseconds": round(tcp.ts * 1000) + round(tcp.duration * 1000),
        "flowEndReason": 4,  # flush: forced end
        "sourcePodNamespace": "default",
        "sourcePodName": "client",
        "destinationPodNamespace": "web",
        "destinationPodName": "server",
        "sourceNodeName": "node-a",
        "destinationNodeName": "node-b",
        "flowType": 2,  # inter-node
        "tcpState": "TIME_WAIT",
        "RETRANSMITTED_IN_PKTS": 1,
        "RETRANSMITTED_OUT_PKTS": 0,
        "SERVER_NW_LATENCY_MS": 5,  # SYN -> SYN-ACK 10 ms, halved
        "CLIENT_NW_LATENCY_MS": 1,  # SYN-ACK -> ACK 2 ms, halved
        "tcpControlBits": 0x1B,  # SYN ACK PSH FIN
        "reverseTcpControlBits": 0x1B,
    }
    assert (tcp.tcp_retrans_orig, tcp.orig_pkts) == (1, 7)
    assert u == u | {
        "sourceIPv6Address": "fd00::1",
        "destinationIPv6Address": "fd00::2",
        "destinationTransportPort": 53,
        "packetDeltaCount": 1,
        "reversePacketDeltaCount": 1,
        "octetDeltaCount": 40 + 8 + 20,
        "sourcePodName": "",
        "flowType": 0,
        "tcpState": "",
    }


def test_sequence_numbers_count_data_records_and_messages_fit_the_mtu(
    collector: socket.socket,
) -> None:
    """Every message is at most --ipfix-mtu bytes; each sequence number is the records before it."""
    records = [r for i in range(40) for r in flowkit.run(flowkit.handshake(cp=30000 + i))]
    decoder = Decoder()
    msgs = [decoder.message(d) for d in export(records, collector, mtu=600)]
    data = [m for m in msgs if m.records]
    assert len(data) > 1
    assert max(m.length for m in msgs) <= 600
    before = 0
    for m in msgs:
        assert m.sequence == before
        before += len(m.records)
    assert before == 40


def test_interim_records_of_a_running_flow_sum_to_its_record(collector: socket.socket) -> None:
    """Interim records carry deltas: with the end record they sum to the flow's totals."""
    pkts = flowkit.handshake()
    ft, sink = flowkit.table()
    exporter = IpfixExporter(IpfixOptions((target(collector),)))
    ft.process(*flowkit.batch(pkts[:4]))
    exporter.on_interim(ft.active_records())
    exporter.on_interim(ft.active_records())  # nothing new: no record
    ft.process(*flowkit.batch(pkts[4:7]))
    exporter.on_interim(ft.active_records(since_ns=flowkit.T0 + 25_000_000))
    ft.process(*flowkit.batch(pkts[7:]))
    ft.flush()
    exporter.on_flows_ended(sink.records)
    exporter.close()
    decoder = Decoder()
    recs = [r for d in receive_all(collector) for r in decoder.message(d).records]
    (final,) = sink.records
    assert [r["flowEndReason"] for r in recs] == [2, 2, 4]
    assert [r["packetDeltaCount"] for r in recs] == [3, 1, 2]
    for name, total in (
        ("packetDeltaCount", final.orig_pkts),
        ("reversePacketDeltaCount", final.resp_pkts),
        ("octetDeltaCount", final.orig_ip_bytes),
        ("reverseOctetDeltaCount", final.resp_ip_bytes),
    ):
        assert sum(r[name] for r in recs) == total  # type: ignore[misc]


def test_unreachable_tcp_collector_is_retried_counted_and_never_blocks() -> None:
    """A closed TCP port: errors counted, the full queue drops its oldest, send returns at once."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    sender = IpfixSender(IpfixTarget("tcp", "127.0.0.1", port), b"", queue_max=3)
    started = time.monotonic()
    for _ in range(10):
        sender.send([Body(b"", 5)])
    assert time.monotonic() - started < 0.5
    deadline = time.monotonic() + 5
    while sender.counters().send_errors < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    c = sender.counters()
    assert c.send_errors >= 2  # retried
    assert (c.records, c.queued, c.dropped_records) == (0, 3, 7 * 5)
    sender.close(timeout=0.5)
    assert sender.counters().dropped_records == 10 * 5


def test_tcp_collector_gets_templates_then_records_in_one_stream() -> None:
    """Over TCP the stream holds whole messages: templates first, then the data."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5)
    label = str(target(server, "tcp"))
    exporter = IpfixExporter(IpfixOptions((target(server, "tcp"),)))
    exporter.on_flows_ended(pod_records())
    conn, _ = server.accept()
    exporter.close()
    stream = b""
    conn.settimeout(2)
    while chunk := conn.recv(65535):
        stream += chunk
    conn.close()
    server.close()
    decoder, msgs = Decoder(), []
    while stream:
        length = int.from_bytes(stream[2:4], "big")
        msgs.append(decoder.message(stream[:length]))
        stream = stream[length:]
    assert msgs[0].set_ids == [2]
    assert sum(len(m.records) for m in msgs) == 2
    assert exporter.counters()[label].records == 2


def test_metrics_per_collector(collector: socket.socket) -> None:
    """records, messages, send errors and drops are Prometheus counters labelled by collector."""
    exporter = IpfixExporter(IpfixOptions((target(collector),)))
    exporter.on_flows_ended(pod_records())
    exporter.close()
    registry = CollectorRegistry()
    registry.register(IpfixMetricsCollector(exporter.counters))
    label = {"collector": str(target(collector))}
    assert registry.get_sample_value("mirrorscope_ipfix_records_total", label) == 2
    assert registry.get_sample_value("mirrorscope_ipfix_messages_total", label) == 3
    assert registry.get_sample_value("mirrorscope_ipfix_send_errors_total", label) == 0
    assert registry.get_sample_value("mirrorscope_ipfix_dropped_records_total", label) == 0


def test_merge_counters_sums_workers_per_collector() -> None:
    """The --workers N parent adds its workers' counts of the same collector."""
    a = {"udp:c:1": SenderCounters(1, 2, 3, 4, 5)}
    b = {"udp:c:1": SenderCounters(10, 20, 30, 40, 50), "tcp:d:2": SenderCounters(1, 1, 0, 0, 0)}
    assert merge_counters([a, b]) == {
        "udp:c:1": SenderCounters(11, 22, 33, 44, 55),
        "tcp:d:2": SenderCounters(1, 1, 0, 0, 0),
    }


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("127.0.0.1:4739", IpfixTarget("udp", "127.0.0.1", 4739)),
        ("udp:collector.example:9995", IpfixTarget("udp", "collector.example", 9995)),
        ("tcp:[::1]:4739", IpfixTarget("tcp", "::1", 4739)),
    ],
)
def test_target_parse(value: str, parsed: IpfixTarget) -> None:
    """HOST:PORT is UDP; tcp: and udp: prefixes pick the transport; IPv6 in brackets."""
    assert IpfixTarget.parse(value) == parsed


@pytest.mark.parametrize("value", ["127.0.0.1", "tcp:host:0", "host:http", ":4739"])
def test_target_parse_rejects(value: str) -> None:
    """A value without a host or a port from 1 to 65535 is a usage error naming the flag."""
    with pytest.raises(IpfixTargetError, match="--ipfix"):
        IpfixTarget.parse(value)


def test_tcp_flags_from_history() -> None:
    """Zeek history letters give each side's tcpControlBits (upper case: the originator)."""
    assert tcp_flags("ShAdDaFf") == (0x02 | 0x10 | 0x08 | 0x01, 0x12 | 0x10 | 0x08 | 0x01)
    assert tcp_flags("Sr") == (0x02, 0x04)


def test_capture_read_exports_to_a_collector(
    tmp_path: Path, collector: socket.socket, capsys: pytest.CaptureFixture[str]
) -> None:
    """`capture read --ipfix` sends one record per flow with the records' counts."""
    pcap = write(tmp_path / "x.pcap", [p for i in range(3) for p in udp_exchange(40000 + i, i)])
    port = collector.getsockname()[1]
    rc = main(["capture", "read", "--no-summary", "--ipfix", f"127.0.0.1:{port}", str(pcap)])
    assert rc == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    decoder = Decoder()
    recs = [r for d in receive_all(collector) for r in decoder.message(d).records]
    assert sorted(r["sourceTransportPort"] for r in recs) == [x["id.orig_p"] for x in lines]
    assert {(r["packetDeltaCount"], r["reverseOctetDeltaCount"]) for r in recs} == {(1, 58)}


def test_bad_ipfix_flags_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A too-small --ipfix-mtu or a target without a port fails before reading anything."""
    pcap = write(tmp_path / "x.pcap", udp_exchange(40000, 0))
    assert main(["capture", "read", "--ipfix", "h:1", "--ipfix-mtu", "100", str(pcap)]) == 2
    assert "--ipfix-mtu must be at least" in capsys.readouterr().err
    assert main(["capture", "read", "--ipfix", "nohost", str(pcap)]) == 2
    assert "--ipfix 'nohost'" in capsys.readouterr().err
