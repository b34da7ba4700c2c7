"""The mirroring benchmark's tables: seed layout, changes against off, the seed's change beside."""

from __future__ import annotations

import csv
import io

import pytest

from mirrorctl.bench import Result
from mirrorctl.bench import _table as table

SEED_NAMES = {"pod-pod same node": "pod-pod same node"}


def samples() -> dict[tuple[str, str, str, str], list[float]]:
    s = "pod-pod same node"
    return {
        (s, "off", "4k", "tcp_bandwidth"): [8.0e9, 8.5e9, 9.0e9],
        (s, "on", "4k", "tcp_bandwidth"): [7.0e9, 7.65e9, 8.0e9],
        (s, "on+analysis", "4k", "tcp_bandwidth"): [6.0e9, 6.885e9, 7.0e9],
        (s, "off", "4k", "udp_lost_rate"): [1.0, 1.3, 2.0],
        (s, "on", "4k", "udp_lost_rate"): [0.2, 0.4, 0.5],
        (s, "on", "4k", "tcp_latency"): [17.0, 18.0, 19.0],
        (s, "on+analysis", "4k", "tcp_latency"): [18.0, 19.8, 30.0],
    }


def cells() -> dict[table.Key, table.Cell]:
    return table.cells(samples(), table.NETPERF, table.load_seed("netperf"), SEED_NAMES)


def test_change_is_relative_to_off_and_seed_change_sits_on_the_on_row() -> None:
    """Medians compared with off's median; the seed's on-vs-off change only on the 'on' row."""
    got = cells()
    on = got[("pod-pod same node", "on", "4k", "tcp_bandwidth")]
    assert on.spread == table.Spread(7.0e9, 7.65e9, 8.0e9)
    assert on.change == pytest.approx(-10.0)
    assert on.seed_change == pytest.approx((7.67 / 8.52 - 1) * 100)  # the seed's headline -10 %
    ana = got[("pod-pod same node", "on+analysis", "4k", "tcp_bandwidth")]
    assert ana.change == pytest.approx(-19.0)
    assert ana.seed_change is None
    assert got[("pod-pod same node", "off", "4k", "tcp_bandwidth")].change is None


def test_loss_changes_in_percentage_points() -> None:
    """Loss compares by difference (a 0 % off makes ratios meaningless): 1.3 -> 0.4 % is -0.9 pp."""
    loss = cells()[("pod-pod same node", "on", "4k", "udp_lost_rate")]
    assert loss.change == pytest.approx(-0.9)
    assert loss.seed_change == pytest.approx(0.41 - 1.3)
    assert table.fmt_change("udp_lost_rate", loss.change) == "-0.9 pp"


def test_csv_has_the_seed_columns_first_then_spread_and_changes() -> None:
    """CSV: scenario, mirror, size, the seed's metrics in its notation, then min/max/changes."""
    rows = list(csv.DictReader(io.StringIO(table.to_csv(cells(), table.NETPERF, "size"))))
    assert list(rows[0])[:8] == [
        "scenario", "mirror", "size", "tcp_latency", "tcp_bandwidth", "udp_latency",
        "udp_lost_rate", "udp_bandwidth",
    ]  # fmt: skip
    assert [r["mirror"] for r in rows] == ["off", "on", "on+analysis"]
    on = rows[1]
    assert on["tcp_bandwidth"] == "7.65 Gbits/sec"
    assert on["tcp_bandwidth_min"] == "7 Gbits/sec"
    assert on["tcp_bandwidth_change"] == "-10.0 %"
    assert on["tcp_bandwidth_seed_change"] == "-10.0 %"
    assert on["tcp_latency"] == "18 us"
    assert on["tcp_latency_change"] == ""  # no off sample for latency here


def test_markdown_gives_each_scenario_its_table_with_spread() -> None:
    """One Markdown table per scenario; a cell reads 'median [min–max]'."""
    text = table.to_markdown(cells(), table.NETPERF, "size")
    assert text.startswith("**pod-pod same node**")
    assert "| 4k | on | 18 us [17 us–19 us] |" in text
    assert "7.65 Gbits/sec [7 Gbits/sec–8 Gbits/sec] | -10.0 % | -10.0 % |" in text


def test_analysis_cost_is_a_ratio_of_medians_with_its_spread() -> None:
    """on+analysis over on: bandwidth 0.9, latency 1.1 are inside the 10 % target."""
    lines = table.analysis_cost(samples())
    assert lines[2] == "| pod-pod same node | 4k | 0.900 [0.75–1.00] | 1.100 [0.95–1.76] | yes |"


def test_seed_tables_load_every_published_cell() -> None:
    """Both seed files load: 60 netperf rows x 5 metrics, 12 QPS rows x 4 metrics."""
    assert len(table.load_seed("netperf")) == 60 * 5
    qps = table.load_seed("qps")
    assert len(qps) == 12 * 4
    assert qps[("pod to cluster ip service", "on", "10", "avg_resp_time")] == 870.0


def test_latency_and_time_formats_follow_the_seed() -> None:
    """Seed notation: 3 significant digits in us, whole us past 1000, ms for response times."""
    assert table.fmt("tcp_latency", 12.74) == "12.7 us"
    assert table.fmt("tcp_latency", 1362.2) == "1362 us"
    assert table.fmt("udp_bandwidth", 77.9e6) == "77.9 Mbits/sec"
    assert table.fmt("avg_resp_time", 870.0) == "870.00us"
    assert table.fmt("max_resp_time", 24460.0) == "24.46ms"


def test_cpu_rows_show_both_nodes_and_a_dash_without_service() -> None:
    """CPU per mode: ovs-vswitchd per node, the service per node or '–' when none ran."""
    rows = [
        table.CpuRow("off", 60.0, [25.04, 6.0], []),
        table.CpuRow("on+analysis", 61, [20, 7], [7.25, 4]),
    ]
    lines = table.cpu_table(rows)
    assert lines[2] == "| off | 60 | 25.0 % | 6.0 % | – | – |"
    assert lines[3] == "| on+analysis | 61 | 20.0 % | 7.0 % | 7.2 % | 4.0 % |"


def test_result_round_trips_through_json() -> None:
    """samples.json holds everything the tables need: a result read back equals the one written."""
    res = Result(samples=samples(), cpu=[table.CpuRow("on", 1.5, [1.0, 2.0], [])],
                 seed_names=SEED_NAMES, notes=["n"])  # fmt: skip
    assert Result.from_json(res.to_json()) == res
