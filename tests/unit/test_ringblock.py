"""One TPACKET_V3 ring block as a FrameBatch (synthetic blocks laid out as the kernel does)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from capture._ringblock import block_to_batch
from capture._ringlayout import (
    FIRST_AT,
    FRAME_AT,
    TP_STATUS_VLAN_TPID_VALID,
    TP_STATUS_VLAN_VALID,
    lay_out_block,
)

FIRST = FIRST_AT  # offset_to_first_pkt with no private area
MAC = FRAME_AT  # where the kernel puts an Ethernet frame after tpacket3_hdr + sockaddr_ll


def block(frames: list[tuple[bytes, int, int, int, int, int]]) -> tuple[bytes, int]:
    """Frames as (bytes, wirelen, ts_ns, status, vlan_tci, vlan_tpid); returns (block, count)."""
    raw, _ = lay_out_block(frames)
    return raw, len(frames)


ETH = bytes.fromhex("020000000002020000000001") + b"\x08\x00"


def test_frames_lengths_and_timestamps_come_from_the_frame_headers() -> None:
    """Each frame's bytes, snaplen, wire length and ns timestamp are read from its tpacket3_hdr."""
    frames = [ETH + bytes([i]) * (50 + 37 * i) for i in range(4)]
    raw, n = block(
        [
            (f, len(f) + 100 * i, 1_700_000_000_123_456_789 + i, 0, 0, 0)
            for i, f in enumerate(frames)
        ]
    )
    batch = block_to_batch(np.frombuffer(raw, np.uint8), n, FIRST)
    assert [batch.frame(i) for i in range(n)] == frames
    assert batch.wirelens.tolist() == [len(f) + 100 * i for i, f in enumerate(frames)]
    assert batch.ts_ns.tolist() == [1_700_000_000_123_456_789 + i for i in range(4)]
    assert batch.data.nbytes == len(raw)  # a view of the one copy, no per-frame copies


def test_vlan_tag_is_reinserted_where_the_kernel_took_it_out() -> None:
    """A frame with TP_STATUS_VLAN_VALID gets its 802.1Q/802.1ad tag back after the MACs."""
    plain = ETH + b"p" * 50
    untagged = ETH + b"v" * 50
    raw, n = block(
        [
            (plain, len(plain), 1, 0, 0, 0),
            (untagged, len(untagged), 2, TP_STATUS_VLAN_VALID, 100, 0),
            (
                untagged,
                len(untagged),
                3,
                TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID,
                7,
                0x88A8,
            ),
        ]
    )
    batch = block_to_batch(np.frombuffer(raw, np.uint8), n, FIRST)
    assert batch.frame(0) == plain
    assert batch.frame(1) == untagged[:12] + bytes.fromhex("81000064") + untagged[12:]
    assert batch.frame(2) == untagged[:12] + bytes.fromhex("88a80007") + untagged[12:]
    assert batch.caplens.tolist() == [len(plain), len(untagged) + 4, len(untagged) + 4]
    assert batch.wirelens.tolist() == [len(plain), len(untagged) + 4, len(untagged) + 4]


def test_a_chain_that_leaves_the_block_keeps_the_frames_before_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A tp_next_offset pointing past the block's end (never from a kernel) ends the walk: the
    frames before it are the batch, the rest are dropped with an error logged, nothing is read
    outside the block."""
    frames = [ETH + bytes([i]) * 60 for i in range(3)]
    raw, n = block([(f, len(f), 10 + i, 0, 0, 0) for i, f in enumerate(frames)])
    broken = bytearray(raw)
    second = FIRST + ((MAC + len(frames[0]) + 7) & ~7)
    struct.pack_into("=I", broken, second, len(raw))  # the second frame's next: off the end
    with caplog.at_level("ERROR"):
        batch = block_to_batch(np.frombuffer(bytes(broken), np.uint8), n, FIRST)
    assert [batch.frame(i) for i in range(len(batch))] == frames[:2]
    assert batch.ts_ns.tolist() == [10, 11]
    assert "frame 2 of 3" in caplog.text
