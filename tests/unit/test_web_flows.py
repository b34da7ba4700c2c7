"""The flows API, /report, /api/v1/pods and the page shell on loopback, with and without a token."""

from __future__ import annotations

import io
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from analyzers import Endpoint, EndpointKind, IdentityMap
from exporters import (
    FlowMetricsCollector,
    FlowQuery,
    FlowTableSource,
    HttpServer,
    MetricsConfig,
    RotatingJsonLinesWriter,
    build_app,
    flows_router,
    page_router,
    pods_router,
)
from mirrorctl.cli import main
from tests.unit import flowkit
from tests.unit.test_exporter_http_api import TOKEN, get
from tests.unit.test_report import A, T, records

LIVE_A = Endpoint(EndpointKind.POD, "live", "a", "n1")
LIVE_B = Endpoint(EndpointKind.POD, "live", "b", "n1")
T0_S = flowkit.T0 / 1e9
#: A window holding the stored records (at T) and the live flows (at flowkit's T0).
WINDOW = f"start={T0_S - 10:.0f}&end={T + 10_000:.0f}"


def _stored(directory: Path) -> Path:
    w = RotatingJsonLinesWriter(directory, prefix="flows-n1-w0", clock=lambda: T)
    w.on_flows_ended(records())
    w.close()
    return directory


def _live_table() -> tuple[FlowTableSource, IdentityMap]:
    ids = IdentityMap()
    ids.replace("t", [("10.0.0.1", LIVE_A), ("10.0.0.2", LIVE_B)])
    table, _ = flowkit.table(identity=ids)
    pkts = [
        flowkit.Pkt("10.0.0.1", "10.0.0.2", 4000, 80, flags=flowkit.SYN, plen=60, ts=1.0),
        flowkit.Pkt("10.0.0.2", "10.0.0.1", 80, 4000, flags=flowkit.SYN | flowkit.ACK, ts=1.1),
        flowkit.Pkt("10.0.0.1", "10.0.0.2", 4000, 80, flags=flowkit.ACK, plen=900, ts=1.2),
    ]
    table.process(*flowkit.batch(pkts))
    return FlowTableSource(table), ids


@pytest.fixture
def service(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[HttpServer]:
    source, ids = _live_table()
    registry = CollectorRegistry()
    registry.register(FlowMetricsCollector(source, ids, MetricsConfig(node="n1")))
    routers = [
        pods_router(registry.collect),
        flows_router(FlowQuery(_stored(tmp_path / "records"), source)),
        page_router(),
    ]
    token = TOKEN if getattr(request, "param", False) else None
    app = build_app(registry, token=token, routers=routers)
    with HttpServer(app, "127.0.0.1:0") as srv:
        yield srv


def _lines(body: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in body.decode().splitlines() if line]


def test_flows_are_the_stored_records_and_the_active_flows(service: HttpServer) -> None:
    """JSON lines: every record that ended in the window, then the live flow (end_reason active)."""
    reply = get(service, f"/api/v1/flows?{WINDOW}")
    assert reply.code == 200
    assert reply.headers["content-type"].startswith("application/x-ndjson")
    rows = _lines(reply.body)
    stored = [r for r in rows if r["end_reason"] != "active"]
    live = [r for r in rows if r["end_reason"] == "active"]
    assert len(stored) == len(records())
    assert {r["uid"] for r in stored} == {r.uid for r in records()}
    assert len(live) == 1
    assert live[0]["orig_pod"] == "a"
    assert live[0]["resp_namespace"] == "live"
    assert live[0]["orig_l2_bytes"] > 900
    assert live[0]["uid"] is None  # the view has no uid: null, not invented


def test_flows_filters_by_pod_namespace_protocol_and_limit(service: HttpServer) -> None:
    """pod=ns/name keeps flows with that pod on either side; namespace, protocol, limit narrow."""
    web = [r for r in records() if A in (r.orig, r.resp)]
    rows = _lines(get(service, f"/api/v1/flows?{WINDOW}&pod=shop/web-1").body)
    assert {r["uid"] for r in rows} == {r.uid for r in web}
    rows = _lines(get(service, f"/api/v1/flows?{WINDOW}&namespace=live").body)
    assert len(rows) == 1
    udp = [r for r in records() if r.proto == "udp"]
    rows = _lines(get(service, f"/api/v1/flows?{WINDOW}&protocol=udp").body)
    assert {r["uid"] for r in rows} == {r.uid for r in udp}
    assert len(_lines(get(service, f"/api/v1/flows?{WINDOW}&limit=7").body)) == 7


def test_flows_as_json_with_chosen_columns_load_into_pandas(service: HttpServer) -> None:
    """format=json is one array; columns= picks the fields, in that order."""
    reply = get(service, f"/api/v1/flows?{WINDOW}&format=json&columns=ts,orig_pod,orig_l2_bytes")
    assert reply.headers["content-type"].startswith("application/json")
    df = pd.read_json(io.BytesIO(reply.body))
    assert list(df.columns) == ["ts", "orig_pod", "orig_l2_bytes"]
    assert len(df) == len(records()) + 1
    assert df["orig_l2_bytes"].sum() == sum(r.orig_l2_bytes for r in records()) + int(
        df["orig_l2_bytes"].iloc[-1]
    )


def test_flows_window_excludes_records_outside_it(service: HttpServer) -> None:
    """A window before every stored record and after the live flow holds nothing."""
    rows = _lines(get(service, f"/api/v1/flows?start={T0_S + 100:.0f}&end={T - 100:.0f}").body)
    assert rows == []


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("since=soon", "since"),
        ("since=1h&start=0", "since"),
        ("start=yesterday", "start"),
        ("pod=nopod", "pod"),
        ("limit=0", "limit"),
        ("format=xml", "format"),
        ("columns=nope", "columns"),
    ],
)
def test_flows_bad_parameters_are_400_naming_them(
    service: HttpServer, query: str, parameter: str
) -> None:
    """Each bad parameter answers 400 with its name in the detail."""
    reply = get(service, f"/api/v1/flows?{query}")
    assert reply.code == 400
    assert parameter in str(reply.json()["detail"])


def test_report_is_the_html_report_of_records_and_active_flows(service: HttpServer) -> None:
    """/report answers the self-contained HTML report naming stored and live pods."""
    reply = get(service, f"/report?{WINDOW}&by=pod")
    assert reply.code == 200
    assert reply.headers["content-type"].startswith("text/html")
    html = reply.body.decode()
    for name in ("shop/web-1", "shop/db-0", "live/a", "live/b", "chart-bytes"):
        assert name in html
    one = get(service, f"/report?{WINDOW}&pod=live/a").body.decode()
    assert "live/a" in one
    assert "shop/db-0" not in one
    assert get(service, "/report?by=nothing").code == 400


def test_pods_are_the_metrics_pod_totals(service: HttpServer) -> None:
    """/api/v1/pods gives each pod's tx/rx bytes and packets as /metrics counts them."""
    body = get(service, "/api/v1/pods").json()
    assert isinstance(body["time"], float)
    pods = {(p["namespace"], p["pod"]): p for p in body["pods"]}  # type: ignore[attr-defined]
    metrics = get(service, "/metrics").body.decode()
    for line in metrics.splitlines():
        if line.startswith("mirrorscope_pod_bytes_total{") and 'pod="a"' in line:
            direction = "tx" if 'direction="tx"' in line else "rx"
            assert pods[("live", "a")][f"{direction}_bytes"] == float(line.rsplit(" ", 1)[1])
    assert pods[("live", "a")]["tx_bytes"] > 900
    assert pods[("live", "a")]["tx_packets"] == 2


def test_page_shell_is_self_contained_and_holds_no_traffic(service: HttpServer) -> None:
    """/ is HTML with plotly inlined, no external script, and no pod name in it."""
    reply = get(service, "/")
    assert reply.code == 200
    html = reply.body.decode()
    assert "Plotly" in html
    assert "sessionStorage" in html
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=\"?https?:", html)
    assert "live/a" not in html
    assert "web-1" not in html


@pytest.mark.parametrize("service", [True], indirect=True)
@pytest.mark.parametrize(
    "path", ["/api/v1/flows", "/api/v1/flows?format=json", "/report", "/api/v1/pods"]
)
def test_with_a_token_every_traffic_path_is_401(service: HttpServer, path: str) -> None:
    """A token configured: the flows, the report and the pods need it."""
    assert get(service, path).code == 401
    assert get(service, path, token=TOKEN).code == 200


@pytest.mark.parametrize("service", [True], indirect=True)
def test_with_a_token_the_page_shell_is_open(service: HttpServer) -> None:
    """The page loads without the token (it has to ask for it) and shows no traffic itself."""
    reply = get(service, "/")
    assert reply.code == 200
    assert "live/a" not in reply.body.decode()


def _url(server: HttpServer) -> str:
    host, port = server.address
    return f"http://{host}:{port}"


def _free_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # closed on return: nobody answers


def test_report_server_unions_services_and_names_the_silent_one(
    service: HttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--server twice, one down: the CSV holds the live one's pods and totals; stderr names the
    other, and the report still comes."""
    dead = _free_port_url()
    out = tmp_path / "pods.csv"
    argv = ["report", "--server", _url(service), "--server", dead, "--format", "csv"]
    argv += ["--start", f"{T0_S - 10:.0f}", "--end", f"{T + 10_000:.0f}", "-o", str(out)]
    assert main(argv) == 0
    assert f"server {dead} did not answer" in capsys.readouterr().err
    pods = pd.read_csv(out).fillna({"namespace": ""}).set_index(["namespace", "pod"])
    recs = records()
    tx = sum(r.orig_l2_bytes for r in recs if r.orig == A) + sum(
        r.resp_l2_bytes for r in recs if r.resp == A
    )
    assert pods.loc[("shop", "web-1"), "tx_bytes"] == tx
    assert pods.loc[("live", "a"), "tx_bytes"] > 900
    assert pods.loc[("live", "a"), "flows"] == 1


@pytest.mark.parametrize("service", [True], indirect=True)
def test_report_server_sends_the_token_from_the_environment(
    service: HttpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MIRRORSCOPE_TOKEN reaches a locked service as a bearer token; without it, a 401 is named."""
    out = tmp_path / "pods.csv"
    argv = ["report", "--server", _url(service), "--format", "csv", "-o", str(out)]
    argv += ["--start", f"{T0_S - 10:.0f}", "--end", f"{T + 10_000:.0f}"]
    monkeypatch.setenv("MIRRORSCOPE_TOKEN", TOKEN)
    assert main(argv) == 0
    assert "live" in out.read_text()
    monkeypatch.delenv("MIRRORSCOPE_TOKEN")
    assert main(argv) == 0
    assert "live" not in out.read_text()


def test_report_servers_from_dns_asks_every_address_of_the_name(
    service: HttpServer, tmp_path: Path
) -> None:
    """--servers-from-dns localhost --dns-port P: the service behind the name is reported, as
    with --server (a headless Service's name lists every node's agent)."""
    port = str(service.address[1])
    out = tmp_path / "pods.csv"
    argv = ["report", "--servers-from-dns", "localhost", "--dns-port", port, "--format", "csv"]
    argv += ["--start", f"{T0_S - 10:.0f}", "--end", f"{T + 10_000:.0f}", "-o", str(out)]
    assert main(argv) == 0
    pods = pd.read_csv(out).fillna({"namespace": ""}).set_index(["namespace", "pod"])
    assert pods.loc[("live", "a"), "flows"] == 1
