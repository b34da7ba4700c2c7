"""The capture service with every sink on, and the real receivers of those sinks.

``sink_flags`` is the one place that says which sinks "on + analysis" turns on. The pcap store
(``--pcap-dir``) and notices (on unless ``--no-notices``) arrived in ``capture run`` while this
benchmark was written: each is used when the service's own ``--help`` lists its flag.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mirrorctl.bench._errors import BenchError
from mirrorctl.lab import LabState

log = logging.getLogger(__name__)

SCRAPE_SECONDS = 5
PCAP_QUOTA = "256M"
SCRAPE_INTERVAL = f"{SCRAPE_SECONDS}s"
_READY_S = 120.0  # the service compiles its kernels at its first start after an install


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def capture_run_flags() -> frozenset[str]:
    """The long options ``mirrorctl capture run`` accepts in this checkout."""
    done = subprocess.run(
        [sys.executable, "-m", "mirrorctl.cli", "capture", "run", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    return frozenset(re.findall(r"(--[a-z][a-z0-9-]*)", done.stdout))


def sink_flags(
    out: Path, ipfix_port: int, token_file: Path, known: frozenset[str]
) -> tuple[list[str], list[str]]:
    """Flags turning every sink ``capture run`` has on, and the names of those sinks."""
    flags = [
        "--listen", "127.0.0.1:0",
        "--token-file", str(token_file),
        "--records", str(out / "records"),
        "--ipfix", f"127.0.0.1:{ipfix_port}",
    ]  # fmt: skip
    names = ["/metrics scraped by Prometheus every 5 s", "flow records", "IPFIX to nfcapd",
             "API behind --token-file"]  # fmt: skip
    if "--pcap-dir" in known:
        flags += ["--pcap-dir", str(out / "pcap")]
        if "--pcap-quota" in known:
            # Per node and pass: a full run keeps 6 stores; the store's default 1G each would
            # leave gigabytes of benchmark traffic behind (eviction is part of what is measured).
            flags += ["--pcap-quota", PCAP_QUOTA]
        names.append("pcap store")
    if "--no-notices" in known:
        names.append("notices (on by default)")
    return flags, names


class Service:
    """``mirrorctl capture run`` on one lab node's mirror0, as a subprocess."""

    def __init__(self, state: LabState, flags: list[str], log_path: Path) -> None:
        self.lines: list[str] = []
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mirrorctl.cli", "-v", "capture", "run",
             "--iface", "mirror0", "--netns", state.node_netns, "--ovsdb", state.ovsdb,
             "--node", state.name, *flags],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = self._wait_for(r"serving (http://\S+)/metrics").group(1)
        # the service's own line, not the -v log line of the socket opening before the warm-up
        self._wait_for(r"^capturing on ")

    @property
    def target(self) -> str:
        return self.url.removeprefix("http://")

    def _read(self) -> None:
        for line in self.proc.stderr or ():
            self.lines.append(line.rstrip("\n"))
            self._log.write(line)

    def _wait_for(self, pattern: str) -> re.Match[str]:
        deadline = time.monotonic() + _READY_S
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if m := re.search(pattern, line):
                    return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise BenchError("capture service did not start:\n" + "\n".join(self.lines[-20:]))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        self._log.close()


class Daemon:
    """A foreground helper (Prometheus, nfcapd) whose output goes to a log file."""

    def __init__(self, argv: list[str], log_path: Path) -> None:
        if shutil.which(argv[0]) is None:
            raise BenchError(f"{argv[0]} is not installed: run make bootstrap")
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def nfcapd(base: Path, port: int) -> Daemon:
    """A local nfdump collector receiving the service's IPFIX on ``port``."""
    (base / "nfcapd").mkdir(parents=True, exist_ok=True)
    argv = ["nfcapd", "-w", str(base / "nfcapd"), "-b", "127.0.0.1", "-p", str(port)]
    return Daemon(argv, base / "nfcapd.log")


class Prometheus(Daemon):
    """A real Prometheus scraping ``targets`` every 5 s, TSDB under ``base``."""

    def __init__(self, base: Path, targets: list[str]) -> None:
        base.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config = base / "prometheus.yml"
        config.write_text(
            f"global:\n  scrape_interval: {SCRAPE_INTERVAL}\n  scrape_timeout: {SCRAPE_INTERVAL}\n"
            "scrape_configs:\n  - job_name: mirrorscope\n    static_configs:\n"
            f"      - targets: {json.dumps(targets)}\n"
        )
        super().__init__(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={base / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            base / "prometheus.log",
        )
        deadline = time.monotonic() + _READY_S
        while not self._ready():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise BenchError(f"prometheus did not get ready: see {base / 'prometheus.log'}")
            time.sleep(0.2)

    def _get(self, path: str) -> Any:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.load(resp) if path.startswith("/api/") else resp.status

    def _ready(self) -> bool:
        try:
            return bool(self._get("/-/ready") == 200)
        except (urllib.error.URLError, ConnectionError):
            return False

    def scrapes(self) -> int:
        """Successful scrapes stored so far, over all targets."""
        doc = self._get("/api/v1/query?query=sum(sum_over_time(up%5B1h%5D))")
        result = doc["data"]["result"]
        return int(float(result[0]["value"][1])) if result else 0


def records_in(directory: Path) -> int:
    """Flow records in a service's records directory: JSON-lines lines, Parquet rows (the
    summaries beside them are not records)."""
    import pyarrow.parquet as pq  # noqa: PLC0415 - only the bench's sink count reads Parquet

    n = 0
    for f in directory.iterdir():
        if f.name.endswith((".jsonl", ".jsonl.part")):
            with f.open("rb") as lines:
                n += sum(1 for _ in lines)
        elif f.name.endswith(".parquet"):
            n += pq.ParquetFile(f).metadata.num_rows
    return n
