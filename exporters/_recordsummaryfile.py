"""A completed records file's summary, stored beside it as ``<records file>.summary.json``.

Written when the service completes a records file (``jsonl_to_parquet``), and by a report that
finds one missing: a report over whole files reads only these (an hour of 360 k records in ~1 MB
of JSON instead of 12 MB of Parquet columns to decode and aggregate). A summary of another
version, or one that cannot be read, is ignored and rebuilt from its records. Written under a
temporary name and renamed, so a reader never sees half a summary; JSON because it is what every
tool on a node reads, and at this size it parses in milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from exporters._recordstore import summary_path
from exporters._recordsummary import Summary
from exporters._recordsummaryhist import LogHistogram

log = logging.getLogger(__name__)

_VERSION = 1
_FRAMES = ("endpoints", "pairs", "protocols", "ports", "series")
_TEXT = ("namespace", "pod", "proto")


def _frame_json(df: pd.DataFrame) -> dict[str, list[Any]]:
    return {str(c): df[c].tolist() for c in df.columns}


def _frame(doc: dict[str, list[Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        {c: np.asarray(v, object if c in _TEXT else np.int64) for c, v in doc.items()}
    )


def to_json(summary: Summary) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "version": _VERSION,
        "step": summary.step,
        "records": summary.records,
        "first_end": summary.first_end,
        "last_end": summary.last_end,
        "counts": summary.counts,
        "rtt": summary.rtt.to_json(),
        "dns_latency": summary.dns_latency.to_json(),
    }
    doc.update({name: _frame_json(getattr(summary, name)) for name in _FRAMES})
    return doc


def from_json(doc: dict[str, Any]) -> Summary:
    return Summary(
        step=float(doc["step"]),
        records=int(doc["records"]),
        first_end=doc["first_end"],
        last_end=doc["last_end"],
        counts={str(k): int(v) for k, v in doc["counts"].items()},
        rtt=LogHistogram.from_json(doc["rtt"]),
        dns_latency=LogHistogram.from_json(doc["dns_latency"]),
        **{name: _frame(doc[name]) for name in _FRAMES},
    )


def read_summary(records: Path, step: float) -> Summary | None:
    """The stored summary of ``records`` by ``step`` seconds; None if missing or unusable."""
    path = summary_path(records)
    try:
        doc = json.loads(path.read_bytes())
        if doc.get("version") != _VERSION or doc.get("step") != step:
            return None
        return from_json(doc)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("records: ignoring the summary %s (%s); it is rebuilt", path, e)
        return None


def write_summary(records: Path, summary: Summary) -> bool:
    """Store ``summary`` beside ``records``; False (logged) where the directory is read-only."""
    path = summary_path(records)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(json.dumps(to_json(summary), separators=(",", ":")), encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        log.info("records: could not store the summary %s: %s", path, e)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        return False
    return True
