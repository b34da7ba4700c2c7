"""The file reader over tcpdump's own test captures (../shared/corpus/tcpdump-tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from capture import CaptureError, open_capture_file

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "tcpdump-tests"


def corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if p.is_file()) if CORPUS.is_dir() else []


def test_corpus_is_present() -> None:
    """The corpus the Must-show test reads is where the repository expects it."""
    assert len(corpus_files()) == 830, f"expected 830 captures in {CORPUS}"


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_corpus_file_reads_to_the_end_or_raises_capture_error(path: Path) -> None:
    """Every capture reads to its end or stops with CaptureError; frames stay inside the file."""
    size = path.stat().st_size
    error = ""
    try:
        src = open_capture_file(path)
        for batch in src.batches():
            assert (batch.offsets >= 0).all()
            assert (batch.offsets + batch.caplens <= size).all()
        src.close()
    except CaptureError as e:
        error = str(e)
    assert error == "" or error.startswith(str(path))
