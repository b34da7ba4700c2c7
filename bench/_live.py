"""Live capture: a veth pair blasted by trafgen, received by our service and by tcpdump in turn
(each without and with writing every frame to disk).

Two fresh network namespaces (unique names, always deleted) hold the two ends of a veth pair.
trafgen (netsniff-ng, TX_RING, one process pinned to CPU 0) sends static UDP frames of 64 or 512
bytes across 16,384 flows (one distinct frame each, round-robin) into one end for a fixed time; the
receiver, pinned to CPU 1, captures the other end. Frames go to a MAC nobody owns, so the
receiving namespace's IP stack ignores them and only the packet sockets see them.

Reported per run: frames sent (the sending veth's tx counter), frames that reached the receiving
interface (its rx counter), frames the receiver's socket got and the kernel dropped
(PACKET_STATISTICS for ours; tcpdump's own "dropped by kernel" line), and the receiver's CPU time
from /proc/<pid>/stat (utime + stime) from the first frame sent until the receiver has worked
through its ring and gone idle, as % of one core over that interval.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from bench._livefigures import SECTION, RunResult, cpu_per_packet, run_figures, store_ratio
from bench._receivers import (
    _Cli,
    _CliStore,
    _CliWorkers,
    _Ours,
    _Receiver,
    _rx_cpu,
    _Tcpdump,
    _TcpdumpStore,
)
from bench._report import Figure

# Issue 15 asks for at least 10 k flows in the live traffic: a flow table under real churn of
# slots, not a few hundred hot ones.
_FLOWS = 16384
_VARIANTS = 1
_DST_MAC = bytes.fromhex("02000000beef")  # nobody's: the receiving stack drops it at L2
_SRC_MAC = bytes.fromhex("02000000cafe")
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PACED_PPS = 100_000
_IDLE_S = 1.2  # quiet for this long: the receiver has worked through its ring (``_wait_idle``)
#: Runs of ours and of tcpdump whose best CPU per packet is compared: one run each, minutes apart,
#: moved the ratio by a fifth with the machine's speed (2.16x and 2.55x on the same code).
_CPU_RUNS = 3


@dataclass(frozen=True, slots=True)
class Link:
    tx_ns: str
    tx_if: str
    rx_ns: str
    rx_if: str


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@contextmanager
def veth_pair() -> Iterator[Link]:
    """Two fresh namespaces joined by a veth pair; both namespaces are deleted on exit."""
    tag = secrets.token_hex(3)
    link = Link(f"msbench-tx-{tag}", f"msbt{tag}", f"msbench-rx-{tag}", f"msbr{tag}")
    created: list[str] = []
    try:
        for ns in (link.tx_ns, link.rx_ns):
            _ip("netns", "add", ns)
            created.append(ns)
        _ip("-n", link.tx_ns, "link", "add", link.tx_if, "type", "veth", "peer", "name", link.rx_if)
        _ip("-n", link.tx_ns, "link", "set", link.rx_if, "netns", link.rx_ns)
        for ns, ifname in ((link.tx_ns, link.tx_if), (link.rx_ns, link.rx_if)):
            # no IPv6 link-local chatter (router solicitations, MLD) in the counters
            subprocess.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    "sysctl",
                    "-qw",
                    f"net.ipv6.conf.{ifname}.disable_ipv6=1",
                ],
                check=True,
                capture_output=True,
                timeout=10,
            )
            _ip("-n", ns, "link", "set", ifname, "up")
        yield link
    finally:
        for ns in created:
            with suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
                _ip("netns", "del", ns)


def _link_counters(ns: str, ifname: str) -> dict[str, int]:
    out = subprocess.run(
        ["ip", "-n", ns, "-s", "-j", "link", "show", "dev", ifname],
        check=True,
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout
    stats = json.loads(out)[0]["stats64"]
    return {
        "tx": int(stats["tx"]["packets"]),
        "rx": int(stats["rx"]["packets"]),
        "rx_dropped": int(stats["rx"]["dropped"]),
    }


def _frames(size: int) -> list[bytes]:
    """``_VARIANTS`` frames for each of ``_FLOWS`` UDP/IPv4 flows, ``size`` bytes each (no FCS).

    Variants differ in the IP identification, so a frame recurs only every ``_FLOWS *
    _VARIANTS`` frames (16 ms at 1 M frames/s): duplicate suppression, whose window is 1 ms,
    must not take trafgen's round-robin repetition for mirrored copies.
    """
    frames = []
    for k in range(_VARIANTS):
        for i in range(_FLOWS):
            payload = bytes(size - 14 - 20 - 8)
            udp = struct.pack("!HHHH", 40000 + i, 31000 + i % 16, 8 + len(payload), 0)
            src = bytes([10, 16, 1 + i // 250, 1 + i % 250])
            dst = bytes([10, 16, 100, 1 + i % 16])
            ip_id = (k * _FLOWS + i) & 0xFFFF
            ip_len = 20 + len(udp) + len(payload)
            hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, ip_len, ip_id, 0x4000, 64, 17, 0, src, dst)
            csum = sum(struct.unpack("!10H", hdr))
            csum = (csum & 0xFFFF) + (csum >> 16)
            csum = (csum & 0xFFFF) + (csum >> 16)
            hdr = hdr[:10] + struct.pack("!H", ~csum & 0xFFFF) + hdr[12:]
            frames.append(_DST_MAC + _SRC_MAC + b"\x08\x00" + hdr + udp + payload)
    return frames


def trafgen_config(size: int) -> str:
    """trafgen's packet language: one ``{ bytes }`` block per frame, sent round-robin."""
    blocks = []
    for f in _frames(size):
        head = ", ".join(f"0x{b:02x}" for b in f[:42])  # Ethernet + IPv4 + UDP headers
        blocks.append(f"{{ {head}, fill(0x00, {len(f) - 42}) }}")  # zero payload, said briefly
    return "\n".join(blocks) + "\n"


def _cpu_ticks(pid: int) -> int:
    """CPU ticks of ``pid`` and its live descendants (``--workers 2``'s workers are children)."""
    stats: dict[int, tuple[int, int]] = {}  # pid -> (parent, ticks)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        # ppid, utime, stime: fields 4, 14 and 15 of stat
        stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    tree = {pid}
    while grown := {c for c, (parent, _) in stats.items() if parent in tree} - tree:
        tree |= grown
    return sum(stats[p][1] for p in tree if p in stats)


def _wait_first_frame(link: Link, tx_before: int, sender: subprocess.Popen[str]) -> float:
    """The moment the sending veth's tx counter first moves (trafgen is sending)."""
    deadline = time.monotonic() + 120.0
    while time.monotonic() < deadline:
        if _link_counters(link.tx_ns, link.tx_if)["tx"] > tx_before:
            return time.monotonic()
        if sender.poll() is not None:
            err = sender.stderr.read() if sender.stderr else ""
            raise RuntimeError(f"trafgen exited {sender.returncode} before sending: {err[-200:]}")
        time.sleep(0.02)
    raise RuntimeError("trafgen sent nothing within 120 s")


def _wait_idle(pid: int, *, limit_s: float = 15.0) -> int:
    """Wait until ``pid`` has used (almost) no CPU for ``_IDLE_S``; returns its CPU ticks then.

    A shorter quiet spell is no sign of a drained ring: the service holds ring blocks back for
    up to its --coalesce-ms after the kernel hands them over (0.5 s), libpcap up to tcpdump's
    1 s read timeout; frames worked through after the ticks are read would be counted without
    their CPU."""
    deadline = time.monotonic() + limit_s
    ticks = _cpu_ticks(pid)
    while time.monotonic() < deadline:
        time.sleep(_IDLE_S)
        now = _cpu_ticks(pid)
        if now - ticks <= max(1, round(_CLK_TCK * _IDLE_S / 15)):  # under ~7 % of a core
            return now
        ticks = now
    return ticks


# --- one run and the section ----------------------------------------------------------------------


def _run(link: Link, receiver: _Receiver, conf: Path, seconds: float, pps: int | None) -> RunResult:
    try:
        receiver.start()
    except RuntimeError as e:
        return RunResult(0, 0, 0.0, f"failed: {e}")
    time.sleep(0.3)  # a receiver that cannot run says so and exits at once
    if not receiver.alive():
        r = receiver.stop(0.0)
        return RunResult(0, 0, 0.0, r if isinstance(r, str) else "failed: receiver exited")
    argv = ["ip", "netns", "exec", link.tx_ns, "taskset", "-c", "0"]
    argv += ["trafgen", "--dev", link.tx_if, "--conf", str(conf), "--cpus", "1"]
    # trafgen would otherwise raise the host-wide socket buffer defaults and move NIC IRQs
    # (0.6.8 only knows the long spellings of these two options)
    argv += ["--no-sock-mem", "--notouch-irq"]
    if pps is not None:
        argv += ["--rate", f"{pps}pps"]
    before_tx = _link_counters(link.tx_ns, link.tx_if)
    before_rx = _link_counters(link.rx_ns, link.rx_if)
    # its own process group: trafgen's worker is a forked child that must get the SIGINT too
    sender = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    sender_err = ""
    try:
        # trafgen first compiles its configuration: the run starts with its first frame
        t0 = _wait_first_frame(link, before_tx["tx"], sender)
        ticks0 = _cpu_ticks(receiver.pid)
        time.sleep(seconds)
        sending = time.monotonic() - t0
        os.killpg(sender.pid, signal.SIGINT)
        try:
            _, sender_err = sender.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(sender.pid, signal.SIGKILL)
            _, sender_err = sender.communicate(timeout=15)
        ticks1 = _wait_idle(receiver.pid)  # it still works through what its ring holds
        elapsed = time.monotonic() - t0
        after_tx = _link_counters(link.tx_ns, link.tx_if)
        after_rx = _link_counters(link.rx_ns, link.rx_if)
        cpu_pct = 100.0 * (ticks1 - ticks0) / _CLK_TCK / elapsed
        rx = receiver.stop(cpu_pct)
    except RuntimeError as e:
        rx, sending = f"failed: {e}", 0.0
        ticks0 = ticks1 = 0
        after_tx, after_rx = before_tx, before_rx
    finally:
        if sender.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(sender.pid, signal.SIGKILL)
            sender.wait(timeout=10)
        receiver.stop_now()
    if sender.returncode not in (0, -signal.SIGINT, 130) and not isinstance(rx, str):
        rx = f"failed: trafgen exited {sender.returncode}: {sender_err.strip()[-200:]}"
    return RunResult(
        sent=after_tx["tx"] - before_tx["tx"],
        arrived=after_rx["rx"] - before_rx["rx"],
        seconds=sending,
        rx=rx,
        cpu_seconds=(ticks1 - ticks0) / _CLK_TCK,
    )


def measure(seconds: float, *, quick: bool) -> list[Figure]:
    """Max-rate runs at 64 and 512 bytes for ours (store off and on, --workers 2) and tcpdump (to
    /dev/null and to files), then ours and tcpdump at a paced 100 k pps."""
    # the CPU per packet against tcpdump's: the best of three alternating runs of each (one
    # with --quick, whose caller already shortened ``seconds``)
    cpu_runs = 1 if quick else _CPU_RUNS
    if os.geteuid() != 0:
        return [Figure.missing(SECTION, "live", "not available: needs root (netns, veth)")]
    for tool, package in (
        ("trafgen", "netsniff-ng"),
        ("tcpdump", "tcpdump"),
        ("taskset", "util-linux"),
    ):
        if shutil.which(tool) is None:
            return [Figure.missing(SECTION, "live", f"not available: {tool} (package {package})")]
    figs: list[Figure] = [
        Figure.info(
            SECTION,
            "conditions",
            f"{seconds:g} s per run, trafgen on CPU 0, receiver on CPU {_rx_cpu()}, "
            f"load avg {os.getloadavg()[0]:.2f} before",
        )
    ]
    # The service's own CLI once it exists; until then the same chain in a bench process.
    ours: type[_Receiver] = _Cli if _Cli.available() else _Ours
    with tempfile.TemporaryDirectory(prefix="msbench-") as tmp, veth_pair() as link:
        confs = {}
        for size in (64, 512):
            confs[size] = Path(tmp) / f"udp{size}.cfg"
            confs[size].write_text(trafgen_config(size))
        for size in (64, 512):
            receivers: list[_Receiver] = [ours(link), _Tcpdump(link)]
            if ours is _Cli:
                receivers.insert(1, _CliStore(link, Path(tmp) / f"pcap{size}"))
                receivers.insert(2, _CliWorkers(link))
                receivers.append(_TcpdumpStore(link, Path(tmp) / f"tcpdump{size}"))
            rates: dict[str, float] = {}
            runs: dict[str, list[RunResult]] = {}
            for receiver in receivers:
                run = _run(link, receiver, confs[size], seconds, None)
                runs[receiver.name] = [run]
                label = f"{receiver.name} {size} B max rate"
                figs += run_figures(label, run, max_rate=True, paced=False)
                if not isinstance(run.rx, str) and run.seconds:
                    rates[receiver.name] = run.rx.captured / run.seconds
            figs += store_ratio(size, rates)
            for _ in range(cpu_runs - 1):  # ours and tcpdump again, alternating
                for receiver in (ours(link), _Tcpdump(link)):
                    run = _run(link, receiver, confs[size], seconds, None)
                    runs[receiver.name].append(run)
            figs += cpu_per_packet(size, runs)
            for d in ("pcap", "tcpdump"):  # gigabytes of frames: not kept past their runs
                shutil.rmtree(Path(tmp) / f"{d}{size}", ignore_errors=True)
        for receiver in (ours(link), _Tcpdump(link)):
            run = _run(link, receiver, confs[64], seconds, _PACED_PPS)
            label = f"{receiver.name} 64 B at {_PACED_PPS // 1000} k pps"
            figs += run_figures(label, run, max_rate=False, paced=True)
    return figs
