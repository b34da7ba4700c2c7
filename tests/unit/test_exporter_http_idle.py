"""The listener under 3,000 idle connections: no thread each, bounded memory, scrapes on time."""

from __future__ import annotations

import resource
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter

from exporters import HttpServer, build_app

IDLE = 3_000


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def _open(sock: socket.socket) -> bool:
    """Nothing to read and no end of stream: the peer holds the connection open and silent.

    ``sock`` is non-blocking, so an empty receive queue is EAGAIN at once."""
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    return False  # an answer or the end of the stream


@pytest.fixture
def enough_fds() -> Iterator[None]:
    """Both ends of every connection live in this process: twice IDLE descriptors and some."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * IDLE + 512
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {need}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_idle_connections_cost_no_threads_little_memory_and_no_scrape_delay(
    enough_fds: None,
) -> None:
    """3,000 TCP connections held open without a request: the process keeps under 50 threads and
    100 MB more RSS, and a /metrics GET still answers within a second."""
    registry = CollectorRegistry()
    Counter("mirrorscope_test_things", "Things.", registry=registry).inc()
    with HttpServer(build_app(registry, token=None), "127.0.0.1:0") as server:
        host, port = server.address
        url = f"http://{host}:{port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            resp.read()  # warm: the worker thread and the code paths exist before we measure
        rss_before = _rss_bytes()
        idle: list[socket.socket] = []
        try:
            for _ in range(IDLE):
                idle.append(socket.create_connection((host, port), timeout=5))
                idle[-1].setblocking(False)
            time.sleep(1.0)  # let the server accept every one of them
            threads = threading.active_count()
            grown = _rss_bytes() - rss_before
            started = time.monotonic()
            with urllib.request.urlopen(url, timeout=5) as resp:
                body = resp.read().decode()
            took = time.monotonic() - started
            still_open = sum(_open(s) for s in idle)
        finally:
            for s in idle:
                s.close()
    print(
        f"{IDLE} idle: {threads} threads, RSS +{grown / 2**20:.1f} MiB, scrape {took * 1000:.0f} ms"
    )
    assert "mirrorscope_test_things_total 1.0" in body
    assert still_open == IDLE  # held, not shed: the server neither closed nor answered them
    assert threads < 50
    assert grown < 100 * 2**20
    assert took < 1.0
