"""The decoder on tcpdump's own test captures: every frame of every file, no exception."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest

from analyzers import Status, decode
from capture import CaptureError, open_capture_file

CORPUS = Path(__file__).parents[2].parent / "shared/corpus/tcpdump-tests"
FILES = sorted(p for p in CORPUS.glob("*") if p.suffix in {".pcap", ".pcapng", ".cap"})


def test_corpus_is_there() -> None:
    """The shared corpus is present (CI lays it beside the repo): the sweep below is not empty."""
    assert len(FILES) >= 800


def test_every_corpus_frame_decodes() -> None:
    """All frames of all files decode with one row each and a known status; the reader may stop
    at damage it reports, the decoder never raises. Linktypes we do not decode are counted."""
    statuses: collections.Counter[int] = collections.Counter()
    frames = 0
    unreadable = []
    for path in FILES:
        try:
            with open_capture_file(path) as source:
                for batch in source.batches():
                    decoded = decode(batch)
                    assert len(decoded) == len(batch), path.name
                    statuses.update(np.bincount(decoded.status, minlength=32).nonzero()[0].tolist())
                    frames += len(batch)
        except CaptureError:
            unreadable.append(path.name)  # the reader's business (damaged files are in the corpus)
    assert frames > 5_000
    assert set(statuses) <= {int(s) for s in Status}
    assert {Status.L4, Status.L3, Status.NON_IP, Status.UNSUPPORTED_LINKTYPE} <= set(statuses)
    assert len(unreadable) < len(FILES) // 10


@pytest.mark.parametrize("name", ["802.1ad_QinQ.pcap"])
def test_qinq_corpus_file_has_vlans(name: str) -> None:
    """tcpdump's QinQ capture decodes to IP rows carrying a VLAN id."""
    with open_capture_file(CORPUS / name) as source:
        batches = list(source.batches())
    decoded = [decode(b) for b in batches]
    vlans = np.concatenate([d.vlan for d in decoded])
    assert (vlans != 0).any()
