"""The records of every corpus pcap, unchanged: the net under the compiled hot path (issue 15).

Every capture of ``../shared/corpus/tcpdump-tests`` and ``../shared/corpus/zeek-dev/traces``
(gzip-compressed ones unpacked to a temporary file) goes through the public API,
``mirrorctl.analyse_pcap``, and its records are compared with the stored golden output in
``tests/golden/records.jsonl``: one JSON line per record, ``{"file": NAME, "record": {...}}`` with
the record's keys sorted and its ``uid`` removed (uids are random per run), plus one
``{"file": NAME, "error": ...}`` line for a capture the reader stops on. Records are compared as
parsed values, so a serializer may format floats or escape text differently.

Regenerate after an intended change of the records (and say why in the commit):
``PYTHONPATH=. python -m tests.unit.test_golden_records --regen``
"""

from __future__ import annotations

import gzip
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from analyzers import PipelineOptions
from capture import CaptureError
from mirrorctl import analyse_pcap

SHARED = Path(__file__).resolve().parents[3] / "shared" / "corpus"
CORPORA = (SHARED / "tcpdump-tests", SHARED / "zeek-dev" / "traces")
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "records.jsonl"
#: The service's default table (2 M flows) costs ~25 ms to allocate per file; no corpus file has
#: nearly this many flows, so nothing is evicted and the records are the default options' own.
_OPTIONS = PipelineOptions(max_flows=65_536)


def corpus_files() -> list[Path]:
    return sorted(p for root in CORPORA if root.is_dir() for p in root.iterdir() if p.is_file())


def _key(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def golden_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The golden lines of one capture, records in a canonical order (sorted by their JSON)."""
    name = _key(path)
    with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
        read = path
        if path.suffix == ".gz":
            read = Path(tmp) / path.stem
            with gzip.open(path, "rb") as src, read.open("wb") as dst:
                shutil.copyfileobj(src, dst)
        records: list[dict[str, Any]] = []
        error: str | None = None
        try:
            for record in analyse_pcap(read, options=_OPTIONS):
                value = json.loads(record.to_json_line())
                del value["uid"]
                records.append(value)
        except CaptureError as e:
            error = str(e).replace(str(read), name)
    records.sort(key=lambda r: json.dumps(r, sort_keys=True))
    for r in records:
        yield {"file": name, "record": r}
    if error is not None:
        yield {"file": name, "error": error}


def _stored() -> dict[str, list[dict[str, Any]]]:
    by_file: dict[str, list[dict[str, Any]]] = {}
    with GOLDEN.open() as f:
        for line in f:
            value = json.loads(line)
            by_file.setdefault(value["file"], []).append(value)
    return by_file


def test_corpora_are_there() -> None:
    """Both corpora are beside the repository: the comparison below covers 848 captures."""
    assert len(corpus_files()) >= 840


def test_every_corpus_capture_gives_its_golden_records() -> None:
    """Each capture's records (and the damage the reader stops at) parse to the stored values."""
    stored = _stored()
    files = corpus_files()
    assert {_key(p) for p in files} >= set(stored)
    differing = [_key(p) for p in files if list(golden_lines(p)) != stored.get(_key(p), [])]
    assert differing == [], f"records differ from {GOLDEN.name} for {differing[:10]}"


def regen() -> None:
    """Write the golden file from today's code."""
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    with GOLDEN.open("w") as f:
        for path in corpus_files():
            for line in golden_lines(path):
                f.write(json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["--regen"]:
        sys.exit("usage: python -m tests.unit.test_golden_records --regen")
    regen()
    pytest.main([__file__, "-q"])
