"""`mirrorctl report --server` against a running service on lab traffic: per-pod totals agree with
the service's own Prometheus counters over the same window."""

from __future__ import annotations

import re
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest

from mirrorctl.cli import main
from tests.functional._flowtruth import run_traffic
from tests.functional._service import Service
from tests.functional.conftest import LabFactory

_POD_BYTES = re.compile(
    r'^mirrorscope_pod_bytes_total\{(?=[^}]*namespace="([^"]*)")(?=[^}]*pod="([^"]*)")'
    r'(?=[^}]*direction="(tx|rx)")[^}]*\} (\S+)$',
    re.MULTILINE,
)


def pod_bytes(exposition: str) -> dict[tuple[str, str, str], float]:
    """(namespace, pod, direction) -> mirrorscope_pod_bytes_total."""
    out: dict[tuple[str, str, str], float] = defaultdict(float)
    for ns, pod, direction, value in _POD_BYTES.findall(exposition):
        out[(ns, pod, direction)] += float(value)
    return out


@pytest.mark.parametrize("workers", [1, 2])
def test_report_server_totals_agree_with_prometheus_within_1_percent(
    lab_factory: LabFactory, tmp_path: Path, workers: int
) -> None:
    """Per pod, tx/rx bytes of `report --server` over the traffic's window are within 1 % of the
    service's mirrorscope_pod_bytes_total deltas over it (records that ended plus active flows),
    with one worker and from the --workers parent's merged view."""
    state = lab_factory(pods=4)
    assert main(["enable", "--global", "--ovsdb", state.ovsdb, "--netns", state.node_netns]) == 0
    service = Service(state, tmp_path / "records", "--workers", str(workers))
    try:
        code, before_text = service.get("/metrics")
        assert code == 200
        before = pod_bytes(before_text)
        start = time.time()
        run_traffic(state)
        time.sleep(2.0)  # the last packets through the ring and into the table
        code, after_text = service.get("/metrics")
        end = time.time()
        after = pod_bytes(after_text)
        csv = tmp_path / "pods.csv"
        rc = main(
            ["report", "--server", service.url, "--start", f"{start:.3f}",
             "--end", f"{end:.3f}", "--format", "csv", "-o", str(csv)]
        )  # fmt: skip
        assert rc == 0
    finally:
        service.terminate()
        main(["disable", "--global", "--ovsdb", state.ovsdb, "--netns", state.node_netns])
    ours = pd.read_csv(csv, keep_default_na=False).set_index(["namespace", "pod"])
    checked = 0
    for (ns, pod, direction), value in after.items():
        delta = value - before.get((ns, pod, direction), 0.0)
        if delta < 10_000:  # background chatter (ND, DNS retries) of an idle pod: not a ratio
            continue
        got = float(ours.loc[(ns, pod), f"{direction}_bytes"])
        assert abs(got - delta) <= 0.01 * delta, f"{ns}/{pod} {direction}: {got} vs {delta}"
        checked += 1
    assert checked >= 4
