"""Reading the notice log back: the notices of a window from ``notices-*.jsonl`` in a records
directory or from a service's ``GET /api/v1/notices``, and their counts by note and source pod,
for that endpoint and the report's notices sections.

The file being written (``….jsonl.part``) is read too: the latest notices are the ones an operator
looks for. Its last line may be half written; a line that is not JSON is skipped. Notices are
few (one per note, source and target per suppression interval), so a window's notices are read
whole, newest first.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from exporters._reportagg import Report
from exporters._reportwindow import Window, iso

log = logging.getLogger(__name__)

NOTICES_GLOB = "notices-*.jsonl*"


def notice_files(directory: Path) -> list[Path]:
    """The notice logs in ``directory``: closed ones and the one being written."""
    return sorted(
        p for p in directory.glob(NOTICES_GLOB) if p.name.endswith((".jsonl", ".jsonl.part"))
    )


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:  # rotated or pruned since the listing
        return
    yield from parse_notice_lines(text)  # the writer's last line may be half written


def load_notices(directory: Path, window: Window, limit: int | None = None) -> list[dict[str, Any]]:
    """The notices whose time falls in ``window`` (``[start, end)``), newest first, at most
    ``limit``; each as ``Notice.as_dict`` wrote it."""
    found = [
        n
        for path in notice_files(directory)
        for n in _lines(path)
        if (window.start is None or n["ts"] >= window.start)
        and (window.end is None or n["ts"] < window.end)
    ]
    found.sort(key=lambda n: n["ts"], reverse=True)
    return found if limit is None else found[:limit]


def source_of(notice: dict[str, Any]) -> str:
    """``namespace/pod`` of the notice's source, else its address (an external source)."""
    ns, pod = notice.get("src_namespace"), notice.get("src_pod")
    if ns and pod:
        return f"{ns}/{pod}"
    return str(notice.get("src", ""))


def notice_counts(notices: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Notices counted by note and source, most first: ``{"note", "source", "notices"}``."""
    counts = Counter((str(n.get("note")), source_of(n)) for n in notices)
    return [
        {"note": note, "source": source, "notices": k}
        for (note, source), k in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


#: The report's notices table: newest first.
NOTICE_COLUMNS = ("time", "note", "source", "target", "count", "msg", "node")


def notices_frame(notices: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """The notices as the report's table (``NOTICE_COLUMNS``), newest first."""
    rows = [
        (iso(float(n["ts"])), str(n.get("note")), source_of(n), str(n.get("target", "")),
         int(n.get("count", 0)), str(n.get("msg", "")), str(n.get("node", "")))
        for n in sorted(notices, key=lambda n: float(n["ts"]), reverse=True)
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=list(NOTICE_COLUMNS))


def fetch_notices(
    base: str,
    window: Window,
    headers: Mapping[str, str] | None = None,
    *,
    timeout: float = 60.0,
    context: ssl.SSLContext | None = None,
) -> list[dict[str, Any]] | str:
    """``base``'s notices in ``window`` (every one: the limit is the endpoint's maximum), or
    why there are none: an error text, as ``fetch_flows`` reports it."""
    from exporters._webnotices import MAX_LIMIT  # noqa: PLC0415 - the web framework on demand

    params = {"limit": str(MAX_LIMIT), "start": repr(window.start or 0.0)}
    if window.end is not None:
        params["end"] = repr(window.end)
    url = base.rstrip("/") + "/api/v1/notices?" + urllib.parse.urlencode(params)
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        return "not an http:// or https:// URL"
    req = urllib.request.Request(url, headers=dict(headers or {}))  # noqa: S310 - checked
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:  # noqa: S310
            doc = json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code}: {e.read(300).decode('utf-8', 'replace').strip()}"
    except (urllib.error.URLError, OSError, ValueError) as e:
        return str(getattr(e, "reason", None) or e)
    notices = doc.get("notices") if isinstance(doc, dict) else None
    if not isinstance(notices, list):
        return "the answer holds no notices list"
    return [n for n in notices if isinstance(n, dict) and isinstance(n.get("ts"), int | float)]


def with_notices(report: Report, notices: Iterable[dict[str, Any]]) -> Report:
    """``report`` with its notices sections: the list and the counts by note and source."""
    found = list(notices)
    counts = pd.DataFrame(notice_counts(found), columns=["note", "source", "notices"])
    return dataclasses.replace(report, notices=notices_frame(found), notice_counts=counts)


def parse_notice_lines(text: str) -> list[dict[str, Any]]:
    """Notices written as JSON lines (``capture read --notices``, ``analyse_pcap``)."""
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("ts"), int | float):
            out.append(doc)
    return out
