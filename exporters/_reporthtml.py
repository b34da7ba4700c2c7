"""The report as one self-contained HTML page: plotly charts with plotly.js inlined, and tables.

No network fetch at all (an air-gapped cluster opens it as well as a laptop): the page carries
plotly.js once, in the first chart, and every chart's data. Charts: bytes over time per top pod,
a Sankey of the top pod pairs, the protocol mix, the handshake RTT distribution.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from exporters._reportagg import Report

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { margin-bottom: 0.2em; } .meta { color: #555; margin: 0.1em 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 1em; }
table { border-collapse: collapse; font-size: 0.9em; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th { background: #f0f0f0; } td:first-child, td:nth-child(2) { text-align: left; }
"""


def _bytes_over_time(report: Report) -> go.Figure:
    fig = go.Figure()
    for endpoint, rows in report.series.groupby("endpoint", sort=False):
        fig.add_trace(go.Scatter(x=rows["time"], y=rows["bytes"], mode="lines", name=endpoint))
    fig.update_layout(
        title=f"Bytes per {report.interval_s:g} s, top pods", yaxis_title="wire bytes"
    )
    return fig


def _pairs_sankey(report: Report, top: int) -> go.Figure:
    pairs = report.pairs.head(top)
    sources = [f"{s} " for s in pairs["src"]]  # a pod on both sides is two nodes: a trailing space
    names = list(dict.fromkeys([*sources, *pairs["dst"]]))
    index = {n: i for i, n in enumerate(names)}
    link = {
        "source": [index[s] for s in sources],
        "target": [index[d] for d in pairs["dst"]],
        "value": pairs["bytes"].tolist(),
    }
    fig = go.Figure(go.Sankey(node={"label": names, "pad": 12}, link=link))
    fig.update_layout(title=f"Top {len(pairs)} pod pairs by bytes (client → server)")
    return fig


def _protocols(report: Report) -> go.Figure:
    p = report.protocols
    fig = go.Figure(go.Pie(labels=p["proto"], values=p["bytes"], hole=0.4))
    fig.update_layout(title="Protocol mix (bytes)")
    return fig


def _rtt(report: Report) -> go.Figure:
    # the report's log histogram, its 1 % buckets joined into at most 60 bars up to p99.9
    hist = report.rtt
    lower, upper = hist.edges()
    counts = hist.count
    if len(counts):
        cut = int(np.searchsorted(np.cumsum(counts), 0.999 * counts.sum())) + 1
        lower, upper, counts = lower[:cut], upper[:cut], counts[:cut]
    group = np.arange(len(counts)) * 60 // max(len(counts), 1)
    bars = np.flatnonzero(np.diff(group, prepend=-1))
    lo_ms = lower[bars] * 1000.0
    hi_ms = upper[np.append(bars[1:] - 1, len(counts) - 1)] * 1000.0 if len(bars) else lo_ms
    flows = np.add.reduceat(counts, bars) if len(bars) else counts
    fig = go.Figure(go.Bar(x=(lo_ms + hi_ms) / 2, y=flows, width=hi_ms - lo_ms))
    fig.update_layout(title="TCP handshake RTT (SYN → SYN-ACK)", xaxis_title="ms")
    return fig


def _table(df: pd.DataFrame) -> str:
    return str(df.to_html(index=False, border=0, escape=True))


def render_html(report: Report, *, by: str = "pod", top: int = 10) -> str:
    """The page: window and source, TCP and DNS health, four charts, the tables."""
    charts = [
        ("chart-bytes", _bytes_over_time(report)),
        ("chart-pairs", _pairs_sankey(report, top)),
        ("chart-protocols", _protocols(report)),
        ("chart-rtt", _rtt(report)),
    ]
    divs = [
        pio.to_html(
            fig, include_plotlyjs=(i == 0), full_html=False, div_id=div_id, default_height=420
        )
        for i, (div_id, fig) in enumerate(charts)
    ]
    t, d = report.tcp, report.dns
    esc = html.escape
    health = (
        f"<p class='meta'>TCP: {t['flows']} flows, retransmission rate "
        f"{t['retransmission_rate']:.4%}, {t['resets']} resets, REJ {t['rej']}, S0 {t['s0']}, "
        f"handshake RTT p50/p95/p99 {t['rtt_p50_ms']}/{t['rtt_p95_ms']}/{t['rtt_p99_ms']} ms</p>"
        f"<p class='meta'>DNS: {d['queries']} queries, NXDOMAIN {d['nxdomain']}, SERVFAIL "
        f"{d['servfail']}, latency p50/p95/p99 {d['latency_p50_ms']}/{d['latency_p95_ms']}/"
        f"{d['latency_p99_ms']} ms</p>"
    )
    tables = [("Pods", report.pods), ("Namespaces", report.namespaces)]
    tables += [("Pod pairs", report.pairs), ("Ports", report.ports)]
    if report.apps is not None:
        tables.append(("Application protocols (tshark)", report.apps))
    if report.notices is not None and report.notice_counts is not None:
        tables.append(("Notices by note and source", report.notice_counts))
        tables.append(("Notices (newest first)", report.notices))
    if by not in ("pod", "namespace", "pair", "port"):
        tables.insert(0, (f"By {by}", report.table(by)))
    body = "\n".join(
        f"<h2>{esc(title)}</h2>\n{_table(df.head(top if title != 'Pods' else max(top, 50)))}"
        for title, df in tables
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mirrorscope flow report</title>
<style>{_STYLE}</style></head>
<body>
<h1>mirrorscope flow report</h1>
<p class="meta" id="window">Window: {esc(report.window.describe())} (records that ended in it)</p>
<p class="meta" id="source">Source: {esc(report.source)}</p>
<p class="meta">Records: {report.records}</p>
{health}
<div class="grid">
{"".join(f'<div class="chart">{div}</div>' for div in divs)}
</div>
{body}
</body></html>
"""
