"""The Helm chart and the plain manifests: rendered by Helm's own library, checked against schemas.

Kubernetes kinds are validated by kubernetes-validate (its bundled strict OpenAPI schemas, offline);
the ServiceMonitor and PrometheusRule against the Prometheus Operator's CRD schemas vendored in
tests/unit/schemas/prometheus-operator (from the npm package @kubernetes-models/prometheus-operator,
MIT), made strict here so that a misspelt field fails instead of being pruned by the API server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mirrorctl.cli import build_parser
from mirrorctl.cli._settings import apply_settings, commands, env_name

yaml = pytest.importorskip("yaml", reason="the dev extra (pyyaml) is not installed")
jsonschema = pytest.importorskip("jsonschema", reason="the dev extra (jsonschema) is not installed")
kv = pytest.importorskip("kubernetes_validate", reason="the dev extra (kubernetes-validate)")
helm = pytest.importorskip("helm_python", reason="the dev extra (helm-python-sdk) is not installed")

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "mirrorscope"
MANIFESTS = ROOT / "deploy" / "manifests"
SCHEMAS = Path(__file__).parent / "schemas" / "prometheus-operator"
KUBERNETES = "1.30.0"  # the oldest release the chart's kubeVersion admits that we check against
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule.json",
}
#: Kinds neither kubernetes-validate nor the vendored schemas cover (cert-manager's Certificate).
UNCHECKED = {("cert-manager.io/v1", "Certificate")}

VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "kube-ovn global mirroring": {"debug": {"ENABLE_MIRROR": True, "MIRROR_IFACE": "mirror1"}},
    "kube-rbac-proxy with cert-manager": {
        "rbacProxy": {"enabled": True},
        "tls": {"certManager": {"enabled": True, "issuerRef": {"name": "ca"}}},
    },
    "kube-rbac-proxy with a TLS secret": {
        "rbacProxy": {"enabled": True},
        "tls": {"secretName": "t"},
    },
    "HTTPS listener with cert-manager": {
        "tls": {"enabled": True, "certManager": {"enabled": True, "issuerRef": {"name": "ca"}}},
    },
    "no operator, no storage": {
        "serviceMonitor": {"enabled": False},
        "prometheusRule": {"enabled": False},
        "dashboard": {"enabled": False},
        "networkPolicy": {"enabled": False},
        "storage": {"pcap": {"enabled": False}, "records": {"enabled": False}},
        "token": {"existingSecret": "mine"},
        "extraEnv": {"MIRRORSCOPE_METRICS_TOP_K": "20"},
    },
}


def _strict(schema: Any) -> Any:
    """Object schemas that list their properties admit no others (kubectl --validate=strict)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out and out["properties"]:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def _crd_schema(name: str) -> dict[str, Any]:
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    # metadata is checked with Kubernetes' own ObjectMeta schema instead (see validate()).
    schema["properties"]["metadata"] = {"type": "object"}
    return dict(_strict(schema))


def validate(doc: dict[str, Any]) -> None:
    """Raise on any schema violation of one Kubernetes object."""
    key = (doc["apiVersion"], doc["kind"])
    if key in CRD_SCHEMAS:
        jsonschema.validate(doc, _crd_schema(CRD_SCHEMAS[key]))
        probe = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc["metadata"]}
        kv.validate(probe, KUBERNETES, strict=True)
        return
    if key in UNCHECKED:
        return
    kv.validate(doc, KUBERNETES, strict=True)


def docs_of(text: str) -> Iterator[dict[str, Any]]:
    yield from (d for d in yaml.safe_load_all(text) if d)


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    chart = helm.Chart.load(CHART)
    out = chart.render(values, name="mirrorscope", namespace="observability", is_install=True)
    return [d for text in out.values() for d in docs_of(text)]


def test_plain_manifests_pass_the_kubernetes_and_operator_schemas() -> None:
    """Every object in deploy/manifests/*.yaml validates strictly; all the kinds are there."""
    kinds = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for doc in docs_of(path.read_text(encoding="utf-8")):
            validate(doc)
            kinds.append(doc["kind"])
    assert set(kinds) >= {
        "Namespace", "DaemonSet", "Service", "ServiceAccount", "ServiceMonitor",
        "PrometheusRule", "ConfigMap", "NetworkPolicy",
    }  # fmt: skip


def test_plain_manifests_are_the_chart_rendered() -> None:
    """deploy/manifests is what scripts/render_manifests.py makes of the chart today."""
    from scripts.render_manifests import render as render_manifests  # noqa: PLC0415

    expected = render_manifests()
    found = {p.name: p.read_text(encoding="utf-8") for p in MANIFESTS.glob("*.yaml")}
    assert found == expected, "run: python scripts/render_manifests.py"


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_the_rendered_chart_passes_the_schemas(values: dict[str, Any]) -> None:
    """Helm's library renders the chart for each value set and each object validates strictly."""
    docs = render(values)
    for doc in docs:
        validate(doc)
    assert sum(d["kind"] == "DaemonSet" for d in docs) == 1


def _daemonset(values: dict[str, Any]) -> dict[str, Any]:
    return next(d for d in render(values) if d["kind"] == "DaemonSet")


def _env(values: dict[str, Any]) -> dict[str, str]:
    container = _daemonset(values)["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def test_kube_ovn_mirror_values_choose_global_or_following() -> None:
    """ENABLE_MIRROR on: we keep a global mirror; off (Kube-OVN's default): we follow m0."""
    assert _env({})["MIRRORSCOPE_KEEP_MIRROR"] == "follow-kube-ovn"
    assert _env({})["MIRRORSCOPE_IFACE"] == "mirror0"
    on = _env({"debug": {"ENABLE_MIRROR": True, "MIRROR_IFACE": "mirror1"}})
    assert (on["MIRRORSCOPE_KEEP_MIRROR"], on["MIRRORSCOPE_IFACE"]) == ("global", "mirror1")


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_the_daemonsets_environment_is_what_capture_run_parses(values: dict[str, Any]) -> None:
    """Every MIRRORSCOPE_ variable the chart sets names a flag, and the container's args parse."""
    pod = _daemonset(values)["spec"]["template"]["spec"]
    env = _env(values)
    parser = build_parser()
    run = dict(commands(parser))[("capture", "run")]
    flags = {env_name(a) for a in run._actions} | {env_name(a) for a in parser._actions}
    assert {k for k in env if k.startswith("MIRRORSCOPE_")} <= flags
    known = {k: v for k, v in env.items() if k in flags}
    argv = pod["containers"][0]["args"]
    apply_settings(parser, known, None, tuple(argv))
    args = parser.parse_args(argv)
    assert args.keep_mirror == env["MIRRORSCOPE_KEEP_MIRROR"]
    assert args.listen == env["MIRRORSCOPE_LISTEN"]
    # numba's kernels are cached on the node's persistent data volume, not compiled at each start
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert env["NUMBA_CACHE_DIR"].startswith("/var/lib/mirrorscope/")
    assert not mounts["/var/lib/mirrorscope"].get("readOnly", False)
    assert pod["hostNetwork"] is True


def test_probes_and_ports_follow_the_proxy() -> None:
    """Open: probes on the listener; behind kube-rbac-proxy: the listener is loopback-only."""
    plain = _daemonset({})["spec"]["template"]["spec"]["containers"]
    assert plain[0]["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert plain[0]["livenessProbe"]["httpGet"]["path"] == "/healthz"
    proxied = _daemonset({"rbacProxy": {"enabled": True}})["spec"]["template"]["spec"]
    main, proxy = proxied["containers"]
    assert "readinessProbe" not in main
    assert proxy["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert "--ignore-paths=/healthz,/readyz" in proxy["args"]
    assert _env({"rbacProxy": {"enabled": True}})["MIRRORSCOPE_LISTEN"].startswith("127.0.0.1:")
    kinds = {d["kind"] for d in render({"rbacProxy": {"enabled": True}})}
    assert {"ClusterRole", "ClusterRoleBinding"} <= kinds


def test_tls_without_the_proxy_makes_the_listener_https() -> None:
    """tls.enabled without kube-rbac-proxy: the Secret is mounted, its files passed as
    --tls-cert/--tls-key, probes and the ServiceMonitor speak HTTPS, the token still applies."""
    values = {"tls": {"enabled": True, "secretName": "mine"}}
    env = _env(values)
    assert env["MIRRORSCOPE_TLS_CERT"] == "/etc/mirrorscope/tls/tls.crt"
    assert env["MIRRORSCOPE_TLS_KEY"] == "/etc/mirrorscope/tls/tls.key"
    assert "MIRRORSCOPE_TOKEN_FILE" in env
    pod = _daemonset(values)["spec"]["template"]["spec"]
    main = pod["containers"][0]
    assert main["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert {"name": "tls", "mountPath": "/etc/mirrorscope/tls", "readOnly": True} in main[
        "volumeMounts"
    ]
    assert any(v.get("secret", {}).get("secretName") == "mine" for v in pod["volumes"])
    monitor = next(d for d in render(values) if d["kind"] == "ServiceMonitor")
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["scheme"] == "https"
    assert "bearerTokenFile" not in endpoint
    assert "MIRRORSCOPE_TLS_CERT" not in _env({})
    assert (
        _daemonset({})["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"][
            "scheme"
        ]
        == "HTTP"
    )


def test_the_charts_dashboard_is_the_packages() -> None:
    """The ConfigMap for Grafana's sidecar carries exactly exporters/dashboards/mirrorscope.json."""
    package = json.loads((ROOT / "exporters/dashboards/mirrorscope.json").read_text("utf-8"))
    cm = next(
        d for d in render({}) if d["kind"] == "ConfigMap" and "dashboard" in d["metadata"]["name"]
    )
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["mirrorscope.json"]) == package


def test_prometheus_rules_pass_promtool(tmp_path: Path) -> None:
    """The alert expressions parse and the rule file is valid for Prometheus itself."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool missing: install Debian's prometheus package (scripts/bootstrap.sh)")
    rule = next(d for d in render({}) if d["kind"] == "PrometheusRule")
    exprs = " ".join(r["expr"] for g in rule["spec"]["groups"] for r in g["rules"])
    for metric in (
        "mirrorscope_capture_kernel_dropped_packets_total",
        "mirrorscope_capture_coverage_ratio",
        "mirrorscope_notices_total",
        "mirrorscope_pcap_store_full",
    ):
        assert metric in exprs
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(rule["spec"]), encoding="utf-8")
    done = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=30,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
