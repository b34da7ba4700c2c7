"""The receivers the live section measures: each a capture process in the receiving namespace,
pinned to CPU 1, started, watched until ready, stopped with SIGINT and read for its counters.

tcpdump (to /dev/null, and writing rotating files), the service's own CLI (``mirrorctl capture
run``, without and with its pcap store), and, until the CLI exists, the same analysis chain in a
bench process (``python -m bench._receivers rx IFACE``, below).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from bench._ours import Chain, devnull
from capture import AfPacketSource, CaptureService, stop_on_signals

if TYPE_CHECKING:
    from bench._live import Link

_REPO = Path(__file__).resolve().parents[1]
# the service loads its compiled kernels before it says it is capturing (compiles them, the first
# time after an install: ~30 s)
_READY_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class RxResult:
    received: int  # PACKET_STATISTICS tp_packets: every frame the socket was offered
    dropped: int  # of those, dropped by the kernel for lack of ring/buffer space
    captured: int  # handed to the application (ours: analysed; tcpdump: written)
    cpu_pct: float  # receiver CPU over the sending interval, % of one core
    note: str = ""


class _Receiver:
    """A capture process in the receiving namespace, pinned to CPU 1."""

    name = ""

    def __init__(self, link: Link) -> None:
        self.link = link
        self.proc: subprocess.Popen[str] | None = None
        self._ready = threading.Event()
        self._lines: list[str] = []

    def argv(self) -> list[str]:
        raise NotImplementedError

    def is_ready_line(self, line: str) -> bool:
        raise NotImplementedError

    def result(self, out: str, err: str, cpu_pct: float) -> RxResult | str:
        raise NotImplementedError

    def in_rx_netns(self) -> bool:
        """Whether to run the command inside the receiving namespace (else it gets --netns)."""
        return True

    def start(self) -> None:
        argv = ["taskset", "-c", _rx_cpu(), *self.argv()]
        if self.in_rx_netns():
            argv = ["ip", "netns", "exec", self.link.rx_ns, *argv]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=_REPO
        )
        for stream in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=self._pump, args=(stream,), daemon=True).start()
        if not self._ready.wait(_READY_TIMEOUT_S):
            self.stop_now()
            raise RuntimeError(f"{self.name} did not start: {' | '.join(self._lines[-3:])}")

    def _pump(self, stream: IO[str] | None) -> None:
        if stream is None:
            return
        for line in stream:
            self._lines.append(line.rstrip("\n"))
            if self.is_ready_line(line):
                self._ready.set()
        # end of output: the process is going away, so nobody should wait for it to get ready
        self._ready.set()

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError(f"{self.name} was not started")
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, cpu_pct: float) -> RxResult | str:
        if self.proc is None:
            return f"failed: {self.name} was not started"
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.stop_now()
        time.sleep(0.1)  # let the pump threads take the last lines
        text = "\n".join(self._lines)
        return self.result(text, text, cpu_pct)

    def stop_now(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class _Tcpdump(_Receiver):
    name = "tcpdump"

    def argv(self) -> list[str]:
        return ["tcpdump", "-n", "-i", self.link.rx_if, "-w", os.devnull]

    def is_ready_line(self, line: str) -> bool:
        return line.startswith("listening on") or "tcpdump:" in line

    def result(self, out: str, err: str, cpu_pct: float) -> RxResult | str:
        got = re.search(r"(\d+) packets? received by filter", err)
        dropped = re.search(r"(\d+) packets? dropped by kernel", err)
        captured = re.search(r"(\d+) packets? captured", err)
        if got is None or dropped is None or captured is None:
            return f"failed: tcpdump said {err.strip()[-200:]!r}"
        return RxResult(
            int(got.group(1)),
            int(dropped.group(1)),
            int(captured.group(1)),
            cpu_pct,
            "tcpdump's defaults (libpcap's 2 MiB buffer)",
        )


class _TcpdumpStore(_Tcpdump):
    """tcpdump writing every frame to disk (``-w``), in eight rotating 64 MB files (``-C 64 -W
    8``, the quota the store gets): the fair peer for the capture rate with the store on."""

    name = "tcpdump -w"

    def __init__(self, link: Link, directory: Path) -> None:
        super().__init__(link)
        self.directory = directory

    def argv(self) -> list[str]:
        self.directory.mkdir(parents=True, exist_ok=True)
        out = str(self.directory / "tcpdump.pcap")
        # -Z root: tcpdump otherwise drops to its own user and cannot open the next file here
        rotation = ["-C", "64", "-W", "8", "-Z", "root"]
        return ["tcpdump", "-n", "-i", self.link.rx_if, "-w", out, *rotation]


class _Ours(_Receiver):
    name = "mirrorscope"

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "bench._receivers", "rx", self.link.rx_if]

    def is_ready_line(self, line: str) -> bool:
        return line.startswith(("ready", "{"))

    def result(self, out: str, err: str, cpu_pct: float) -> RxResult | str:
        docs = [ln for ln in out.splitlines() if ln.startswith("{")]
        if not docs:
            return f"failed: {(out.strip().splitlines() or ['no output'])[-1]}"
        r = json.loads(docs[-1])
        return RxResult(
            int(r["received"]), int(r["dropped"]), int(r["analysed"]), cpu_pct, str(r["note"])
        )


class _Cli(_Receiver):
    """The service itself: ``mirrorctl capture run --iface IF --netns NS``, one worker."""

    name = "mirrorscope"
    _SUMMARY = re.compile(
        r"captured (\d+) frames \((\d+) dropped by the kernel\), (\d+) flow records, "
        r"malformed (\d+), duplicates (\d+)"
    )
    _STORED = re.compile(
        r"pcap store: (\d+) frames stored, (\d+) not \((\d+) with the writer behind\)"
    )

    @staticmethod
    def available() -> bool:
        probe = subprocess.run(
            [*_CLI, "capture", "run", "--help"],
            capture_output=True,
            check=False,
            timeout=60,
            cwd=_REPO,
        )
        return probe.returncode == 0

    def in_rx_netns(self) -> bool:
        return False

    def argv(self) -> list[str]:
        link = self.link
        return [
            *_CLI,
            "capture",
            "run",
            "--iface",
            link.rx_if,
            "--netns",
            link.rx_ns,
            "--workers",
            "1",
            "--listen",
            "off",
            "--node",
            "bench",
        ]

    def is_ready_line(self, line: str) -> bool:
        return line.startswith(("capturing on", "mirrorctl: error"))

    def result(self, out: str, err: str, cpu_pct: float) -> RxResult | str:
        m = self._SUMMARY.search(err)
        if m is None:
            tail = [ln for ln in err.splitlines() if "WARNING" not in ln] or ["no summary"]
            return f"failed: {tail[-1][-200:]}"
        captured, dropped, flows, malformed, duplicates = (int(g) for g in m.groups())
        note = (
            f"mirrorctl capture run; {flows:,} flow records, {malformed:,} malformed, "
            f"{duplicates:,} duplicates suppressed"
        )
        store = self._STORED.search(err)
        if store is not None:
            stored, behind = int(store.group(1)), int(store.group(3))
            share = stored / captured if captured else 0.0
            note += f"; {stored:,} stored ({share:.0%} of captured), {behind:,} dropped with the "
            note += "store's writer behind"
        # The CLI prints frames taken from the ring; the kernel offered those plus its drops.
        return RxResult(captured + dropped, dropped, captured, cpu_pct, note)


class _CliStore(_Cli):
    """The service with its pcap store on (``--pcap-dir``): every frame also written to disk."""

    name = "mirrorscope+store"

    def __init__(self, link: Link, directory: Path) -> None:
        super().__init__(link)
        self.directory = directory

    def argv(self) -> list[str]:
        # a quota the runs overflow: rotation and eviction are part of what is measured
        return [*super().argv(), "--pcap-dir", str(self.directory), "--pcap-quota", "512M"]


class _CliWorkers(_Cli):
    """The service with ``--workers 2`` (PACKET_FANOUT): on the bench's two cores both workers
    share the receiver's core with each other, so this shows the fan-out's cost, not a gain."""

    name = "mirrorscope --workers 2"
    _MULTI = re.compile(r"(\d+) workers captured (\d+) frames \((\d+) dropped by the kernel\)")

    def argv(self) -> list[str]:
        argv = super().argv()
        argv[argv.index("--workers") + 1] = "2"
        return argv

    def result(self, out: str, err: str, cpu_pct: float) -> RxResult | str:
        m = self._MULTI.search(err)
        if m is None:
            tail = [ln for ln in err.splitlines() if "WARNING" not in ln] or ["no summary"]
            return f"failed: {tail[-1][-200:]}"
        workers, captured, dropped = (int(g) for g in m.groups())
        note = f"mirrorctl capture run --workers {workers}, both on the receiver's core"
        return RxResult(captured + dropped, dropped, captured, cpu_pct, note)


_CLI = [sys.executable, "-m", "mirrorctl.cli"]


def _rx_cpu() -> str:
    return "1" if (os.cpu_count() or 1) > 1 else "0"


# --- the in-process receiver (runs inside the receiving namespace) --------------------------------


def _rx_child(iface: str) -> int:
    """Capture ``iface`` with the full analysis until SIGINT; print the kernel's counters."""
    records = devnull()
    chain = Chain(None, records)
    source = AfPacketSource(iface, copy_blocks=chain.assembly.keeps_frames)
    service = CaptureService(source, [chain.pipeline], tick=chain.assembly.tick)
    print("ready", flush=True)
    try:
        with stop_on_signals(service.request_stop):
            result = service.run()
    finally:
        source.close()
        done = chain.finish()
        records.close()
    ring = f"{source.block_count} x {source.block_size >> 20} MiB ring"
    note = (
        f"in-process chain, {ring}; {done.flows:,} flow records; "
        f"{done.suppressed:,} duplicates suppressed"
    )
    doc = {
        "received": result.source.received,
        "dropped": result.source.dropped,
        "analysed": done.packets,
        "note": note,
    }
    print(json.dumps(doc), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "rx":
        sys.exit(_rx_child(sys.argv[2]))
    sys.exit("usage: python -m bench._receivers rx IFACE")
