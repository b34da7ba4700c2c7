"""Reading what qperf, iperf3 and wrk print, and the seed's figures with their units.

Every value becomes one unit: latency and response times in microseconds, bandwidth in bit/s,
loss in percent, QPS in requests/s.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from mirrorctl.bench._errors import BenchError

_TIME_US = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6, "sec": 1e6}
_RATE = {"bits/sec": 1.0, "kbits/sec": 1e3, "mbits/sec": 1e6, "gbits/sec": 1e9}
_QPERF = re.compile(r"^(\w+):\s*\n\s+latency\s*=\s*([\d.]+)\s*(ns|us|ms|sec|s)\b", re.MULTILINE)
_WRK_LATENCY = re.compile(
    r"^\s+Latency\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)", re.MULTILINE
)
_WRK_QPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class UdpResult:
    bandwidth_bps: float  # what the receiver got
    lost_pct: float


@dataclass(frozen=True, slots=True)
class WrkResult:
    qps: float
    avg_us: float
    stdev_us: float
    max_us: float


def time_us(value: str, unit: str) -> float:
    """``value`` ``unit`` (ns, us, ms, s, sec) in microseconds."""
    try:
        return float(value) * _TIME_US[unit]
    except (KeyError, ValueError) as exc:
        raise BenchError(f"not a time: {value!r} {unit!r}") from exc


def qperf_latencies(text: str) -> dict[str, float]:
    """``{"tcp_lat": us, "udp_lat": us}`` from qperf's report (plain or ``-vu``)."""
    found = {m.group(1): time_us(m.group(2), m.group(3)) for m in _QPERF.finditer(text)}
    if not found:
        raise BenchError(f"no latency in qperf output: {text.strip()[:200]!r}")
    return found


def _iperf3_end(text: str) -> dict[str, object]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BenchError(f"iperf3 printed no JSON: {text.strip()[:200]!r}") from exc
    if "error" in doc:
        raise BenchError(f"iperf3: {doc['error']}")
    end: dict[str, object] = doc["end"]
    return end


def iperf3_tcp(text: str) -> float:
    """Bits/s the receiver got, from ``iperf3 -J``."""
    received = _iperf3_end(text).get("sum_received")
    if not isinstance(received, dict):
        raise BenchError(f"iperf3 reported no receiver sum: {text.strip()[:200]!r}")
    return float(received["bits_per_second"])


def iperf3_udp(text: str) -> UdpResult:
    """Received bits/s and lost datagrams in % of those sent, from ``iperf3 -u -J``."""
    end = _iperf3_end(text)
    received = end.get("sum_received", end.get("sum"))
    if not isinstance(received, dict):
        raise BenchError(f"iperf3 reported no UDP sum: {text.strip()[:200]!r}")
    if not received.get("bytes"):
        # Nothing arrived (e.g. every 4 KiB datagram lost a fragment): iperf3 then says 0 % lost.
        return UdpResult(0.0, 100.0)
    return UdpResult(float(received["bits_per_second"]), float(received["lost_percent"]))


def wrk(text: str) -> WrkResult:
    """Requests/s and the latency average, stdev and max from wrk's report."""
    lat, qps = _WRK_LATENCY.search(text), _WRK_QPS.search(text)
    if lat is None or qps is None:
        raise BenchError(f"unreadable wrk output: {text.strip()[:300]!r}")
    avg, stdev, top = (time_us(lat.group(i), lat.group(i + 1)) for i in (1, 3, 5))
    return WrkResult(float(qps.group(1)), avg, stdev, top)


def seed_value(cell: str) -> float:
    """A seed cell in our unit: "12.7 us" -> 12.7, "7.67 Gbits/sec" -> 7.67e9, "1.8%" -> 1.8."""
    text = cell.strip()
    if text.endswith("%"):
        return float(text[:-1])
    m = re.fullmatch(r"([\d.]+)\s*([A-Za-z/]+)?", text)
    if m is None:
        raise BenchError(f"unreadable seed value {cell!r}")
    unit = (m.group(2) or "").lower()
    if not unit:
        return float(m.group(1))
    if unit in _RATE:
        return float(m.group(1)) * _RATE[unit]
    return time_us(m.group(1), unit)
