"""The live section's table: what one run of a receiver says, and the ratios between runs.

``_live`` runs trafgen against each receiver and hands each ``RunResult`` here; the figures (sent,
received, kernel drops, CPU), the pcap store's on/off ratio and the CPU per captured packet against
tcpdump's are made from those results alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench._receivers import RxResult, _Cli, _CliStore, _Ours, _Tcpdump, _TcpdumpStore
from bench._report import Figure

__all__ = ["SECTION", "RunResult", "cpu_per_packet", "run_figures", "store_ratio"]

SECTION = "live"
_CPU_TARGET_PCT = 25.0


@dataclass(frozen=True, slots=True)
class RunResult:
    sent: int
    arrived: int  # reached the receiving interface
    seconds: float
    rx: RxResult | str  # a string says why there is no receiver figure
    cpu_seconds: float = 0.0  # the receiver's, over the run and its draining


def run_figures(label: str, run: RunResult, *, max_rate: bool, paced: bool) -> list[Figure]:
    figs = []
    name = f"{label}"
    rate = run.sent / run.seconds if run.seconds else 0.0
    figs.append(
        Figure.value_of(
            SECTION,
            f"{name}: sent",
            run.sent,
            "frames",
            note=f"{rate:,.0f} frames/s; {run.arrived:,} reached the receiving interface",
        )
    )
    if isinstance(run.rx, str):
        figs.append(Figure.missing(SECTION, f"{name}: received", run.rx))
        return figs
    rx = run.rx
    ours = label.startswith("mirrorscope")
    figs.append(
        Figure.value_of(
            SECTION,
            f"{name}: received",
            rx.captured,
            "frames",
            note=f"kernel offered {rx.received:,} to the socket"
            + (f"; {rx.note}" if rx.note else ""),
        )
    )
    figs.append(
        Figure.value_of(
            SECTION,
            f"{name}: dropped by kernel",
            rx.dropped,
            "frames",
            target="= 0" if ours and max_rate else "",
            ok=(rx.dropped == 0) if ours and max_rate else None,
        )
    )
    cpu_target = f"<= {_CPU_TARGET_PCT:.0f} %" if ours and paced else ""
    figs.append(
        Figure.value_of(
            SECTION,
            f"{name}: CPU",
            rx.cpu_pct,
            "%",
            target=cpu_target,
            ok=(rx.cpu_pct <= _CPU_TARGET_PCT) if cpu_target else None,
            note="% of one core, from the first frame sent until the receiver went idle",
        )
    )
    return figs


def store_ratio(size: int, rates: dict[str, float]) -> list[Figure]:
    """The capture rate with the pcap store on beside the rate with it off."""
    on, off = rates.get(_CliStore.name), rates.get(_Cli.name)
    if on is None or off is None or off == 0:
        return []
    peer = ""
    dump_on, dump_off = rates.get(_TcpdumpStore.name), rates.get(_Tcpdump.name)
    if dump_on is not None and dump_off:
        peer = f"; tcpdump -w {dump_on:,.0f}, without {dump_off:,.0f} ({dump_on / dump_off:.2f}x)"
    return [
        Figure.value_of(
            SECTION,
            f"pcap store on/off {size} B max rate",
            on / off,
            "x",
            target=">= 0.5",
            ok=on / off >= 0.5,
            note=f"{on:,.0f} frames/s captured with --pcap-dir, {off:,.0f} without{peer}",
        )
    ]


def cpu_per_packet(size: int, runs: dict[str, list[RunResult]]) -> list[Figure]:
    """CPU per captured packet, ours beside tcpdump's (both at the ceiling): the best of each
    receiver's runs, which alternated; a repeat run of ours that dropped frames is reported."""
    per: dict[str, list[float]] = {}
    dropped: dict[str, list[int]] = {}
    for name in dict.fromkeys((_Cli.name, _Ours.name, _Tcpdump.name)):  # ours: one name
        for run in runs.get(name, []):
            if not isinstance(run.rx, str) and run.rx.captured:
                per.setdefault(name, []).append(run.cpu_seconds / run.rx.captured * 1e9)
                dropped.setdefault(name, []).append(run.rx.dropped)
    name = _Cli.name if _Cli.name in per else _Ours.name
    ours, dump = per.get(name), per.get(_Tcpdump.name)
    if not ours or not dump or min(dump) == 0:
        return []
    best = min(ours) / min(dump)
    each = f"{len(ours)} and {len(dump)} runs" if len(ours) > 1 else "one run each"
    figs = [
        Figure.value_of(
            SECTION,
            f"CPU per captured packet, ours / tcpdump {size} B max rate",
            best,
            "x",
            target="<= 2x",
            ok=best <= 2.0,
            note=f"ours {min(ours):.0f} ns, tcpdump {min(dump):.0f} ns a packet, the best of "
            f"{each}, alternating (ours {_ns(ours)}; tcpdump {_ns(dump)}); user + system, one "
            "worker; tcpdump writes each packet to /dev/null, ours analyses it",
        )
    ]
    if len(dropped[name]) > 1:
        figs.append(
            Figure.value_of(
                SECTION,
                f"mirrorscope {size} B max rate, repeat runs: dropped by kernel",
                sum(dropped[name][1:]),
                "frames",
                target="= 0",
                ok=sum(dropped[name][1:]) == 0,
                note=" / ".join(f"{d:,}" for d in dropped[name][1:]),
            )
        )
    return figs


def _ns(values: list[float]) -> str:
    return "/".join(f"{v:.0f}" for v in values) + " ns"
