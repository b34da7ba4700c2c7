"""Fixed-width header reads at many offsets of one byte buffer, as one numpy gather.

Reading a header field byte by byte costs one numpy pass per byte. Instead the buffer is viewed as
overlapping fixed-width records (``V<width>`` with a one-byte stride, no copy), so a single fancy
index copies ``width`` bytes per row; the caller then views the result through a big-endian
structured dtype and reads each field as a column. Measured on this 2-core machine (8192-row
batches): ~14 ns per row whatever the width up to 64 bytes, against ~2.6 ns per row for each
single-byte gather, so one record replaces the ~30 byte gathers a header would need.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def gather(data: npt.NDArray[np.uint8], pos: npt.NDArray[np.int64], width: int) -> npt.NDArray[Any]:
    """``width`` bytes at each ``pos`` of ``data``, one ``V<width>`` record per row (a copy).

    Bytes outside ``data`` (a position before its start or a record running past its end) read
    as zeros; callers must still check each row's capture length, since bytes past a frame's own
    end belong to the next frame.
    """
    size = int(data.shape[0])
    if size < width:
        padded = np.zeros(width, dtype=np.uint8)
        padded[:size] = data
        data, size = padded, width
    last = size - width
    records = np.ndarray((last + 1,), dtype=f"V{width}", buffer=data, strides=(1,))
    out: npt.NDArray[Any] = records[np.minimum(np.maximum(pos, 0), last)]
    outside = (pos < 0) | (pos > last)
    if outside.any():
        # Rare rows near either end: read them from a zero-padded copy of the edges.
        edges = np.zeros(4 * width, dtype=np.uint8)
        edges[width : 2 * width] = data[:width]
        edges[2 * width : 3 * width] = data[last:]
        edge_records = np.ndarray((3 * width + 1,), dtype=f"V{width}", buffer=edges, strides=(1,))
        far = pos[outside]
        before = np.maximum(far + width, 0)
        rel = np.where(far < 0, before, np.minimum(far - last, width) + 2 * width)
        out[outside] = edge_records[rel]
    return out
