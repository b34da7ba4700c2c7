"""The ring block walk that decodes (``DecodingWalker.walk_block``) equals capture's walk and a
decode after it.

Live, the pipeline walks each TPACKET_V3 block with the analyzers' walker, which reads every frame
header through capture's ``ring_frame`` and decodes the frame in the same pass. Over blocks of
Ethernet frames from tcpdump's corpus (many damaged), the batch it yields and its decode must be
those of the plain walk and ``decode``; a block with a VLAN tag the kernel took out keeps no
decode (the batch with the tags put back is decoded the ordinary way).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

from analyzers._decode import decode
from analyzers._decodewalk import DecodingWalker
from capture import LINKTYPE_ETHERNET, CaptureError, open_capture_file
from capture._ringblock import block_to_batch
from capture._ringlayout import TP_STATUS_VLAN_VALID
from tests.unit.test_ringblock import FIRST, block

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "tcpdump-tests"
PER_BLOCK = 400  # frames of a corpus file in one synthetic block


def _ethernet_frames() -> list[tuple[str, list[tuple[bytes, int, int]]]]:
    """(file name, [(frame, wire length, time)]) of the corpus's Ethernet pcap files."""
    out = []
    if not CORPUS.is_dir():
        return out
    for path in sorted(CORPUS.iterdir()):
        if not path.is_file() or path.read_bytes()[:4] == b"\n\r\r\n":
            continue
        frames = []
        try:
            with open_capture_file(path, batch_size=PER_BLOCK) as source:
                for batch in source.batches():
                    if batch.linktype != LINKTYPE_ETHERNET:
                        break
                    frames += [
                        (batch.frame(i), int(batch.wirelens[i]), int(batch.ts_ns[i]))
                        for i in range(len(batch))
                    ]
                    break
        except CaptureError:
            continue
        if frames:
            out.append((path.name, frames))
    return out


FILES = _ethernet_frames()


def test_the_corpus_has_ethernet_files_to_walk() -> None:
    assert len(FILES) > 300


@pytest.mark.parametrize(("name", "frames"), FILES, ids=[name for name, _ in FILES])
def test_the_decoding_ring_walk_is_the_walk_and_the_decode(
    name: str, frames: list[tuple[bytes, int, int]]
) -> None:
    """Same batch column by column, and every decoded column of every frame the same."""
    raw, n = block([(f, max(wire, len(f)), ts, 0, 0, 0) for f, wire, ts in frames])
    data = np.frombuffer(raw, np.uint8)
    plain = block_to_batch(data, n, FIRST)
    walker = DecodingWalker()
    walked = block_to_batch(data, n, FIRST, walker.walk_block)
    for column in ("offsets", "caplens", "wirelens", "ts_ns"):
        assert np.array_equal(getattr(plain, column), getattr(walked, column)), column
    decoded = walker.take(walked)
    assert decoded is not None
    expected = decode(plain)
    for field in dataclasses.fields(expected):
        got, want = getattr(decoded, field.name), getattr(expected, field.name)
        assert np.array_equal(got, want), f"{name}: {field.name}"
    assert walker.take(walked) is None  # once


def test_a_block_with_a_tag_the_kernel_took_out_keeps_no_decode() -> None:
    """The tags are put back into a new batch; the walker's decode of the block is not kept."""
    _, frames = FILES[0]
    raw, n = block(
        [
            (f, max(wire, len(f)), ts, TP_STATUS_VLAN_VALID if i == 1 else 0, 5 if i == 1 else 0, 0)
            for i, (f, wire, ts) in enumerate(frames[:3])
        ]
    )
    data = np.frombuffer(raw, np.uint8)
    walker = DecodingWalker()
    walked = block_to_batch(data, n, FIRST, walker.walk_block)
    plain = block_to_batch(data, n, FIRST)
    assert [walked.frame(i) for i in range(n)] == [plain.frame(i) for i in range(n)]
    assert walked.caplens[1] == len(frames[1][0]) + 4  # the tag is back in the frame
    assert walker.take(walked) is None


def test_a_chain_leaving_the_block_ends_both_walks_alike() -> None:
    """A header claiming a next frame past the block's end: both walks stop at the same frame."""
    _, frames = FILES[0]
    raw, n = block([(f, max(wire, len(f)), ts, 0, 0, 0) for f, wire, ts in frames[:5]])
    broken = bytearray(raw)
    # the third frame's next_offset (its header's first word) points far past the block
    at = FIRST
    for _ in range(2):
        at += int.from_bytes(broken[at : at + 4], sys.byteorder)
    broken[at : at + 4] = (1 << 30).to_bytes(4, sys.byteorder)
    data = np.frombuffer(bytes(broken), np.uint8)
    plain = block_to_batch(data, n, FIRST)
    walker = DecodingWalker()
    walked = block_to_batch(data, n, FIRST, walker.walk_block)
    assert len(plain) == len(walked) == 3
    decoded = walker.take(walked)
    assert decoded is not None
    assert np.array_equal(decoded.status, decode(plain).status)
