"""Flow reports: totals equal the records, window by record end, CSV/JSON round trips, CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from analyzers import Endpoint, EndpointKind
from analyzers._records import FlowRecord, TcpStats
from exporters import (
    POD_COLUMNS,
    RotatingJsonLinesWriter,
    Window,
    build_report,
    load_records,
    parse_duration,
    parse_time,
    records_frame,
    render,
)
from mirrorctl.cli import main

T = 1_795_694_400.0  # 2026-11-26T12:00:00Z
A = Endpoint(EndpointKind.POD, "shop", "web-1", "n1")
B = Endpoint(EndpointKind.POD, "shop", "db-0", "n1")
N = Endpoint(EndpointKind.NODE, node="n1")
X = Endpoint(EndpointKind.EXTERNAL)


def rec(i: int, orig: Endpoint, resp: Endpoint, *, ts: float, proto: str = "tcp") -> FlowRecord:
    tcp = TcpStats(retrans_orig=i % 3, rst_orig=i % 2, rtt_client=0.001 * (i + 1))
    return FlowRecord(
        ts=ts, uid=f"C{i:017d}", orig_h="10.16.0.5", orig_p=40000 + i, resp_h="10.16.0.9",
        resp_p=443 if proto == "tcp" else 53, proto=proto, service=None, duration=1.5,
        orig_bytes=100 * i, resp_bytes=1000 * i, conn_state="SF" if i % 4 else "REJ",
        missed_bytes=0, history="ShADadFf", orig_pkts=2 + i, orig_ip_bytes=0, resp_pkts=3 + i,
        resp_ip_bytes=0, orig_l2_bytes=200 + 17 * i, resp_l2_bytes=3000 + 31 * i, orig=orig,
        resp=resp, node="n1", vlan=0, tunnel_vni=0, ip_version=4,
        tcp=tcp if proto == "tcp" else None,
    )  # fmt: skip


def records() -> list[FlowRecord]:
    pairs = [(A, B), (B, A), (A, X), (X, B), (N, A), (A, A)]
    return [
        rec(i, *pairs[i % len(pairs)], ts=T + 10 * i, proto="udp" if i % 5 == 0 else "tcp")
        for i in range(60)
    ]


def test_report_totals_equal_the_sum_of_the_records() -> None:
    """Per-pod tx/rx bytes and packets add up to the records' own sums, side by side."""
    recs = records()
    report = build_report(records_frame(recs), Window(), "test")
    pods = report.pods.set_index(["namespace", "pod"])
    for ep, key in ((A, ("shop", "web-1")), (B, ("shop", "db-0")), (X, ("", "external"))):
        tx = sum(r.orig_l2_bytes for r in recs if r.orig == ep) + sum(
            r.resp_l2_bytes for r in recs if r.resp == ep
        )
        rx = sum(r.resp_l2_bytes for r in recs if r.orig == ep) + sum(
            r.orig_l2_bytes for r in recs if r.resp == ep
        )
        pk = sum(r.orig_pkts for r in recs if r.orig == ep) + sum(
            r.resp_pkts for r in recs if r.resp == ep
        )
        flows = sum(1 for r in recs if ep in (r.orig, r.resp))
        assert pods.loc[key, "tx_bytes"] == tx
        assert pods.loc[key, "rx_bytes"] == rx
        assert pods.loc[key, "tx_packets"] == pk
        assert pods.loc[key, "flows"] == flows
    assert ("", "node/n1") in pods.index
    wire = sum(r.orig_l2_bytes + r.resp_l2_bytes for r in recs)
    assert report.protocols["bytes"].sum() == wire
    assert report.pairs["bytes"].sum() == wire
    assert report.records == len(recs)
    tcp = [r for r in recs if r.proto == "tcp"]
    assert report.tcp["retransmissions"] == sum(r.tcp_retrans_orig for r in tcp)
    assert report.tcp["rej"] == sum(1 for r in tcp if r.conn_state == "REJ")
    assert report.tcp["resets"] == sum(r.tcp_rst for r in tcp)


def test_window_counts_records_that_ended_in_it(tmp_path: Path) -> None:
    """Records from the writer's files are counted by ts + duration in [start, end)."""
    w = RotatingJsonLinesWriter(tmp_path, prefix="flows-n1-w0", clock=lambda: T)
    recs = records()
    w.on_flows_ended(recs)
    w.close()
    start, end = T + 100 + 1.5, T + 300 + 1.5  # exactly the ends of records 10 and 30
    df, files = load_records(tmp_path, Window(start, end))
    assert files == 1
    assert len(df) == 20
    report = build_report(df, Window(start, end), "x")
    assert report.records == 20


def test_files_outside_the_window_are_not_read(tmp_path: Path) -> None:
    """A window before a file's first record end does not open that file."""
    w = RotatingJsonLinesWriter(tmp_path, clock=lambda: T)
    w.on_flows_ended(records())
    w.close()
    _, files = load_records(tmp_path, Window(T - 7200, T - 3600))
    assert files == 0


def test_csv_by_pod_loads_back_with_the_documented_columns(tmp_path: Path) -> None:
    """`--by pod --format csv`: the seven columns first, one row per pod, read by pandas."""
    report = build_report(records_frame(records()), Window(), "test")
    df = pd.read_csv(io.StringIO(render(report, "csv", "pod")), keep_default_na=False)
    assert tuple(df.columns[:7]) == POD_COLUMNS
    assert df["pod"].is_unique
    assert set(df["pod"]) == {"web-1", "db-0", "external", "node/n1"}


def test_json_loads_back_into_pandas(tmp_path: Path) -> None:
    """JSON: rows is the --by table; every section is a list of records pandas reads."""
    report = build_report(records_frame(records()), Window(), "test")
    doc = json.loads(render(report, "json", "pair"))
    rows = pd.DataFrame(doc["rows"])
    assert list(rows.columns[:3]) == ["src", "dst", "flows"]
    assert tuple(pd.DataFrame(doc["pods"]).columns[:7]) == POD_COLUMNS
    assert doc["tcp"]["flows"] == sum(1 for r in records() if r.proto == "tcp")


def test_duration_and_time_parsing() -> None:
    """Durations take s/m/h/d/w; times RFC 3339 (Z, offset, naive = UTC) or epoch."""
    assert parse_duration("90") == 90.0
    assert parse_duration("1h") == 3600.0
    assert parse_duration("7d") == 7 * 86400.0
    assert parse_time("2026-11-26T12:00:00Z") == T
    assert parse_time("2026-11-26T13:00:00+01:00") == T
    assert parse_time("2026-11-26T12:00:00") == T
    assert parse_time(str(T)) == T
    with pytest.raises(ValueError, match="duration"):
        parse_duration("soon")


def test_cli_report_from_records_writes_csv(tmp_path: Path) -> None:
    """`mirrorctl report --records DIR --start --end --format csv -o FILE` writes the table."""
    w = RotatingJsonLinesWriter(tmp_path / "rec", clock=lambda: T)
    w.on_flows_ended(records())
    w.close()
    out = tmp_path / "pods.csv"
    rc = main(
        [
            "report", "--records", str(tmp_path / "rec"), "--start", "2026-11-26T11:00:00Z",
            "--end", "2026-11-26T13:00:00Z", "--format", "csv", "-o", str(out),
        ]
    )  # fmt: skip
    assert rc == 0
    df = pd.read_csv(out, keep_default_na=False)
    assert df["tx_bytes"].sum() + df["rx_bytes"].sum() > 0


def test_cli_report_rejects_since_with_start(capsys: pytest.CaptureFixture[str]) -> None:
    """--since and --start together are a usage error (exit 2) naming both."""
    rc = main(["report", "--records", "/nonexistent", "--since", "1h", "--start", "0"])
    assert rc == 2
    assert "--since" in capsys.readouterr().err


def test_dissect_names_application_protocols_by_tshark(tmp_path: Path) -> None:
    """--dissect: packets and bytes per tshark highest layer, every packet of the file."""
    from scapy.layers.dns import DNS, DNSQR  # noqa: PLC0415
    from scapy.layers.inet import IP, TCP, UDP  # noqa: PLC0415
    from scapy.layers.l2 import Ether  # noqa: PLC0415
    from scapy.utils import wrpcap  # noqa: PLC0415

    from exporters import app_protocols  # noqa: PLC0415

    ip = IP(src="10.16.0.5", dst="10.16.0.9")
    pkts = [
        Ether() / ip / UDP(sport=3333, dport=53) / DNS(qd=DNSQR(qname="a.example")),
        Ether() / ip / TCP(sport=4444, dport=80, flags="S"),
    ]
    for i, p in enumerate(pkts):
        p.time = T + i
    pcap = tmp_path / "two.pcap"
    wrpcap(str(pcap), pkts)
    apps = app_protocols([pcap]).set_index("protocol")
    assert apps.loc["DNS", "packets"] == 1
    assert apps.loc["DNS", "bytes"] == 69
    assert apps.loc["TCP", "bytes"] == 54


def test_dissect_leaves_no_sigchld_handler_behind(tmp_path: Path) -> None:
    """After --dissect (pyshark attaches a SIGCHLD watcher in the main thread) SIGCHLD is back to
    its default and no wakeup socket is set, so later child exits cannot fill one up."""
    import signal  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    from scapy.layers.inet import IP, UDP  # noqa: PLC0415
    from scapy.layers.l2 import Ether  # noqa: PLC0415
    from scapy.utils import wrpcap  # noqa: PLC0415

    from exporters import app_protocols  # noqa: PLC0415

    pcap = tmp_path / "one.pcap"
    wrpcap(str(pcap), [Ether() / IP(src="10.16.0.5", dst="10.16.0.9") / UDP(sport=1, dport=2)])
    assert app_protocols([pcap])["packets"].sum() == 1
    assert signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL
    assert signal.set_wakeup_fd(-1) == -1
    subprocess.run(["true"], check=True)  # a child still exits and is reaped as before
