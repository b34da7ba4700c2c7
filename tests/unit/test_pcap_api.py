"""The pcap endpoints on a real listener over a real store: downloads of a pod's packets, 204,
400 naming the parameter, 404, 413, 429, the listing, filters and paths that run or open nothing,
a live stream, and an Alertmanager webhook that leaves a kept pcapng."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from analyzers import Endpoint, EndpointKind, IdentityMap
from capture import open_capture_file
from exporters import HttpServer, MacTable, PcapStore, StoreConfig, build_app
from mirrorctl.cli import main
from mirrorctl.service import PcapApiConfig
from mirrorctl.service._pcapserve import PcapEndpoints, PcapView
from tests.unit._pcapkit import PODS, A, B, C, arp_reply, arp_request, batch, tcp4, udp6

TOKEN = "pcap-api-test-token"  # noqa: S105 - a test fixture, guards nothing real
NS = 1_000_000_000


@dataclass
class Api:
    server: HttpServer
    store: PcapStore
    macs: MacTable
    registry: CollectorRegistry
    endpoints: PcapEndpoints
    directory: Path
    t0: int  # the first frame's time

    def url(self, path: str) -> str:
        host, port = self.server.address
        return f"http://{host}:{port}{path}"

    def get(self, path: str, token: str | None = TOKEN) -> tuple[int, bytes, dict[str, str]]:
        req = urllib.request.Request(self.url(path))  # noqa: S310 - loopback
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 - loopback
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def write(self, frames: list[bytes], ts: list[int]) -> None:
        b, d = batch(frames, ts)
        self.macs.on_frames(b, d)
        self.store.write(b, d)
        self.store.flush()  # the writer thread has written it


def identity() -> IdentityMap:
    ids = IdentityMap()
    entries: list[tuple[str, Endpoint]] = []
    for p in PODS:
        ns, name = p.name.split("/")
        ep = Endpoint(EndpointKind.POD, namespace=ns, pod=name, node="node1")
        entries += [(p.v4, ep), (p.v6, ep)]
    ids.replace("test", entries)
    return ids


def start(tmp_path: Path, api: PcapApiConfig | None = None) -> Api:
    directory = tmp_path / "store"
    config = StoreConfig(directory=directory, node="node1", min_free_bytes=0)
    store = PcapStore(config)
    macs = MacTable()
    view = PcapView(
        config=config,
        api=api or PcapApiConfig(alert_lookback_s=5, alert_lookahead_s=0.5),
        stores=lambda: [store.counters()],
        macs=macs.macs,
        open_files=lambda: [f for f in (store.open_file(),) if f is not None],
        in_process=True,
    )
    registry = CollectorRegistry()
    endpoints = PcapEndpoints(view, identity(), registry)
    app = build_app(registry, token=TOKEN, routers=endpoints.routers())
    server = HttpServer(app, "127.0.0.1:0").start()
    t0 = time.time_ns() - 2 * NS
    a = Api(server, store, macs, registry, endpoints, directory, t0)
    frames = [tcp4(A, B), udp6(B, A), arp_request(A, B), arp_reply(B, A), tcp4(C, B), tcp4(B, C)]
    a.write(frames, [t0 + i * 1000 for i in range(len(frames))])
    return a


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    a = start(tmp_path)
    try:
        yield a
    finally:
        a.endpoints.close()
        a.server.stop()
        a.store.close()


def frames_of(data: bytes, tmp_path: Path, name: str = "got.pcapng") -> list[bytes]:
    path = tmp_path / name
    path.write_bytes(data)
    source = open_capture_file(path)
    try:
        out = []
        for b in source.batches():
            out += [b.data[o : o + c].tobytes() for o, c in zip(b.offsets, b.caplens, strict=True)]
        return out
    finally:
        source.close()


def test_a_pods_download_holds_its_packets_and_its_arp_by_mac_only(
    api: Api, tmp_path: Path
) -> None:
    """pod=default/a, since=1m: A's IPv4 and IPv6 packets and the ARP to and from its MAC (learned
    from its IP traffic), in time order; none of C's packets with B."""
    code, body, headers = api.get("/api/v1/pcap?pod=default/a&since=1m")
    assert code == 200, body
    assert headers["content-type"] == "application/x-pcapng"
    assert 'filename="default_a-' in headers["content-disposition"]
    got = frames_of(body, tmp_path)
    assert got == [tcp4(A, B), udp6(B, A), arp_request(A, B), arp_reply(B, A)]


def test_the_newest_frames_of_the_file_being_written_are_served(api: Api, tmp_path: Path) -> None:
    """A frame written a moment ago to the open file is in the next download."""
    now = time.time_ns()
    api.write([tcp4(A, C, sport=1234)], [now])
    code, body, _ = api.get("/api/v1/pcap?pod=default/a&since=10s")
    assert code == 200
    assert frames_of(body, tmp_path)[-1] == tcp4(A, C, sport=1234)


def test_classic_pcap_filter_ip_and_namespace(api: Api, tmp_path: Path) -> None:
    """format=pcap gives a classic file; filter= narrows with libpcap; ip= and namespace= select
    by address and by every pod of the namespace."""
    code, body, _ = api.get("/api/v1/pcap?pod=default/a&since=1m&format=pcap&filter=tcp")
    assert code == 200
    assert body[:4] == bytes.fromhex("4d3cb2a1")  # nanosecond pcap, little-endian
    assert frames_of(body, tmp_path, "f.pcap") == [tcp4(A, B)]
    code, body, _ = api.get(f"/api/v1/pcap?ip={C.v4}&since=1m")
    assert frames_of(body, tmp_path) == [tcp4(C, B), tcp4(B, C)]
    code, body, _ = api.get("/api/v1/pcap?namespace=other&since=1m")
    assert frames_of(body, tmp_path) == [tcp4(C, B), tcp4(B, C)]


def test_an_empty_window_is_204(api: Api) -> None:
    """A window before any stored frame answers 204 No Content."""
    start = (api.t0 - 60 * NS) / NS
    code, body, _ = api.get(f"/api/v1/pcap?pod=default/a&start={start}&end={start + 10}")
    assert (code, body) == (204, b"")


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("since=5m", "pod"),
        ("pod=default/a&ip=10.0.0.1", "pod"),
        ("pod=a", "pod"),
        ("ip=10.0.0.999", "ip"),
        ("pod=default/a&since=five", "since"),
        ("pod=default/a&start=yesterday", "start"),
        ("pod=default/a&start=2026-01-01T00:00:00", "start"),
        ("pod=default/a&since=5m&start=1", "since"),
        ("pod=default/a&format=json", "format"),
        ("pod=default/a&filter=tcp port", "filter"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(api: Api, query: str, parameter: str) -> None:
    """Each malformed parameter is a 400 whose detail names it."""
    code, body, _ = api.get(f"/api/v1/pcap?{query.replace(' ', '%20')}")
    assert code == 400, body
    assert f"'{parameter}'" in json.loads(body)["detail"]


def test_a_filter_with_shell_metacharacters_runs_nothing(api: Api, tmp_path: Path) -> None:
    """A filter is compiled by libpcap as data: `; touch FILE` and `$(touch FILE)` are 400s
    and no file appears."""
    marker = tmp_path / "pwned"
    for bpf in (f"tcp; touch {marker}", f"$(touch {marker})", f"`touch {marker}`"):
        q = urllib.parse.quote(bpf)
        code, _, _ = api.get(f"/api/v1/pcap?pod=default/a&since=1m&filter={q}")
        assert code == 400
    code, _, _ = api.get("/api/v1/pcap/stream?pod=default/a&filter=" + urllib.parse.quote("|id"))
    assert code == 400
    assert not marker.exists()


def test_path_traversal_in_any_parameter_gets_nothing(api: Api) -> None:
    """../ in pod, namespace, ip and a kept file's name reads no file: 400 or 404."""
    for query in (
        "pod=../../etc/passwd",
        "pod=default/../../etc",
        "namespace=../../etc",
        "ip=../../etc/passwd",
        "pod=default/a&since=1m&format=../../x",
    ):
        code, body, _ = api.get(f"/api/v1/pcap?{query}")
        assert code in (400, 404), (query, code)
        assert b"root:" not in body
    for name in ("..%2F..%2Fetc%2Fpasswd", "..%2Fpcap-node1-w0.pcap", "%2Fetc%2Fpasswd"):
        code, body, _ = api.get(f"/api/v1/pcap/kept/{name}")
        assert code == 404
        assert b"root:" not in body


def test_unknown_pod_is_404(api: Api) -> None:
    """A pod with no address on this node is a 404 that suggests ip=."""
    code, body, _ = api.get("/api/v1/pcap?pod=default/nobody")
    assert code == 404
    assert "ip=" in json.loads(body)["detail"]


def test_everything_needs_the_token(api: Api) -> None:
    """Every pcap endpoint answers 401 without the token."""
    for path in (
        "/api/v1/pcap?pod=default/a",
        "/api/v1/pcap/files",
        "/api/v1/pcap/stream?pod=default/a",
        "/api/v1/pcap/kept",
    ):
        assert api.get(path, token=None)[0] == 401
    req = urllib.request.Request(api.url("/api/v1/alerts"), data=b"{}", method="POST")  # noqa: S310 - loopback
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)  # noqa: S310 - loopback
    assert err.value.code == 401


def test_over_the_size_limit_is_413_and_over_the_download_limit_429(tmp_path: Path) -> None:
    """--max-download-size below the window's bytes: 413 saying why; a second download while
    the only slot streams: 429."""
    a = start(tmp_path, PcapApiConfig(max_download_bytes=100, max_downloads=1))
    try:
        code, body, _ = a.get("/api/v1/pcap?pod=default/a&since=1m")
        assert code == 413
        assert "--max-download-size" in json.loads(body)["detail"]
        stream = urllib.request.Request(a.url("/api/v1/pcap/stream?pod=default/a"))  # noqa: S310 - loopback
        stream.add_header("Authorization", f"Bearer {TOKEN}")
        with urllib.request.urlopen(stream, timeout=5) as live:  # noqa: S310 - loopback
            live.read(4)
            code, body, _ = a.get("/api/v1/pcap?ip=10.99.0.1&since=1m")  # nothing: 0 bytes
            assert code == 429
    finally:
        a.endpoints.close()
        a.server.stop()
        a.store.close()
    samples = {
        s.labels.get("status"): s.value
        for m in a.registry.collect()
        for s in m.samples
        if s.name == "mirrorscope_pcap_downloads_total"
    }
    assert samples["413"] == 1
    assert samples["429"] == 1


def test_the_listing_names_files_pods_and_the_store_state(api: Api) -> None:
    """/pcap/files lists the file being written with its pods and counts, and the store's state."""
    code, body, _ = api.get("/api/v1/pcap/files")
    assert code == 200
    doc = json.loads(body)
    assert doc["store"]["full"] is False
    (f,) = doc["files"]
    assert f["writing"] is True
    assert f["packets"] == 6
    assert f["pods"] == {"default/a": 2, "default/b": 4, "other/c": 2}


def test_a_stream_delivers_packets_written_after_it_started(api: Api, tmp_path: Path) -> None:
    """/pcap/stream sends a pcapng header at once, then each packet of the pod as it is stored,
    and none from before it started."""
    req = urllib.request.Request(api.url("/api/v1/pcap/stream?pod=default/a"))  # noqa: S310 - loopback
    req.add_header("Authorization", f"Bearer {TOKEN}")
    got = bytearray()
    with urllib.request.urlopen(req, timeout=10) as live:  # noqa: S310 - loopback
        got += live.read1(65536)
        assert got[:4] == bytes.fromhex("0a0d0d0a")  # section header block
        sent = [tcp4(A, B, sport=5000 + i) for i in range(3)]
        for i, frame in enumerate(sent):
            api.write([frame, tcp4(C, B)], [time.time_ns(), time.time_ns() + 1])
            time.sleep(0.05 * i)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(frames_safe(bytes(got), tmp_path)) < 3:
            got += live.read1(65536)
    assert frames_safe(bytes(got), tmp_path) == sent


def frames_safe(data: bytes, tmp_path: Path) -> list[bytes]:
    """The whole packets of a stream read so far."""
    try:
        return frames_of(data, tmp_path, "stream.pcapng")
    except Exception:  # a block still arriving
        return []


def test_an_alertmanager_webhook_yields_a_kept_pcapng_of_the_pod(api: Api, tmp_path: Path) -> None:
    """A firing alert with namespace/pod labels: 202 at once; after the lookahead a pcapng of the
    pod's lookback+lookahead is listed in /pcap/kept and downloads; the same alert again is a
    duplicate; a resolved one and one without pod labels are skipped."""
    alert = {
        "status": "firing",
        "labels": {"alertname": "HighLatency", "namespace": "default", "pod": "a"},
        "startsAt": "2026-01-01T00:00:00Z",
        "fingerprint": "abc123",
    }
    payload = {
        "version": "4",
        "status": "firing",
        "alerts": [
            alert,
            {**alert, "status": "resolved", "fingerprint": "x"},
            {"status": "firing", "labels": {"alertname": "NodeDown"}},
        ],
    }
    t = time.monotonic()
    code, doc = post(api, payload)
    assert code == 202
    assert time.monotonic() - t < 1
    assert [a["status"] for a in doc["alerts"]] == ["accepted", "skipped", "skipped"]
    api.write([tcp4(A, B, sport=7777)], [time.time_ns()])  # inside the lookahead
    assert post(api, {"alerts": [alert]})[1]["alerts"][0]["status"] == "duplicate"
    deadline = time.monotonic() + 10
    kept: list[dict[str, object]] = []
    while time.monotonic() < deadline and not kept:
        time.sleep(0.2)
        kept = json.loads(api.get("/api/v1/pcap/kept")[1])["captures"]
    (k,) = kept
    assert k["pod"] == "default/a"
    assert k["alertname"] == "HighLatency"
    code, body, _ = api.get(f"/api/v1/pcap/kept/{k['name']}")
    assert code == 200
    got = frames_of(body, tmp_path)
    assert got == [
        tcp4(A, B),
        udp6(B, A),
        arp_request(A, B),
        arp_reply(B, A),
        tcp4(A, B, sport=7777),
    ]
    done = subprocess.run(
        ["tshark", "-r", str(tmp_path / "got.pcapng")], capture_output=True, text=True, check=True
    )
    assert len(done.stdout.splitlines()) == 5


def post(api: Api, payload: object) -> tuple[int, dict[str, list[dict[str, str]]]]:
    req = urllib.request.Request(  # noqa: S310 - loopback
        api.url("/api/v1/alerts"), data=json.dumps(payload).encode(), method="POST"
    )
    req.add_header("Authorization", f"Bearer {TOKEN}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=5) as r:  # noqa: S310 - loopback
        return r.status, json.loads(r.read())


def test_a_bad_webhook_body_is_400(api: Api) -> None:
    """A body that is not Alertmanager's JSON is a 400 naming the body."""
    req = urllib.request.Request(api.url("/api/v1/alerts"), data=b"not json", method="POST")  # noqa: S310 - loopback
    req.add_header("Authorization", f"Bearer {TOKEN}")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)  # noqa: S310 - loopback
    assert err.value.code == 400


def test_the_cli_gets_lists_and_is_refused_without_the_token(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`mirrorctl pcap get` writes the pod's pcapng, `pcap ls` lists the file and its pods (token
    from MIRRORSCOPE_TOKEN), and without a token the error says 401."""
    host, port = api.server.address
    server = f"http://{host}:{port}"
    out = tmp_path / "cli.pcapng"
    argv = ["pcap", "get", "--pod", "default/a", "--since", "1m", "-o", str(out)]
    assert main([*argv, "--server", server]) != 0
    assert "401" in capsys.readouterr().err
    monkeypatch.setenv("MIRRORSCOPE_TOKEN", TOKEN)
    assert main([*argv, "--server", server]) == 0
    assert len(frames_of(out.read_bytes(), tmp_path)) == 4
    assert main(["pcap", "ls", "--server", server]) == 0
    listing = capsys.readouterr().out
    assert "default/a,default/b,other/c" in listing
