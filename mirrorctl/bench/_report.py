"""Writing a run's tables: netperf and QPS as Markdown and CSV, and one report.md with the
machine, its load, the cost of analysis and CPU per mode."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

from mirrorctl.bench import _table
from mirrorctl.bench._run import Config, Result


def machine() -> str:
    """CPU model, cores, kernel and Open vSwitch version of this machine."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        ovs = subprocess.run(
            ["ovs-vswitchd", "--version"], capture_output=True, text=True, check=False
        ).stdout.splitlines()[0]
    except (OSError, IndexError):
        ovs = "ovs-vswitchd unknown"
    return (
        f"{model}, {os.cpu_count()} cores, Linux {platform.release()}, {ovs} (userspace datapath)"
    )


def load() -> str:
    """This machine's load average over 1, 5 and 15 minutes, as the report prints it."""
    return "load average " + " / ".join(f"{v:.2f}" for v in os.getloadavg())


def write(res: Result, cfg: Config, started: float, load_before: str) -> str:
    """Write the CSV and Markdown files under ``cfg.out``; return report.md's text."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "samples.json").write_text(res.to_json())
    sections: list[str] = []
    for kind, metrics, column in (
        ("netperf", _table.NETPERF, "size"),
        ("qps", _table.QPS, "tcp_connections"),
    ):
        cells = _table.cells(res.samples, metrics, _table.load_seed(kind), res.seed_names)
        if not cells:
            continue
        (cfg.out / f"{kind}.csv").write_text(_table.to_csv(cells, metrics, column))
        markdown = _table.to_markdown(cells, metrics, column)
        (cfg.out / f"{kind}.md").write_text(markdown)
        sections.append(markdown)
    wall = time.monotonic() - started
    head = [
        "## Mirroring benchmark: off / on / on + analysis",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine()}; "
        f"{load_before} before, {load()} after; {wall / 60:.1f} min in all.",
        f"Points of {cfg.seconds} s, {cfg.repeats} repeats (each a pass through off, on, "
        "on+analysis in turn): median [min–max]; Δ against off (loss in percentage points); "
        "seed Δ is the published on vs off.",
        "",
    ]
    tail = [
        "**Cost of analysis over mirroring alone** (on+analysis / on, ratio of medians; spread "
        "= worst and best pairing of the repeats)",
        "",
        *_table.analysis_cost(res.samples),
        "",
        "**CPU per mode** (% of one core over the mode's passes, from /proc/<pid>/stat)",
        "",
        *_table.cpu_table(res.cpu),
        "",
        *(f"- {note}" for note in res.notes),
        "",
    ]
    report = "\n".join([*head, *sections, *tail])
    (cfg.out / "report.md").write_text(report)
    return report
