"""The benchmark's tables in the seed's layout: medians with their spread, change against "off"
beside the seed's published change, the cost of analysis over mirroring alone, CPU per mode.

Pure functions of the samples, so the layout is unit-tested without a lab.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

from mirrorctl.bench._parse import seed_value

MODES = ("off", "on", "on+analysis")
NETPERF = ("tcp_latency", "tcp_bandwidth", "udp_latency", "udp_lost_rate", "udp_bandwidth")
QPS = ("qps", "avg_resp_time", "stdev_resp_time", "max_resp_time")
_TITLES = {
    "tcp_latency": "TCP lat",
    "tcp_bandwidth": "TCP bw",
    "udp_latency": "UDP lat",
    "udp_lost_rate": "UDP loss",
    "udp_bandwidth": "UDP bw",
    "qps": "QPS",
    "avg_resp_time": "avg",
    "stdev_resp_time": "stdev",
    "max_resp_time": "max",
}
ANALYSIS_TARGET = 0.10  # analysis may cost at most 10 % of TCP bandwidth and latency

# (scenario, mode, size or connections, metric) -> one value per repeat
Key = tuple[str, str, str, str]
Samples = Mapping[Key, Sequence[float]]


@dataclass(frozen=True, slots=True)
class Spread:
    low: float
    median: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(min(values), statistics.median(values), max(values))


@dataclass(frozen=True, slots=True)
class CpuRow:
    """CPU per mode over its whole run, % of one core."""

    mode: str
    seconds: float
    vswitchd_pct: Sequence[float]  # one per node
    service_pct: Sequence[float]  # one per node; empty when no service ran


def fmt(metric: str, value: float) -> str:
    """A value in the seed's notation: "12.7 us", "1.64 Gbits/sec", "1.8%", "0.87ms"."""
    if metric.endswith("_latency"):
        return f"{value:.3g} us" if value < 1000 else f"{value:.0f} us"
    if metric.endswith("_bandwidth"):
        for scale, unit in ((1e9, "Gbits/sec"), (1e6, "Mbits/sec"), (1e3, "Kbits/sec")):
            if value >= scale:
                return f"{value / scale:.3g} {unit}"
        return f"{value:.3g} bits/sec"
    if metric == "udp_lost_rate":
        return f"{value:.2g}%"
    if metric == "qps":
        return f"{value:.2f}"
    return f"{value / 1000:.2f}ms" if value >= 1000 else f"{value:.2f}us"


def change(metric: str, value: float, base: float) -> float | None:
    """Relative change in %, or for loss the difference in percentage points; None if undefined."""
    if metric == "udp_lost_rate":
        return value - base
    return (value / base - 1.0) * 100.0 if base else None


def fmt_change(metric: str, delta: float | None) -> str:
    if delta is None:
        return ""
    return f"{delta:+.1f} pp" if metric == "udp_lost_rate" else f"{delta:+.1f} %"


def load_seed(kind: str) -> dict[tuple[str, str, str, str], float]:
    """The published figures, keyed like our samples: (seed scenario, on/off, size, metric)."""
    text = resources.files("mirrorctl.bench").joinpath(f"seed-{kind}.csv").read_text()
    metrics = NETPERF if kind == "netperf" else QPS
    column = "size" if kind == "netperf" else "tcp_connections"
    out: dict[tuple[str, str, str, str], float] = {}
    for row in csv.DictReader(io.StringIO(text)):
        for metric in metrics:
            out[(row["scenario"], row["mirror"], row[column], metric)] = seed_value(row[metric])
    return out


@dataclass(frozen=True, slots=True)
class Cell:
    spread: Spread
    change: float | None  # against off, same scenario and point
    seed_change: float | None  # the seed's on vs off, same point


def cells(
    samples: Samples,
    metrics: Sequence[str],
    seed: Mapping[tuple[str, str, str, str], float],
    seed_names: Mapping[str, str],
) -> dict[Key, Cell]:
    """Every measured (scenario, mode, point, metric) with its spread and changes."""
    out: dict[Key, Cell] = {}
    for (scenario, mode, point, metric), values in samples.items():
        if metric not in metrics or not values:
            continue
        spread = Spread.of(values)
        base = samples.get((scenario, "off", point, metric))
        delta = None
        if mode != "off" and base:
            delta = change(metric, spread.median, Spread.of(base).median)
        seed_delta = None
        name = seed_names.get(scenario)
        if mode == "on" and name is not None:
            on, off = seed.get((name, "on", point, metric)), seed.get((name, "off", point, metric))
            if on is not None and off is not None:
                seed_delta = change(metric, on, off)
        out[(scenario, mode, point, metric)] = Cell(spread, delta, seed_delta)
    return out


def _order(keys: Iterable[Key]) -> list[tuple[str, str, str]]:
    seen: dict[tuple[str, str, str], None] = {}
    for scenario, mode, point, _ in keys:
        seen[(scenario, mode, point)] = None
    scenarios = list(dict.fromkeys(s for s, _, _ in seen))
    points = list(dict.fromkeys(p for _, _, p in seen))
    return [(s, m, p) for s in scenarios for p in points for m in MODES if (s, m, p) in seen]


def to_csv(table: Mapping[Key, Cell], metrics: Sequence[str], point_column: str) -> str:
    """The seed's columns (median in the seed's notation), then min, max and both changes."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    extra = [f"{m}_{s}" for m in metrics for s in ("min", "max", "change", "seed_change")]
    writer.writerow(["scenario", "mirror", point_column, *metrics, *extra])
    for scenario, mode, point in _order(table):
        got = [table.get((scenario, mode, point, m)) for m in metrics]
        row = [scenario, mode, point]
        row += [fmt(m, c.spread.median) if c else "" for m, c in zip(metrics, got, strict=True)]
        for m, c in zip(metrics, got, strict=True):
            if c is None:
                row += ["", "", "", ""]
                continue
            row += [fmt(m, c.spread.low), fmt(m, c.spread.high)]
            row += [fmt_change(m, c.change), fmt_change(m, c.seed_change)]
        writer.writerow(row)
    return out.getvalue()


def to_markdown(table: Mapping[Key, Cell], metrics: Sequence[str], point_column: str) -> str:
    """One table per scenario: median [min–max], change vs off, the seed's change (on rows)."""
    lines: list[str] = []
    rows = _order(table)
    for scenario in dict.fromkeys(s for s, _, _ in rows):
        lines += [f"**{scenario}**", ""]
        head = [point_column, "mirror"]
        for m in metrics:
            head += [_TITLES[m], "Δ", "seed Δ"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for s, mode, point in rows:
            if s != scenario:
                continue
            cols = [point, mode]
            for m in metrics:
                c = table.get((s, mode, point, m))
                if c is None:
                    cols += ["", "", ""]
                    continue
                lo, mid, hi = c.spread.low, c.spread.median, c.spread.high
                cols.append(f"{fmt(m, mid)} [{fmt(m, lo)}–{fmt(m, hi)}]")
                cols += [fmt_change(m, c.change), fmt_change(m, c.seed_change)]
            lines.append("| " + " | ".join(cols) + " |")
        lines.append("")
    return "\n".join(lines)


def analysis_cost(samples: Samples) -> list[str]:
    """Markdown rows: on+analysis over on, ratio of medians and its spread, for TCP bw and lat."""
    lines = [
        "| scenario | size | TCP bw ratio [spread] | TCP lat ratio [spread] | within 10 % |",
        "|---|---|---|---|---|",
    ]
    points = dict.fromkeys((s, p) for s, _, p, _ in samples)
    for scenario, point in points:
        ratios: list[str] = []
        ok = True
        found = False
        for metric in ("tcp_bandwidth", "tcp_latency"):
            on = samples.get((scenario, "on", point, metric))
            ana = samples.get((scenario, "on+analysis", point, metric))
            if not on or not ana:
                ratios.append("")
                continue
            found = True
            a, b = Spread.of(ana), Spread.of(on)
            ratio = a.median / b.median
            ratios.append(f"{ratio:.3f} [{a.low / b.high:.2f}–{a.high / b.low:.2f}]")
            ok &= abs(ratio - 1.0) <= ANALYSIS_TARGET + 1e-9  # 19.8 / 18 is 1.1 + 1 ulp
        if found:
            lines.append(
                f"| {scenario} | {point} | {ratios[0]} | {ratios[1]} | {'yes' if ok else 'no'} |"
            )
    return lines


def cpu_table(rows: Sequence[CpuRow]) -> list[str]:
    """Markdown rows: CPU of ovs-vswitchd per node and of the capture service per node."""
    lines = [
        "| mode | seconds | ovs-vswitchd node1 | ovs-vswitchd node2 | service node1 "
        "| service node2 |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        vs = [f"{p:.1f} %" for p in row.vswitchd_pct] + [""] * (2 - len(row.vswitchd_pct))
        sv = [f"{p:.1f} %" for p in row.service_pct] + ["–"] * (2 - len(row.service_pct))
        lines.append(f"| {row.mode} | {row.seconds:.0f} | {' | '.join(vs)} | {' | '.join(sv)} |")
    return lines
