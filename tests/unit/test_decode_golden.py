"""The decoded columns of every corpus capture, unchanged: the net under the compiled decoder.

Every capture of ``../shared/corpus/tcpdump-tests`` and ``../shared/corpus/zeek-dev/traces``
(gzip-compressed ones unpacked to a temporary file) is read and decoded; a SHA-256 over the bytes
of every ``DecodedBatch`` column of every batch (in field order) is compared with the one stored in
``tests/golden/decoded.json``. A capture the reader stops on is hashed up to the damage. The
decode made while walking a pcap file (``DecodingWalker``, what the pipeline reads files with) must
hash to the same value.

Regenerate after an intended change of the decoder (say which files changed, and why, in the
commit): ``PYTHONPATH=. python -m tests.unit.test_decode_golden --regen``
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from analyzers import DecodedBatch, decode
from analyzers._decodewalk import DecodingWalker
from capture import CaptureError, open_capture_file

SHARED = Path(__file__).resolve().parents[3] / "shared" / "corpus"
CORPORA = (SHARED / "tcpdump-tests", SHARED / "zeek-dev" / "traces")
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "decoded.json"
_FIELDS = [f.name for f in dataclasses.fields(DecodedBatch)]


def corpus_files() -> list[Path]:
    return sorted(p for root in CORPORA if root.is_dir() for p in root.iterdir() if p.is_file())


def _key(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def column_digest(path: Path, *, walking: bool = False) -> str:
    """SHA-256 of the decoded columns of every frame of the capture at ``path`` (decoded as the
    pcap records are walked if ``walking``)."""
    digest = hashlib.sha256()
    with tempfile.TemporaryDirectory(prefix="decgolden-") as tmp:
        read = path
        if path.suffix == ".gz":
            read = Path(tmp) / path.stem
            with gzip.open(path, "rb") as src, read.open("wb") as dst:
                shutil.copyfileobj(src, dst)
        try:
            walker = DecodingWalker() if walking else None
            with open_capture_file(read, walker=walker) as source:
                for batch in source.batches():
                    decoded = walker.take(batch) if walker is not None else None
                    if walker is not None and source.format == "pcap":
                        assert decoded is not None, "a walked batch comes with its decode"
                    if decoded is None:
                        decoded = decode(batch)
                    for name in _FIELDS:
                        digest.update(getattr(decoded, name).tobytes())
        except CaptureError:
            digest.update(b"reader stopped")
    return digest.hexdigest()


def digests(*, walking: bool = False) -> dict[str, str]:
    return {_key(p): column_digest(p, walking=walking) for p in corpus_files()}


def test_every_corpus_capture_decodes_to_its_golden_columns() -> None:
    """Each capture's decoded columns hash to the stored value (no column of any row changed)."""
    stored = json.loads(GOLDEN.read_text())
    got = digests()
    assert len(got) >= 840
    differing = sorted(k for k in got if stored.get(k) != got[k])
    assert differing == [], f"decoded columns differ from {GOLDEN.name} for {differing[:10]}"


def test_the_walk_that_decodes_gives_the_golden_columns() -> None:
    """Decoding each frame as its pcap record is walked gives every capture's stored columns."""
    stored = json.loads(GOLDEN.read_text())
    got = digests(walking=True)
    differing = sorted(k for k in got if stored.get(k) != got[k])
    assert differing == [], f"walked decode differs from {GOLDEN.name} for {differing[:10]}"


def regen() -> None:
    """Write the golden file from today's decoder; print the captures whose columns changed."""
    old = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    new = digests()
    for key in sorted(new):
        if old.get(key) != new[key]:
            print("changed:", key)
    GOLDEN.write_text(json.dumps(new, indent=0, sort_keys=True) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["--regen"]:
        sys.exit("usage: python -m tests.unit.test_decode_golden --regen")
    regen()
    pytest.main([__file__, "-q"])
