"""`kubectl mirrorscope` against a stand-in API server: no cluster is available here, so a real
local HTTP server plays the API server's part the plugin uses (listing pods by label selector,
reading a Secret, the pod proxy), its pods built from the rendered manifests' DaemonSet. What
is tested: the chart's labels select the agents, the kubeconfig is read through kubectl, the
user's token goes to the API server and the agents' token beside it, and the agents' pcaps are
merged with a node per interface. Not tested: a real API server's RBAC and proxy."""

from __future__ import annotations

import base64
import copy
import json
import shutil
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from capture import read_pcapng_stream
from exporters._pcapngout import pcapng_chunks
from mirrorctl.cli import kubectl_main
from mirrorctl.kube import SELECTOR
from tests.unit._agents import PODS, frame
from tests.unit.test_notice_read import NOTICES
from tests.unit.test_report import records
from tests.unit.test_web_flows import _stored

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")

ROOT = Path(__file__).resolve().parents[2]
USER_TOKEN = "kube-user-token"  # noqa: S105 - a test fixture
AGENT_TOKEN = "agent-token"  # noqa: S105 - a test fixture
T0 = 1_800_000_000_000_000_000


def daemonset() -> dict[str, Any]:
    docs = yaml.safe_load_all((ROOT / "deploy" / "manifests" / "daemonset.yaml").read_text())
    return next(d for d in docs if d and d["kind"] == "DaemonSet")


def pods() -> list[dict[str, Any]]:
    """Two running agents (node-a, node-b) as the DaemonSet makes them, a pending one, and a
    pod of another app in the same namespace."""
    ds = daemonset()
    out = []
    for name, node, phase in (("ms-aaaaa", "node-a", "Running"), ("ms-bbbbb", "node-b", "Running"),
                              ("ms-ccccc", "node-c", "Pending")):  # fmt: skip
        tpl = copy.deepcopy(ds["spec"]["template"])
        tpl["metadata"].update(name=name, namespace=ds["metadata"]["namespace"])
        tpl["spec"]["nodeName"] = node
        out.append({**tpl, "status": {"phase": phase}})
    other = copy.deepcopy(out[0])
    other["metadata"].update(name="other", labels={"app": "other"})
    return [*out, other]


def matches(labels: dict[str, str], selector: str) -> bool:
    return all(labels.get(k) == v for k, _, v in (p.partition("=") for p in selector.split(",")))


class FakeApi(BaseHTTPRequestHandler):
    """Pods by labelSelector, the token Secret, and the pod proxy to stand-in agents; every
    request must carry the user's bearer token (401 otherwise), as RBAC would demand."""

    protocol_version = "HTTP/1.1"
    seen: list[dict[str, str]]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.seen.append(dict(self.headers.items()))  # type: ignore[attr-defined]
        if self.headers.get("Authorization") != f"Bearer {USER_TOKEN}":
            self.reply(401, b'{"message": "Unauthorized"}')
            return
        url = urllib.parse.urlsplit(self.path)
        ns = daemonset()["metadata"]["namespace"]
        if url.path.endswith("/pods") and url.path.count("/") == 5:
            sel = urllib.parse.parse_qs(url.query)["labelSelector"][0]
            items = [p for p in pods() if matches(p["metadata"]["labels"], sel)
                     and url.path == f"/api/v1/namespaces/{ns}/pods"]  # fmt: skip
            self.reply(200, json.dumps({"kind": "PodList", "items": items}).encode())
        elif url.path == f"/api/v1/namespaces/{ns}/secrets/mirrorscope-token":
            data = {"token": base64.b64encode(AGENT_TOKEN.encode()).decode()}
            self.reply(200, json.dumps({"kind": "Secret", "data": data}).encode())
        elif url.path.startswith(f"/api/v1/namespaces/{ns}/pods/http:"):
            self.proxy(url.path.split("/pods/http:", 1)[1])
        else:
            self.reply(404, b'{"message": "not found"}')

    def proxy(self, rest: str) -> None:
        """The agent behind the proxy; the API server strips Authorization on the way."""
        pod, _, path = rest.partition("/proxy")
        name, port = pod.split(":")
        node = {"ms-aaaaa": "node-a", "ms-bbbbb": "node-b"}[name]
        if port != "10097" or self.headers.get("X-Mirrorscope-Token") != AGENT_TOKEN:
            self.reply(401, b'{"detail": "wrong bearer token"}')
        elif path == "/api/v1/status":
            doc = {"node": node, "ready": True, "uptime_s": 5.0,
                   "capture": {"received": 7, "kernel_dropped": 0}}  # fmt: skip
            self.reply(200, json.dumps(doc).encode())
        elif path == "/api/v1/notices":
            doc = {"notices": [dict(n.as_dict(), node=node) for n in NOTICES]}
            self.reply(200, json.dumps(doc).encode())
        elif path == "/api/v1/flows":
            self.reply(200, self.server.flows, "application/x-ndjson")  # type: ignore[attr-defined]
        elif path == "/api/v1/pcap":
            offset = 0 if node == "node-a" else 5
            frames = [frame(node, T0 + i * 10 + offset) for i in range(6)]
            body = b"".join(pcapng_chunks(frames, pod_of=PODS.get))
            self.reply(200, body, "application/x-pcapng")
        else:
            self.reply(404, b'{"detail": "no such path"}')


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[ThreadingHTTPServer, Path]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    server.seen = []  # type: ignore[attr-defined]
    server.flows = b"".join(p.read_bytes() for p in _stored(tmp_path / "records").glob("*.jsonl"))  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": f"http://{host!s}:{port}"}}],
        "users": [{"name": "me", "user": {"token": USER_TOKEN}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "me"}}],
    }))  # fmt: skip
    yield server, config
    server.shutdown()
    server.server_close()


def test_the_plugins_selector_is_the_charts_pod_labels() -> None:
    """The DaemonSet's pod labels (rendered manifests) satisfy the selector the plugin lists by."""
    labels = daemonset()["spec"]["template"]["metadata"]["labels"]
    assert matches(labels, SELECTOR)
    assert matches(daemonset()["spec"]["selector"]["matchLabels"], SELECTOR)


def test_pcap_get_merges_every_running_agent_through_the_api_servers_proxy(
    api: tuple[ThreadingHTTPServer, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kubectl mirrorscope pcap get --pod P`: both running agents (not the pending one, not
    the other app) are asked through /pods/http:NAME:10097/proxy with the user's token, the
    agents' token read from their Secret beside it; one pcapng, node-a and node-b interleaved
    in time order."""
    monkeypatch.delenv("MIRRORSCOPE_TOKEN", raising=False)
    server, config = api
    out = tmp_path / "cluster.pcapng"
    rc = kubectl_main(["--kubeconfig", str(config), "-n", "mirrorscope", "pcap", "get",
                       "--pod", "default/web-0", "-o", str(out)])  # fmt: skip
    assert rc == 0
    with out.open("rb") as f:
        got = list(read_pcapng_stream(f.read))
    assert len(got) == 12
    assert [p.ts_ns for p in got] == sorted(p.ts_ns for p in got)
    assert [p.interface.name for p in got[:4]] == ["node-a", "node-b", "node-a", "node-b"]
    # kubectl's dispatcher may probe the server's version unauthenticated: not the plugin's.
    seen = [h for h in server.seen if not h.get("User-Agent", "").startswith("kubectl")]  # type: ignore[attr-defined]
    assert [h.get("Authorization") for h in seen] == [f"Bearer {USER_TOKEN}"] * len(seen), seen


def test_status_lists_each_node_and_a_wrong_agent_token_is_named(
    api: tuple[ThreadingHTTPServer, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`kubectl mirrorscope status`: a line per node; with a wrong MIRRORSCOPE_TOKEN each agent
    is named with the 401 and the exit status is 3."""
    _, config = api
    monkeypatch.setenv("MIRRORSCOPE_TOKEN", AGENT_TOKEN)
    assert kubectl_main(["--kubeconfig", str(config), "status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:] == ["node-a\tTrue\t5.0\t7\t0", "node-b\tTrue\t5.0\t7\t0"]
    monkeypatch.setenv("MIRRORSCOPE_TOKEN", "wrong")
    assert kubectl_main(["--kubeconfig", str(config), "status"]) == 3
    assert "node-a\tNO ANSWER: 401 wrong bearer token" in capsys.readouterr().out


def test_a_namespace_without_agents_says_where_to_look(
    api: tuple[ThreadingHTTPServer, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """-n with no agent pods: exit 1 and a message naming the namespace and selector."""
    _, config = api
    assert kubectl_main(["--kubeconfig", str(config), "-n", "elsewhere", "status"]) == 1
    assert "no running mirrorscope pod in namespace elsewhere" in capsys.readouterr().err


def test_report_over_every_agent_through_the_proxy_is_the_union(
    api: tuple[ThreadingHTTPServer, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`kubectl mirrorscope report`: each running agent's flows are fetched through the pod
    proxy with the user's token to the API server and the agents' token in X-Mirrorscope-Token
    (the proxy strips Authorization); the report counts both nodes' flows, twice one node's,
    and lists both nodes' notices."""
    monkeypatch.setenv("MIRRORSCOPE_TOKEN", AGENT_TOKEN)
    server, config = api
    server.seen.clear()  # type: ignore[attr-defined]
    rc = kubectl_main(["--kubeconfig", str(config), "report", "--start", "0",
                       "--format", "json"])  # fmt: skip
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["records"] == 2 * len(records())
    assert doc["source"] == "servers node-a, node-b"
    proxied = [h for h in server.seen if h.get("X-Mirrorscope-Token")]  # type: ignore[attr-defined]
    assert len(proxied) == 4  # flows and notices of each node
    assert len(doc["notices"]) == 2 * len(NOTICES)
    assert {n["node"] for n in doc["notices"]} == {"node-a", "node-b"}
    assert doc["notice_counts"][0] == {"note": "port_scan", "source": "shop/scanner", "notices": 4}
    assert all(h["Authorization"] == f"Bearer {USER_TOKEN}" for h in proxied)

    monkeypatch.setenv("MIRRORSCOPE_TOKEN", "wrong")
    assert kubectl_main(["--kubeconfig", str(config), "report", "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert "server node-a did not answer: HTTP 401" in captured.err
    assert json.loads(captured.out)["records"] == 0
