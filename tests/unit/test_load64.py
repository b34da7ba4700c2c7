"""The fingerprint's byte reads (``_dedupkernel._le_bytes``, one 8-byte load where it can) equal
byte-by-byte assembly everywhere, at the buffer's edges too."""

from __future__ import annotations

import numpy as np
import pytest

from analyzers._dedupkernel import _le_bytes


def reference(data: bytes, start: int, count: int, shift: int) -> int:
    word = 0
    for i in range(count):
        if 0 <= start + i < len(data):
            word |= data[start + i] << (8 * (shift + i))
    return word


@pytest.mark.parametrize("size", [0, 5, 8, 9, 40])
def test_every_start_count_and_shift_reads_as_byte_by_byte(size: int) -> None:
    data = bytes(np.random.default_rng(size).integers(1, 256, size, dtype=np.uint8))
    buffer = np.frombuffer(data, np.uint8)
    for start in range(-9, size + 2):
        for count in range(9):
            for shift in (0, 8 - count):
                got = int(_le_bytes(buffer, start, count, shift))
                assert got == reference(data, start, count, shift), (start, count, shift)
