"""Client of ``GET /api/v1/flows``: a running service's flows for a window, as a report's table.

``mirrorctl report --server URL`` (repeatable) asks every service for the same absolute window
and only the columns a report reads, then reports over the union of the rows: percentiles and
top-N are computed over all flows, never combined from per-server answers. The answer is spooled
to a temporary file and parsed by arrow's multithreaded JSON reader, as stored records are.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from exporters._recordparquet import read_jsonl
from exporters._recordschema import REPORT_COLUMNS, record_schema
from exporters._reportload import encoded
from exporters._reportwindow import Window

_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class ServerFlows:
    """One service's answer: its rows, or why it gave none."""

    url: str
    table: pa.Table | None
    error: str | None = None


def flows_url(base: str, window: Window, columns: tuple[str, ...] = REPORT_COLUMNS) -> str:
    """The flows API's URL on ``base`` for ``window`` and ``columns``, as JSON lines."""
    params: dict[str, str] = {"columns": ",".join(columns), "format": "jsonl"}
    if window.start is not None:
        params["start"] = repr(window.start)
    if window.end is not None:
        params["end"] = repr(window.end)
    if window.start is None and window.end is None:
        params["start"] = "0"  # all the service keeps: the API's default is the last hour
    return base.rstrip("/") + "/api/v1/flows?" + urllib.parse.urlencode(params)


def fetch_flows(
    base: str,
    window: Window,
    headers: Mapping[str, str] | None = None,
    *,
    timeout: float = _TIMEOUT_S,
    context: ssl.SSLContext | None = None,
) -> ServerFlows:
    """``base``'s flows in ``window`` (``REPORT_COLUMNS``); an unreachable server is an error.

    ``headers`` carry the credentials: the service's bearer token, or through a Kubernetes API
    server's proxy the user's credential and the token in ``X-Mirrorscope-Token``; ``context``
    is the TLS context (the API server's CA, a client certificate).
    """
    if urllib.parse.urlsplit(base).scheme not in ("http", "https"):
        return ServerFlows(base, None, "not an http:// or https:// URL")
    req = urllib.request.Request(flows_url(base, window))  # noqa: S310 - http(s) checked above
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    with tempfile.TemporaryDirectory(prefix="mirrorscope-flows-") as tmp:
        spool = Path(tmp) / "flows.jsonl"
        try:
            with (
                urllib.request.urlopen(req, timeout=timeout, context=context) as resp,  # noqa: S310
                spool.open("wb") as out,
            ):
                shutil.copyfileobj(resp, out, 1 << 20)
        except urllib.error.HTTPError as e:
            detail = e.read(300).decode("utf-8", "replace").strip()
            return ServerFlows(base, None, f"HTTP {e.code}: {detail}")
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", None) or e
            return ServerFlows(base, None, str(reason))
        if spool.stat().st_size == 0:
            return ServerFlows(base, encoded(_empty()))
        return ServerFlows(base, encoded(read_jsonl(spool, REPORT_COLUMNS)))


def _empty() -> pa.Table:
    return record_schema(REPORT_COLUMNS).empty_table()


def union(answers: list[ServerFlows]) -> pa.Table:
    """Every answering server's rows as one table (their dictionaries unified)."""
    tables = [a.table for a in answers if a.table is not None]
    if not tables:
        return encoded(_empty())
    schema = tables[0].schema
    return pa.concat_tables([t.cast(schema) for t in tables])
