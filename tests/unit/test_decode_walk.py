"""The pcap walk that decodes (``DecodingWalker``) walks exactly as capture's own walk.

The pipeline reads files with the analyzers' walker, which reads each record through capture's
``read_record`` and decodes the frame in the same pass. Over every pcap of tcpdump's corpus, many
of them damaged, the batches it yields (offsets, lengths, times, link type) and the error a
damaged file ends with must be those of the plain walk; a batch it did not walk gets no decode.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analyzers._decode import decode
from analyzers._decodewalk import DecodingWalker
from capture import CaptureError, FrameBatch, open_capture_file

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "tcpdump-tests"


def _pcaps() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.iterdir() if p.is_file() and p.read_bytes()[:4] != b"\n\r\r\n")


def _read(path: Path, walker: DecodingWalker | None) -> tuple[list[FrameBatch], str]:
    batches: list[FrameBatch] = []
    try:
        with open_capture_file(path, batch_size=7, walker=walker) as source:
            for batch in source.batches():
                if walker is not None:
                    assert walker.take(batch) is not None
                batches.append(batch)
    except CaptureError as e:
        return batches, str(e)
    return batches, ""


def test_the_corpus_has_pcap_files_to_walk() -> None:
    """The comparison below runs over hundreds of pcap (not pcapng) captures."""
    assert len(_pcaps()) > 500


@pytest.mark.parametrize("path", _pcaps(), ids=lambda p: p.name)
def test_walking_with_the_decoder_yields_the_plain_walks_batches(path: Path) -> None:
    """Same batches, column by column, and the same error at the same offset (small batches,
    so that files span several and a batch ends where the damage is)."""
    plain, plain_error = _read(path, None)
    walked, walked_error = _read(path, DecodingWalker())
    assert walked_error == plain_error
    assert len(walked) == len(plain)
    for a, b in zip(plain, walked, strict=True):
        assert a.linktype == b.linktype
        for column in ("offsets", "caplens", "wirelens", "ts_ns"):
            assert np.array_equal(getattr(a, column), getattr(b, column)), column


def test_a_batch_the_walker_did_not_make_gets_no_decode() -> None:
    """``take`` answers only for a batch one of its walks made, once: any other batch (a
    filter's copy, a second ask) is decoded the ordinary way."""
    path = next(p for p in _pcaps() if p.stat().st_size > 2000)
    walker = DecodingWalker()
    with open_capture_file(path, batch_size=4, walker=walker) as source:
        batches = iter(source.batches())
        first = next(batches)
        other = FrameBatch(
            data=first.data,
            offsets=first.offsets.copy(),
            caplens=first.caplens,
            wirelens=first.wirelens,
            ts_ns=first.ts_ns,
            linktype=first.linktype,
        )
        assert walker.take(other) is None  # not a walked batch
        second = next(batches)
        decoded = walker.take(second)
        assert decoded is not None
        assert walker.take(second) is None
        expected = decode(second)
        assert np.array_equal(decoded.status, expected.status)
        assert np.array_equal(decoded.l4_off, expected.l4_off)
