"""A real Prometheus server for tests: Debian's ``prometheus`` on loopback, TSDB in a tmp dir.

Use the ``prometheus`` fixture (re-exported by conftest.py): ``prometheus(["127.0.0.1:PORT"])``
starts a server scraping those targets every second and returns a ``PrometheusServer`` to query.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

log = logging.getLogger(__name__)

StartPrometheus = Callable[[list[str]], "PrometheusServer"]


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrometheusServer:
    """One ``prometheus`` process; ``stop()`` always ends it (terminate, then kill)."""

    def __init__(self, base: Path, targets: list[str], scrape_interval: str = "1s") -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus not on PATH: install Debian's prometheus (bootstrap.sh)")
        self.base = base
        self.port = free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = base / "prometheus.yml"
        targets_yaml = ", ".join(json.dumps(t) for t in targets)
        config.write_text(
            "global:\n"
            f"  scrape_interval: {scrape_interval}\n"
            f"  scrape_timeout: {scrape_interval}\n"
            "scrape_configs:\n"
            "  - job_name: mirrorscope\n"
            f"    static_configs:\n      - targets: [{targets_yaml}]\n"
        )
        self.log_path = base / "prometheus.log"
        self._log = self.log_path.open("wb")
        self._proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={base / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/-/ready", timeout=2
                ) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"prometheus not ready after {timeout}s: {self.log_path.read_text()}")

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.port}/api/v1/{path}?{query}", timeout=5
        ) as resp:
            body = json.load(resp)
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus API {path} {params}: {body}")
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant vector result of ``promql``: [{"metric": {...}, "value": [ts, "v"]}, ...]."""
        result: list[dict[str, Any]] = self.api("query", query=promql)["result"]
        return result

    def value(self, promql: str) -> float | None:
        """The single value of ``promql``, None when the result is empty."""
        result = self.query(promql)
        if not result:
            return None
        if len(result) > 1:
            raise AssertionError(f"{promql} returned {len(result)} series: {result}")
        return float(result[0]["value"][1])

    def wait_for(
        self, promql: str, predicate: Callable[[float | None], bool], timeout: float = 20.0
    ) -> float | None:
        """Poll ``promql`` until ``predicate(value)`` holds; return that value."""
        deadline = time.monotonic() + timeout
        value = self.value(promql)
        while not predicate(value):
            if time.monotonic() > deadline:
                raise AssertionError(f"{promql} = {value} after {timeout}s")
            time.sleep(0.25)
            value = self.value(promql)
        return value

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        self._log.close()


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[StartPrometheus]:
    """Start real Prometheus servers scraping the given targets every second; stopped after."""
    servers: list[PrometheusServer] = []

    def start(targets: list[str]) -> PrometheusServer:
        base = tmp_path / f"prometheus-{len(servers)}"
        base.mkdir()
        server = PrometheusServer(base, targets)
        servers.append(server)  # before waiting: a server that never gets ready is stopped too
        server.wait_ready()
        return server

    yield start
    for server in servers:
        server.stop()
