"""Reading qperf, iperf3 and wrk output (samples captured on the lab) and the seed's cells."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirrorctl.bench import BenchError
from mirrorctl.bench import _parse as parse

FIXTURES = Path(__file__).parent / "fixtures_benchm"


def fixture_of(test: str, ext: str) -> str:
    return (FIXTURES / f"{test}.{ext}").read_text()


def fixture(request: pytest.FixtureRequest, ext: str) -> str:
    """The captured tool output named after the running test."""
    return fixture_of(request.node.name, ext)


def test_qperf_latencies_are_read_in_microseconds(request: pytest.FixtureRequest) -> None:
    """qperf -vu tcp_lat udp_lat: both one-way latencies, in microseconds."""
    assert parse.qperf_latencies(fixture(request, "txt")) == {"tcp_lat": 186.0, "udp_lat": 96.7}


def test_qperf_reads_ms_and_sec_units(request: pytest.FixtureRequest) -> None:
    """Plain qperf output reads the same; ms and sec scale to microseconds."""
    assert parse.qperf_latencies(fixture(request, "txt")) == {"tcp_lat": 202.0, "udp_lat": 160.0}
    text = "tcp_lat:\n    latency  =  1.5 ms\nudp_lat:\n    latency  =  2 sec\n"
    assert parse.qperf_latencies(text) == {"tcp_lat": 1500.0, "udp_lat": 2e6}


def test_qperf_without_a_latency_is_an_error() -> None:
    """A failed qperf (no latency line) raises BenchError quoting what it printed."""
    with pytest.raises(BenchError, match="failed to connect"):
        parse.qperf_latencies("qperf: failed to connect\n")


def test_iperf3_tcp_gives_received_bandwidth(request: pytest.FixtureRequest) -> None:
    """TCP bandwidth is the receiver's bits/s."""
    assert parse.iperf3_tcp(fixture(request, "json")) == pytest.approx(145804920.5, rel=1e-9)


def test_iperf3_udp_gives_received_bandwidth_and_loss(request: pytest.FixtureRequest) -> None:
    """UDP: the receiver's bits/s (not the offered rate) and its lost datagrams in %."""
    got = parse.iperf3_udp(fixture(request, "json"))
    assert got.bandwidth_bps == pytest.approx(11777769.39, rel=1e-6)
    assert got.lost_pct == pytest.approx(90.62, abs=0.01)


def test_iperf3_error_document_is_an_error() -> None:
    """iperf3's JSON error (server busy, refused) becomes a BenchError with its text."""
    with pytest.raises(BenchError, match="server is busy"):
        parse.iperf3_tcp('{"start": {}, "end": {}, "error": "the server is busy"}')
    with pytest.raises(BenchError, match="no JSON"):
        parse.iperf3_tcp("iperf3: error - unable to connect")


def test_wrk_gives_qps_and_response_times(request: pytest.FixtureRequest) -> None:
    """wrk --latency: requests/s and latency avg/stdev/max, times in microseconds."""
    got = parse.wrk(fixture(request, "txt"))
    assert got == parse.WrkResult(8100.23, 2200.0, 2790.0, 17570.0)


def test_wrk_reads_ms_us_and_k_units(request: pytest.FixtureRequest) -> None:
    """Plain wrk output (100 connections) reads the same way."""
    got = parse.wrk(fixture(request, "txt"))
    assert got.qps == 9618.49
    assert (got.avg_us, got.stdev_us, got.max_us) == pytest.approx((10200.0, 3790.0, 30680.0))


def test_seed_cells_in_our_units() -> None:
    """Seed cells: us stays, Mbits/Gbits scale to bit/s, % stays, plain numbers stay."""
    assert parse.seed_value("12.7 us") == 12.7
    assert parse.seed_value("7.67 Gbits/sec") == pytest.approx(7.67e9)
    assert parse.seed_value("289 Mbits/sec") == 289e6
    assert parse.seed_value("1.8%") == 1.8
    assert parse.seed_value("0.87ms") == 870.0
    assert parse.seed_value("802.50us") == 802.5
    assert parse.seed_value("14305.17") == 14305.17


def test_iperf3_udp_with_nothing_received_is_total_loss() -> None:
    """When no datagram arrived iperf3 reports 0 lost of 0: that is 100 % loss, not 0 %."""
    text = fixture_of("test_iperf3_udp_gives_received_bandwidth_and_loss", "json")
    doc = json.loads(text)
    doc["end"]["sum_received"].update(
        bytes=0, bits_per_second=0, packets=0, lost_packets=0, lost_percent=0
    )
    assert parse.iperf3_udp(json.dumps(doc)) == parse.UdpResult(0.0, 100.0)
