"""Reading a file's next batches on a thread (``ReadAhead``) while the current one is analysed."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from analyzers._decodewalk import DecodingWalker
from capture import CaptureError, FrameBatch, ReadAhead, open_capture_file

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "tcpdump-tests"
MANY = CORPUS / "afs.pcap"  # many frames


def _plain(path: Path, batch_size: int) -> tuple[list[FrameBatch], str]:
    out: list[FrameBatch] = []
    try:
        with open_capture_file(path, batch_size=batch_size) as source:
            out.extend(source.batches())
    except CaptureError as e:
        return out, str(e)
    return out, ""


def _ahead(path: Path, batch_size: int, depth: int) -> tuple[list[FrameBatch], str]:
    out: list[FrameBatch] = []
    source = ReadAhead(open_capture_file(path, batch_size=batch_size), depth=depth)
    try:
        out.extend(source.batches())
    except CaptureError as e:
        return out, str(e)
    finally:
        source.close()
    return out, ""


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "capture-read-ahead"]


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_batches_come_in_the_sources_order(depth: int) -> None:
    """The same batches, in the same order, whatever the depth; the thread is gone after."""
    want, _ = _plain(MANY, 3)
    got, error = _ahead(MANY, 3, depth)
    assert error == ""
    assert len(want) > 10
    assert [b.offsets.tolist() for b in got] == [b.offsets.tolist() for b in want]
    assert all(np.array_equal(a.ts_ns, b.ts_ns) for a, b in zip(want, got, strict=True))
    assert _readers() == []


def test_the_sources_error_comes_after_the_batches_before_it(tmp_path: Path) -> None:
    """A damaged file (cut inside its last record): every batch read before the damage
    first, then the same error."""
    damaged = tmp_path / "cut.pcap"
    damaged.write_bytes(MANY.read_bytes()[:-10])
    want, want_error = _plain(damaged, 1)
    got, error = _ahead(damaged, 1, 2)
    assert want_error != ""
    assert error == want_error
    assert [b.offsets.tolist() for b in got] == [b.offsets.tolist() for b in want]


def test_a_consumer_that_stops_early_stops_the_reader() -> None:
    """Leaving the loop after one batch ends the thread (no reader left blocked on a full
    queue) and the source closes."""
    source = ReadAhead(open_capture_file(MANY, batch_size=1), depth=1)
    batches = source.batches()
    first = next(batches)
    assert len(first) == 1
    assert len(_readers()) == 1
    batches.close()
    assert _readers() == []
    source.close()


def test_a_walker_that_decodes_serves_batches_read_ahead() -> None:
    """With the thread several walks ahead, each batch still finds its own decode."""
    walker = DecodingWalker()
    source = ReadAhead(open_capture_file(MANY, batch_size=2, walker=walker), depth=4)
    try:
        for batch in source.batches():
            decoded = walker.take(batch)
            assert decoded is not None
            assert len(decoded) == len(batch)
    finally:
        source.close()


def test_depth_must_be_positive() -> None:
    """A depth below one is refused before any thread starts."""
    with pytest.raises(ValueError, match="depth"):
        ReadAhead(open_capture_file(MANY), depth=0)
