"""A ``Report`` as text: ``table`` (terminal), ``csv``, ``json``, ``markdown``; ``html`` elsewhere.

CSV is the ``--by`` table alone, every row, so it loads back with ``pandas.read_csv``. JSON is
one object: ``window``, ``source``, ``records``, ``by``, ``rows`` (the ``--by`` table, every
row), and the other sections (``pods``, ``namespaces``, ``pairs``, ``protocols``, ``ports``,
``series``, cut to ``top`` rows, and ``tcp``, ``dns``; ``notice_counts`` and every notice when the
source keeps them); ``pandas.DataFrame(doc["rows"])`` gives the table back.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd

from exporters._reportagg import Report
from exporters._reportnames import FORMATS
from exporters._reportwindow import iso


def _head(report: Report) -> list[str]:
    w = report.window
    return [
        f"window: {w.describe()} (records that ended in it)",
        f"source: {report.source}",
        f"records: {report.records}",
    ]


def _health(report: Report) -> list[str]:
    t, d = report.tcp, report.dns
    return [
        f"TCP: {t['flows']} flows, retransmission rate {t['retransmission_rate']:.4%}, "
        f"{t['resets']} resets ({t['flows_reset']} flows), REJ {t['rej']}, S0 {t['s0']}, "
        f"handshake RTT p50/p95/p99 {t['rtt_p50_ms']}/{t['rtt_p95_ms']}/{t['rtt_p99_ms']} ms",
        f"DNS: {d['queries']} queries, NXDOMAIN {d['nxdomain']}, SERVFAIL {d['servfail']}, "
        f"latency p50/p95/p99 {d['latency_p50_ms']}/{d['latency_p95_ms']}/"
        f"{d['latency_p99_ms']} ms",
    ]


def _markdown_table(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.astype(str).itertuples(index=False):  # a --top cut: tens of rows
        lines.append("| " + " | ".join(v.replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def _sections(report: Report, by: str) -> list[tuple[str, pd.DataFrame]]:
    shown = [(f"by {by}", report.table(by))]
    if by != "pod":
        shown.append(("top talkers", report.pods))
    if by != "pair":
        shown.append(("top pairs", report.pairs))
    if by != "protocol":
        shown.append(("protocols", report.protocols))
    if report.apps is not None:
        shown.append(("application protocols (tshark)", report.apps))
    if report.notice_counts is not None and report.notices is not None:
        shown.append(("notices by note and source", report.notice_counts))
        shown.append(("notices (newest first)", report.notices))
    return shown


def _json_value(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = df.copy()
    for c in out.columns:
        if out[c].dtype.kind == "M":  # times as the records write them (naive ones are UTC)
            when = pd.to_datetime(out[c], utc=True)
            out[c] = when.map(lambda t: iso(t.timestamp()), na_action="ignore")
    # every time column is text by now; "iso" says so to pandas, whose default is changing
    rows: list[dict[str, Any]] = json.loads(out.to_json(orient="records", date_format="iso"))
    return rows


def render(report: Report, fmt: str, by: str = "pod", top: int | None = None) -> str:
    """``report`` in ``fmt``; ``top`` cuts the tables of table/markdown/json's sections."""
    n = 10 if top is None else top
    if fmt == "csv":
        table = report.table(by)
        return str(table.head(top).to_csv(index=False) if top else table.to_csv(index=False))
    if fmt == "json":
        doc: dict[str, Any] = {
            "window": {
                "start": iso(report.window.start) if report.window.start is not None else None,
                "end": iso(report.window.end) if report.window.end is not None else None,
                "counts": "records that ended in the window (ts + duration)",
            },
            "source": report.source,
            "records": report.records,
            "by": by,
            "rows": _json_value(report.table(by).head(top) if top else report.table(by)),
            "tcp": report.tcp,
            "dns": report.dns,
            "interval_s": report.interval_s,
        }
        for name in ("pods", "namespaces", "pairs", "protocols", "ports", "series"):
            frame: pd.DataFrame = getattr(report, name)
            doc[name] = _json_value(frame if name == "series" else frame.head(n))
        if report.apps is not None:
            doc["apps"] = _json_value(report.apps)
        if report.notices is not None and report.notice_counts is not None:
            doc["notice_counts"] = _json_value(report.notice_counts)
            doc["notices"] = _json_value(report.notices)  # every one: they are few
        return json.dumps(doc, indent=1) + "\n"
    if fmt == "markdown":
        parts = ["# Flow report", "", *(f"- {line}" for line in _head(report)), ""]
        parts += [f"- {line}" for line in _health(report)] + [""]
        for title, df in _sections(report, by):
            parts += [f"## {title}", "", _markdown_table(df.head(n)), ""]
        return "\n".join(parts)
    if fmt == "table":
        buf = io.StringIO()
        for line in _head(report) + _health(report):
            print(line, file=buf)
        for title, df in _sections(report, by):
            print(f"\n{title}:", file=buf)
            print(df.head(n).to_string(index=False) if not df.empty else "  (none)", file=buf)
        return buf.getvalue()
    if fmt == "html":
        from exporters._reporthtml import render_html  # noqa: PLC0415 - plotly only for HTML

        return render_html(report, by=by, top=n)
    raise ValueError(f"unknown report format {fmt!r}; one of {', '.join(FORMATS)}")
