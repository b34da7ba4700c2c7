"""Offline throughput: our chain, NFStream and tcpdump on the same generated pcap, best of N.

Each tool runs in a fresh process, so no run inherits another's heap or warm caches except the
page cache, which is warmed for all of them first (we measure analysis, not the disk). Runs are
interleaved (ours, NFStream, tcpdump, ours, ...) so a burst of background load hits all alike;
the best run of each is kept, and each run's CPU time is kept beside its wall time to show
contention (CPU/wall well below the cores a tool uses means it waited).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bench._audit import audit_figure
from bench._gen import TrafficSpec, Truth
from bench._ours import Chain, UnavailableError, devnull
from bench._report import Figure
from mirrorctl.service import offline_source

SECTION = "offline"
#: NFStream at its fastest: no nDPI dissection and no statistics (we do no DPI either), tunnel
#: decoding on as ours. Its meter count is tried both ways in every round, the faster kept:
#: on 2 cores n_meters=0 (auto) and a single meter trade places with the background load.
NFSTREAM_CONFIG: dict[str, object] = {
    "statistical_analysis": False,
    "n_dissections": 0,
    "decode_tunnels": True,
}
NFSTREAM_METERS = (0, 1)


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    cpu_seconds: float
    flows: int | None
    note: str = ""
    suppressed: int | None = None  # ours: copies duplicate suppression removed
    by_proto: dict[str, int] | None = None  # flows by tcp/udp/icmp, where the tool says
    audit: dict[str, int] | None = None  # ours: what the records add up to


def _cpu_now() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


# --- children: one measured run each, printed as one JSON line ------------------------------------


def _warm_kernels(path: Path) -> None:
    """The first batch through a throwaway chain, flushed so its records are written too:
    numba's import and the load of the compiled kernels from their disk cache come before the
    clock, as NFStream's import does (the CLI run and the cold-start figures count them)."""
    with devnull() as records:
        chain = Chain(None, records)
        source = offline_source(path, None, chain.pipeline.walker)  # the path measured below
        try:
            chain.pipeline.on_batch(next(iter(source.batches())))
        finally:
            source.close()
        chain.finish()


def _child_ours(path: Path, spec: TrafficSpec) -> dict[str, object]:
    _warm_kernels(path)
    with devnull() as records:
        chain = Chain(spec, records, audit=True)  # the CLI's defaults
        t0, c0 = time.perf_counter(), _cpu_now()
        errors = chain.assembly.read_files([path])  # capture read's own loop over its files
        if errors:
            raise errors[0]
        stats = chain.finish()
        t1, c1 = time.perf_counter(), _cpu_now()
        audit = chain.audit()  # the truth check is the bench's, after the clock
    return {
        "seconds": t1 - t0,
        "cpu": c1 - c0,
        "flows": stats.flows,
        "suppressed": stats.suppressed,
        "by_proto": stats.by_proto,
        "audit": audit,
        "note": "",
    }


def _child_nfstream(path: Path, meters: int) -> dict[str, object]:
    try:
        from nfstream import NFStreamer  # noqa: PLC0415 - only the child that measures it pays
    except ImportError as e:
        raise UnavailableError(f"nfstream ({e}; pip install nfstream)") from None

    t0, c0 = time.perf_counter(), _cpu_now()
    flows = 0
    by_number: dict[int, int] = {}
    for flow in NFStreamer(source=str(path), n_meters=meters, **NFSTREAM_CONFIG):
        flows += 1
        by_number[flow.protocol] = by_number.get(flow.protocol, 0) + 1
    t1, c1 = time.perf_counter(), _cpu_now()
    names = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp"}  # Zeek's names; ICMPv6 is "icmp" too
    by_proto: dict[str, int] = {}
    for number, count in by_number.items():
        name = names.get(number, str(number))
        by_proto[name] = by_proto.get(name, 0) + count
    config = ", ".join(f"{k}={v}" for k, v in NFSTREAM_CONFIG.items())
    return {
        "seconds": t1 - t0,
        "cpu": c1 - c0,
        "flows": flows,
        "by_proto": by_proto,
        "note": f"n_meters={meters}, {config}",
    }


def _child(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._offline")
    parser.add_argument("tool", choices=["ours", "nfstream"])
    parser.add_argument("pcap", type=Path)
    parser.add_argument("--spec", default="{}", help="TrafficSpec as JSON (for pod identities)")
    parser.add_argument("--meters", type=int, default=0, help="NFStream's n_meters")
    args = parser.parse_args(argv)
    try:
        if args.tool == "ours":
            result = _child_ours(args.pcap, TrafficSpec(**json.loads(args.spec)))
        else:
            result = _child_nfstream(args.pcap, args.meters)
    except UnavailableError as e:
        result = {"unavailable": e.component}
    print(json.dumps(result))
    return 0


# --- parent ---------------------------------------------------------------------------------------


def _run_child(tool: str, pcap: Path, spec: TrafficSpec, *extra: str) -> Run | str:
    """One measured run in a fresh interpreter; a string says why there is no number."""
    spec_json = json.dumps(
        {"packets": spec.packets, "flows": spec.flows, "seed": spec.seed, "span_s": spec.span_s}
    )
    cmd = [sys.executable, "-m", "bench._offline", tool, str(pcap), "--spec", spec_json, *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=1800)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"failed: {tail}"
    result = json.loads(lines[-1])
    if "unavailable" in result:
        return f"not available: {result['unavailable']}"
    suppressed = result.get("suppressed")
    return Run(
        float(result["seconds"]),
        float(result["cpu"]),
        int(result["flows"]),
        str(result["note"]),
        None if suppressed is None else int(suppressed),
        result.get("by_proto"),
        result.get("audit"),
    )


def _run_tcpdump(pcap: Path) -> Run | str:
    if shutil.which("tcpdump") is None:
        return "not available: tcpdump (install the tcpdump package)"
    c0 = _cpu_now()
    t0 = time.perf_counter()
    proc = subprocess.run(
        ["tcpdump", "-r", str(pcap), "-w", os.devnull],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    t1 = time.perf_counter()
    if proc.returncode != 0:
        return f"failed: {proc.stderr.strip()[-200:]}"
    return Run(t1 - t0, _cpu_now() - c0, None)


def _cli_argv() -> list[str]:
    return [sys.executable, "-m", "mirrorctl.cli", "capture", "read"]


def _run_cli(pcap: Path, workers: int = 1) -> Run | str:
    """``mirrorctl capture read [--workers N] FILE``: wall time of the whole command, records
    counted."""
    probe = subprocess.run(
        [*_cli_argv(), "--help"], capture_output=True, text=True, check=False, timeout=60
    )
    if probe.returncode != 0:
        return "not available: mirrorctl capture read"
    c0 = _cpu_now()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [*_cli_argv(), "--workers", str(workers), str(pcap)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # stderr is a short summary; stdout is drained as it comes so the pipe never blocks the CLI
    err_chunks: list[bytes] = []
    drain = threading.Thread(
        target=lambda: err_chunks.append(proc.stderr.read() if proc.stderr else b"")
    )
    drain.start()
    records = 0
    if proc.stdout is not None:
        for chunk in iter(lambda: proc.stdout.read(1 << 20) if proc.stdout else b"", b""):
            records += chunk.count(b"\n")
    proc.wait(timeout=1800)
    drain.join()
    t1 = time.perf_counter()
    err = b"".join(err_chunks).decode(errors="replace")
    if proc.returncode != 0:
        tail = (err.strip().splitlines() or ["?"])[-1]
        return f"failed: exit {proc.returncode}: {tail}"
    return Run(t1 - t0, _cpu_now() - c0, records, by_proto=_summary_protos(err))


def _summary_protos(summary: str) -> dict[str, int] | None:
    """Flows by protocol from capture read's summary ("... 9 flows (tcp 5, udp 4), ...")."""
    m = re.search(r"\d+ flows \(([^)]*)\)", summary)
    if m is None:
        return None
    pairs = (item.split() for item in m.group(1).split(","))
    return {p[0]: int(p[1]) for p in pairs if len(p) == 2 and p[1].isdigit()}


def _warm(pcap: Path) -> None:
    with pcap.open("rb") as f:
        while f.read(1 << 24):
            pass


def measure(pcap: Path, truth: Truth, spec: TrafficSpec, repeat: int) -> list[Figure]:
    """Interleaved best-of-``repeat`` runs of the three tools, as report figures."""
    _warm(pcap)
    load_before = os.getloadavg()[0]
    best: dict[str, Run | str] = {}
    for _ in range(repeat):
        runs: list[tuple[str, Run | str]] = [
            ("ours", _run_child("ours", pcap, spec)),
            ("cli", _run_cli(pcap)),
            ("cli2", _run_cli(pcap, workers=2)),
        ]
        for meters in NFSTREAM_METERS:
            runs.append(("nfstream", _run_child("nfstream", pcap, spec, f"--meters={meters}")))
        runs.append(("tcpdump", _run_tcpdump(pcap)))
        for tool, run in runs:
            prev = best.get(tool)
            if isinstance(run, Run):
                if not isinstance(prev, Run) or run.seconds < prev.seconds:
                    best[tool] = run
            elif prev is None:
                best[tool] = run
    return _figures(best, truth, repeat, load_before)


def _figures(
    best: dict[str, Run | str], truth: Truth, repeat: int, load_before: float
) -> list[Figure]:
    labels = {
        "ours": "mirrorscope in-process (capture read's chain)",
        "cli": "mirrorctl capture read (CLI, process start included)",
        "cli2": "mirrorctl capture read --workers 2 (CLI)",
        "nfstream": "NFStream " + _nfstream_version(),
        "tcpdump": "tcpdump -r -w /dev/null (libpcap floor)",
    }
    figs: list[Figure] = [
        Figure.info(
            SECTION,
            "input",
            f"{truth.packets:,} pkts, {truth.flows:,} flows, {truth.wire_bytes / 1e6:.0f} MB, "
            f"best of {repeat}, load avg {load_before:.2f} before",
        )
    ]
    rate: dict[str, float] = {}
    per_cpu: dict[str, float] = {}  # packets per CPU-second: what background load distorts least
    for tool, label in labels.items():
        run = best.get(tool, "not run")
        if isinstance(run, str):
            figs.append(Figure.missing(SECTION, f"{label} packets/s", run))
            continue
        rate[tool] = truth.packets / run.seconds
        if run.cpu_seconds > 0:
            per_cpu[tool] = truth.packets / run.cpu_seconds
        note = (
            f"{run.seconds:.2f} s wall, {run.cpu_seconds / run.seconds:.2f} cores busy, "
            f"{truth.packets / max(run.cpu_seconds, 1e-9):,.0f} pkts per CPU-second"
        )
        if run.note:
            note += f"; {run.note}"
        figs.append(Figure.value_of(SECTION, f"{label} packets/s", rate[tool], "pkt/s", note=note))
        if run.flows is not None:
            ok = run.flows == truth.flows
            note = ""
            if run.by_proto is not None:
                want = {"tcp": truth.tcp_flows, "udp": truth.udp_flows, "icmp": truth.icmp_flows}
                got = {p: run.by_proto.get(p, 0) for p in want}
                others = sum(n for p, n in run.by_proto.items() if p not in want)
                ok = ok and got == want and others == 0
                note = ", ".join(f"{p} {got[p]:,}/{want[p]:,}" for p in want)
                note += f" (seen/truth){f', other {others:,}' if others else ''}"
            figs.append(
                Figure.value_of(
                    SECTION,
                    f"{label.split(' (')[0]} flows",
                    run.flows,
                    "flows",
                    target=f"= {truth.flows:,} (truth)",
                    ok=ok,
                    note=note,
                )
            )
        if run.audit is not None:
            figs.append(
                audit_figure(SECTION, f"{label.split(' (')[0]} records vs truth", run.audit, truth)
            )
        if run.suppressed is not None:
            figs.append(
                Figure.value_of(
                    SECTION,
                    f"{label.split(' (')[0]} duplicates suppressed",
                    run.suppressed,
                    "pkts",
                    target="= 0 (the file has none)",
                    ok=run.suppressed == 0,
                )
            )
    for other, name in (("nfstream", "NFStream"), ("tcpdump", "tcpdump")):
        if "ours" in per_cpu and other in per_cpu:
            figs.append(
                Figure.value_of(
                    SECTION,
                    f"ours / {name} packets per CPU-second",
                    per_cpu["ours"] / per_cpu[other],
                    "x",
                    note="less sensitive to other load on the machine than wall-clock rates; "
                    "ours reads the next batches on a second thread (cores busy above)",
                )
            )
    if "cli" in rate and "cli2" in rate:
        figs.append(
            Figure.value_of(
                SECTION,
                "capture read --workers 2 / --workers 1 packets/s",
                rate["cli2"] / rate["cli"],
                "x",
                note=f"{os.cpu_count()} CPUs, load avg {load_before:.2f} before; each worker "
                "reads and decodes every frame and keeps its share of the flows",
            )
        )
    for ours, who in (("ours", "ours"), ("cli", "capture read CLI")):
        for other, name, factor in (("nfstream", "NFStream", 4.0), ("tcpdump", "tcpdump", 0.5)):
            fig_name = f"{who} / {name} packets/s"
            target = f">= {factor:g}x"
            if ours in rate and other in rate:
                ratio = rate[ours] / rate[other]
                figs.append(
                    Figure.value_of(
                        SECTION, fig_name, ratio, "x", target=target, ok=ratio >= factor
                    )
                )
            else:
                why = next(
                    (str(best.get(t, "not run")) for t in (ours, other) if t not in rate), ""
                )
                figs.append(Figure.missing(SECTION, fig_name, why, target=target))
    return figs


def _nfstream_version() -> str:
    try:
        return version("nfstream")
    except PackageNotFoundError:
        return "(not installed)"


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
