"""`mirrorctl capture read` in-process: records on stdout, summary and errors on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet
from scapy.utils import wrpcap

from mirrorctl.cli import main

CORPUS = Path(__file__).parents[2].parent / "shared/corpus/tcpdump-tests"
CORPUS_FILES = sorted(p for p in CORPUS.glob("*") if p.suffix in {".pcap", ".pcapng", ".cap"})
A_MAC, B_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"
T0 = 1_700_000_000.0


def udp_exchange(sport: int, t: float) -> list[Packet]:
    """A request and a reply between 10.0.0.1:sport and 10.0.0.2:53 at time t."""
    q = (
        Ether(src=A_MAC, dst=B_MAC)
        / IP(src="10.0.0.1", dst="10.0.0.2")
        / UDP(sport=sport, dport=7000)
        / (b"q" * 10)
    )
    r = (
        Ether(src=B_MAC, dst=A_MAC)
        / IP(src="10.0.0.2", dst="10.0.0.1")
        / UDP(sport=7000, dport=sport)
        / (b"r" * 30)
    )
    q.time, r.time = t, t + 0.001
    return [q, r]


def write(path: Path, pkts: list[Packet]) -> Path:
    wrpcap(str(path), pkts)
    return path


def records(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def test_read_writes_one_json_line_per_flow_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three UDP exchanges give three conn.log records on stdout and a one-line summary."""
    pcap = write(
        tmp_path / "x.pcap", [p for i in range(3) for p in udp_exchange(40000 + i, T0 + i)]
    )
    assert main(["capture", "read", "--max-flows", "64", str(pcap)]) == 0
    out, err = capsys.readouterr()
    recs = records(out)
    assert sorted(r["id.orig_p"] for r in recs) == [40000, 40001, 40002]
    assert {
        (r["orig_pkts"], r["resp_pkts"], r["orig_ip_bytes"], r["resp_ip_bytes"]) for r in recs
    } == {(1, 1, 20 + 8 + 10, 20 + 8 + 30)}
    assert {r["end_reason"] for r in recs} == {"flush"}
    assert {r["orig_kind"] for r in recs} == {"external"}
    assert err.splitlines() == [
        "mirrorctl: read 1 file(s): 6 packets, 3 flows (udp 3), malformed 0, "
        "duplicates suppressed 0"
    ]


def test_truncated_pcap_exits_nonzero_with_one_line_and_keeps_earlier_flows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pcap cut inside its last record: exit 1, one error line naming the offset, and the
    flows of every record before the damage still on stdout."""
    pkts = [p for i in range(4) for p in udp_exchange(41000 + i, T0 + i)]
    last = (
        Ether(src=A_MAC, dst=B_MAC)
        / IP(src="10.0.0.1", dst="10.0.0.9")
        / TCP(sport=5, dport=6, flags="S")
    )
    last.time = T0 + 10
    pcap = write(tmp_path / "cut.pcap", [*pkts, last])
    data = pcap.read_bytes()
    pcap.write_bytes(data[:-20])  # the TCP frame's record runs past the end now
    rc = main(["capture", "read", "--no-summary", "--max-flows", "64", str(pcap)])
    out, err = capsys.readouterr()
    assert rc == 1
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mirrorctl: error: ")
    assert str(pcap) in lines[0]
    assert "offset" in lines[0]
    assert sorted(r["id.orig_p"] for r in records(out)) == [41000, 41001, 41002, 41003]


def test_missing_file_is_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A path that does not exist: exit 1 and one error line, stdout empty."""
    rc = main(["capture", "read", "--no-summary", "--max-flows", "64", str(tmp_path / "nope")])
    out, err = capsys.readouterr()
    assert rc == 1
    assert out == ""
    assert len(err.splitlines()) == 1
    assert "nope" in err


def test_second_file_is_read_after_a_damaged_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A damaged file does not stop the files after it; the exit code still says so."""
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\x00" * 40)
    good = write(tmp_path / "good.pcap", udp_exchange(42000, T0))
    rc = main(["capture", "read", "--max-flows", "64", str(bad), str(good)])
    out, err = capsys.readouterr()
    assert rc == 1
    assert [r["id.orig_p"] for r in records(out)] == [42000]
    assert "bad.pcap" in err.splitlines()[-1]


def test_identity_file_names_pods_and_nodes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--identity {ip: ns/pod | node/NAME} puts names on both sides of the record."""
    pcap = write(tmp_path / "x.pcap", udp_exchange(43000, T0))
    ids = tmp_path / "ids.json"
    ids.write_text(json.dumps({"10.0.0.1": "shop/client", "10.0.0.2": "node/n1"}))
    assert main(["capture", "read", "--max-flows", "64", "--identity", str(ids), str(pcap)]) == 0
    (r,) = records(capsys.readouterr().out)
    assert (r["orig_kind"], r["orig_namespace"], r["orig_pod"]) == ("pod", "shop", "client")
    assert (r["resp_kind"], r["resp_node"]) == ("node", "n1")


def test_bad_identity_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An --identity value that is not ns/pod is rejected with exit 2 and one line."""
    pcap = write(tmp_path / "x.pcap", udp_exchange(43000, T0))
    ids = tmp_path / "ids.json"
    ids.write_text(json.dumps({"10.0.0.1": "client"}))
    rc = main(["capture", "read", "--identity", str(ids), str(pcap)])
    out, err = capsys.readouterr()
    assert (rc, out) == (2, "")
    assert len(err.splitlines()) == 1
    assert "--identity" in err


def test_every_corpus_file_goes_through_capture_read_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """All of tcpdump's test captures: `capture read` returns 0 or a one-line error, never raises,
    and what it prints on stdout is JSON lines."""
    assert len(CORPUS_FILES) >= 800
    codes: dict[int, int] = {}
    flows = 0
    for path in CORPUS_FILES:
        rc = main(["capture", "read", "--no-summary", "--max-flows", "4096", str(path)])
        out, err = capsys.readouterr()
        codes[rc] = codes.get(rc, 0) + 1
        assert "Traceback" not in err, (path.name, err)
        assert rc == 0 or len(err.splitlines()) == 1, (path.name, err)
        flows += len(records(out))
    assert set(codes) <= {0, 1}
    assert codes.get(0, 0) > len(CORPUS_FILES) * 9 // 10
    assert flows > 500  # 741 when written: most corpus files hold a handful of frames


def test_filter_keeps_only_matching_frames_like_tcpdump(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--filter runs libpcap's BPF per frame: a port filter keeps that flow only."""
    pcap = write(tmp_path / "x.pcap", [*udp_exchange(44000, T0), *udp_exchange(44001, T0 + 1)])
    rc = main(["capture", "read", "--max-flows", "64", "--filter", "port 44001", str(pcap)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert [(r["id.orig_p"], r["orig_pkts"], r["resp_pkts"]) for r in records(out)] == [
        (44001, 1, 1)
    ]
    assert "2 packets" in err


def test_bad_filter_is_one_error_line_before_any_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A filter libpcap cannot compile: exit 1, one line naming it, nothing on stdout."""
    pcap = write(tmp_path / "x.pcap", udp_exchange(45000, T0))
    rc = main(["capture", "read", "--filter", "port port", str(pcap)])
    out, err = capsys.readouterr()
    assert (rc, out) == (1, "")
    assert len(err.splitlines()) == 1
    assert "invalid capture filter 'port port'" in err
