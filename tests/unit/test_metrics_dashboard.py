"""The Grafana dashboard: valid JSON; every query parses as PromQL and names exported families."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from tests.unit.test_metrics_promtool import full_exposition

DASHBOARD = Path(__file__).parents[2] / "exporters" / "dashboards" / "mirrorscope.json"


def dashboard_queries() -> list[str]:
    """Every panel expression, with Grafana's variables replaced by what Grafana would send."""
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    subst = {"$__rate_interval": "1m", "$node": ".*", "$namespace": ".*", "$pod": ".*"}
    out = []
    for expr in exprs:
        text = expr
        for k, v in subst.items():
            text = text.replace(k, v)
        out.append(text)
    return out


def test_dashboard_covers_the_five_sections() -> None:
    """The dashboard has rows for traffic, top talkers, TCP, DNS and capture health."""
    dash = json.loads(DASHBOARD.read_text())
    rows = [p["title"] for p in dash["panels"] if p["type"] == "row"]
    assert rows == [
        "Per-pod traffic",
        "Top talkers",
        "TCP health",
        "DNS",
        "Capture health and coverage",
    ]
    assert dash["uid"] == "mirrorscope"


def test_every_query_names_a_family_the_exporter_serves() -> None:
    """No panel queries a metric name that is missing from a full exposition."""
    served = set(re.findall(rb"^(mirrorscope_\w+)", full_exposition(), re.M))
    names = {n.encode() for q in dashboard_queries() for n in re.findall(r"mirrorscope_\w+", q)}
    assert names
    assert names <= served, names - served


def test_every_query_parses_as_promql(tmp_path: Path) -> None:
    """promtool accepts every panel expression (wrapped as recording rules)."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: install Debian's prometheus package"
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:q{i}", "expr": q}
                    for i, q in enumerate(dashboard_queries())
                ],
            }
        ]
    }
    path = tmp_path / "rules.yml"
    path.write_text(json.dumps(rules))  # JSON is YAML
    out = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, timeout=30, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
