"""A report from a summary of records: the tables, health figures and series users read.

Records become a report in two steps: ``exporters._recordsummary`` reduces them to additive sums
(the summaries stored beside the record files are the same thing), and ``report_of`` names, sorts
and cuts those sums. ``build_report`` does both for a DataFrame of records; a report over a
records directory merges the stored summaries instead (``exporters._reportload``), and the two
give the same report. Percentiles come from log histograms, within ``PRECISION`` (0.5 %) of the
exact ones, whichever way the report was made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from exporters._recordsummary import Summary, summarize
from exporters._recordsummaryhist import LogHistogram
from exporters._reportwindow import Window

#: The first columns of the per-pod table, in this order (CSV's contract).
POD_COLUMNS = ("namespace", "pod", "tx_bytes", "rx_bytes", "tx_packets", "rx_packets", "flows")
_INTERVALS = (10.0, 60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 86400.0)
_MAX_BUCKETS = 120
_QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class Report:
    """Everything one report says; ``exporters._reportrender`` turns it into a format."""

    window: Window  # as asked, its open sides closed by the first/last record end
    source: str
    records: int
    interval_s: float
    pods: pd.DataFrame  # POD_COLUMNS, then tcp_retrans, tcp_resets; by bytes, descending
    namespaces: pd.DataFrame
    pairs: pd.DataFrame  # src, dst (namespace/pod), flows, bytes, packets
    protocols: pd.DataFrame
    ports: pd.DataFrame
    tcp: dict[str, Any]
    dns: dict[str, Any]
    series: pd.DataFrame  # time, endpoint, bytes, packets, flows: the top pods per interval
    rtt: LogHistogram  # handshake RTT (seconds) of the TCP flows with one, for the distribution
    apps: pd.DataFrame | None = None  # --dissect: tshark's application protocols
    #: The security notices of the window (``exporters._noticeread.NOTICE_COLUMNS``, newest
    #: first) and their counts by note and source; None where the source keeps none.
    notices: pd.DataFrame | None = None
    notice_counts: pd.DataFrame | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def table(self, by: str) -> pd.DataFrame:
        """The table ``--by`` names."""
        tables = {
            "pod": self.pods,
            "namespace": self.namespaces,
            "pair": self.pairs,
            "protocol": self.protocols,
            "port": self.ports,
        }
        return tables[by]


#: The step of the stored summaries' series: every report interval of a minute or more is a
#: whole number of them.
SUMMARY_STEP = 60.0


def report_interval(window: Window) -> float:
    """The series interval of a report over ``window`` (both sides known): at most 120 buckets."""
    span = (window.end or 0.0) - (window.start or 0.0)
    for step in _INTERVALS:
        if span / step <= _MAX_BUCKETS:
            return step
    return _INTERVALS[-1]


def closed(window: Window, summary: Summary) -> Window:
    """``window`` with an open side closed by the first or last record end."""
    if summary.first_end is None or summary.last_end is None:
        return window
    return Window(
        window.start if window.start is not None else summary.first_end,
        window.end if window.end is not None else summary.last_end + 1e-6,
    )


def _labels(endpoints: pd.DataFrame) -> pd.Series:
    ns = endpoints["namespace"]
    return ns.where(ns == "", ns + "/") + endpoints["pod"]


def _by_bytes(df: pd.DataFrame, total: pd.Series, ties: list[str]) -> pd.DataFrame:
    """Rows by ``total`` descending, equal totals by ``ties``: the same order however merged."""
    ranks = [pd.factorize(df[c], sort=True)[0] for c in reversed(ties)]
    order = np.lexsort([*ranks, -total.to_numpy(np.int64)])  # the last key sorts first
    return df.iloc[order].reset_index(drop=True)


def _pods(s: Summary) -> pd.DataFrame:
    pods = s.endpoints[["namespace", "pod", *POD_COLUMNS[2:], "tcp_retrans", "tcp_resets"]]
    return _by_bytes(pods, pods["tx_bytes"] + pods["rx_bytes"], ["namespace", "pod"])


def _namespaces(pods: pd.DataFrame) -> pd.DataFrame:
    ns = pods.assign(namespace=pods["namespace"].where(pods["namespace"] != "", pods["pod"]))
    out = ns.drop(columns=["pod"]).groupby("namespace", as_index=False).sum()
    out.insert(1, "pods", ns.groupby("namespace")["pod"].nunique().to_numpy())
    return _by_bytes(out, out["tx_bytes"], ["namespace"])


def _pairs(s: Summary) -> pd.DataFrame:
    names = _labels(s.endpoints).to_numpy()
    p = s.pairs
    out = pd.DataFrame({"src": names[p["src"].to_numpy()], "dst": names[p["dst"].to_numpy()]})
    out["flows"] = p["flows"].to_numpy()
    out["bytes"] = (p["bytes_to_dst"] + p["bytes_to_src"]).to_numpy()
    for c in ("bytes_to_dst", "bytes_to_src", "packets"):
        out[c] = p[c].to_numpy()
    return _by_bytes(out, out["bytes"], ["src", "dst"])


def _mix(mix: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    out = mix[[*keys, "flows", "bytes", "packets"]]
    return _by_bytes(out, out["bytes"], keys)


def _quantiles(hist: LogHistogram, scale: float) -> dict[str, float | None]:
    qs = hist.quantiles(_QUANTILES)
    return {
        name: None if q is None else round(q * scale, 3)
        for name, q in zip(("p50", "p95", "p99"), qs, strict=True)
    }


def _tcp(s: Summary) -> dict[str, Any]:
    c = s.counts
    retrans, packets = c["tcp_retrans"], c["tcp_packets"]
    out: dict[str, Any] = {
        "flows": c["tcp_flows"],
        "packets": packets,
        "retransmissions": retrans,
        "retransmission_rate": round(retrans / packets, 6) if packets else 0.0,
        "resets": c["tcp_resets"],
        "flows_reset": c["tcp_flows_reset"],
        "rej": c["tcp_rej"],
        "s0": c["tcp_s0"],
    }
    out.update({f"rtt_{k}_ms": v for k, v in _quantiles(s.rtt, 1000.0).items()})
    return out


def _dns(s: Summary) -> dict[str, Any]:
    c = s.counts
    out: dict[str, Any] = {
        "queries": c["dns_queries"],
        "flows": c["dns_flows"],
        "nxdomain": c["dns_nxdomain"],
        "servfail": c["dns_servfail"],
    }
    out.update({f"latency_{k}_ms": v for k, v in _quantiles(s.dns_latency, 1000.0).items()})
    return out


def _series(s: Summary, interval: float, top: list[str]) -> pd.DataFrame:
    labels = _labels(s.endpoints).to_numpy()
    chosen = np.flatnonzero(np.isin(labels, top))
    rows = s.series[np.isin(s.series["endpoint"].to_numpy(), chosen)]
    # a summary bucket lies in one interval: the interval is a whole number of steps
    bucket = (rows["bucket"].to_numpy(np.float64) * s.step // interval).astype(np.int64)
    out = (
        rows.assign(bucket=bucket)
        .groupby(["bucket", "endpoint"], as_index=False)[["bytes", "packets", "flows"]]
        .sum()
    )
    return (
        pd.DataFrame(
            {
                "time": pd.to_datetime(out["bucket"] * interval, unit="s", utc=True),
                "endpoint": labels[out["endpoint"].to_numpy()].astype(object),
                "bytes": out["bytes"].astype(np.int64),
                "packets": out["packets"].astype(np.int64),
                "flows": out["flows"].astype(np.int64),
            }
        )
        .sort_values(["time", "endpoint"])
        .reset_index(drop=True)
    )


def report_of(
    summary: Summary,
    window: Window,
    source: str,
    *,
    top: int = 10,
    interval_s: float | None = None,
) -> Report:
    """The report of the records ``summary`` sums (those that ended in ``window``)."""
    window = closed(window, summary)
    interval = interval_s or report_interval(window)
    if (interval / summary.step) % 1:
        raise ValueError(f"a {interval} s interval from a summary by {summary.step} s")
    pods = _pods(summary)
    top_names = _labels(pods).head(top).tolist()
    return Report(
        window=window,
        source=source,
        records=summary.records,
        interval_s=interval,
        pods=pods,
        namespaces=_namespaces(pods),
        pairs=_pairs(summary),
        protocols=_mix(summary.protocols, ["proto"]),
        ports=_mix(summary.ports, ["proto", "port"]),
        tcp=_tcp(summary),
        dns=_dns(summary),
        series=_series(summary, interval, top_names),
        rtt=summary.rtt,
    )


def build_report(
    df: pd.DataFrame,
    window: Window,
    source: str,
    *,
    top: int = 10,
    interval_s: float | None = None,
) -> Report:
    """The report of records ``df`` (already cut to ``window``) from ``source``."""
    if interval_s is None:
        if not df.empty:
            end = df["ts"] + df["duration"]
            window = Window(
                window.start if window.start is not None else float(end.min()),
                window.end if window.end is not None else float(end.max()) + 1e-6,
            )
        interval_s = report_interval(window)
    return report_of(summarize(df, interval_s), window, source, top=top, interval_s=interval_s)
