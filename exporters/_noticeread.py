"""Reading the notice log back: the notices of a window from ``notices-*.jsonl`` in a records
directory, and their counts by note and source pod, for ``GET /api/v1/notices`` and the report.

The file being written (``….jsonl.part``) is read too: the latest notices are the ones an operator
looks for. Its last line may be half written; a line that is not JSON is skipped. Notices are
few (one per note, source and target per suppression interval), so a window's notices are read
whole, newest first.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from exporters._reportwindow import Window

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
    for line in text.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue  # the writer's last line, half written
        if isinstance(doc, dict) and isinstance(doc.get("ts"), int | float):
            yield doc


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
