"""The decoder's columns: their types, one buffer a batch, and the two sparse groups.

``new_columns`` carves a batch's 32 columns (``DecodedBatch``) from one buffer. Two groups of them
hold something on few rows: ``WIDE``, the IPv6 addresses' upper halves (0 for IPv4), and
``ENCAP``, what only an encapsulated frame has (its encapsulations, VLAN id, tunnel, outer
addresses, a carrier's ports and lengths). The decoder writes a group only once a row has it,
zeroing the rows before that one then, and reports which groups it wrote; ``finish`` puts a
zero column in place of each of the others. Zeroing both groups up front was a memset of 72 bytes
a row, 2 MB a ring block of 64-byte frames, which also pushed the flow table's and the duplicate
search's state out of the cache: live, ~10 ns a frame.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from analyzers._decoded import DecodedBatch

__all__ = [
    "ENCAP",
    "WIDE",
    "Columns",
    "SharedZeros",
    "ZeroColumns",
    "finish",
    "fresh_zeros",
    "new_columns",
]

#: ``decode_rows``' report: the groups it wrote on every row
WIDE, ENCAP = 1, 2
_WIDE_COLUMNS = ("src_hi", "dst_hi")
_FIELDS = tuple(f.name for f in dataclasses.fields(DecodedBatch))  # the constructor's order
#: what only an encapsulated frame has: the fields from the VLAN id to the carrier's lengths
_ENCAP_COLUMNS = _FIELDS[_FIELDS.index("vlan") : _FIELDS.index("carrier_l4_len") + 1]

#: A batch's columns in ``DecodedBatch``'s field order.
Columns = list[npt.NDArray[Any]]
#: Where a group's zero columns come from: ``(dtype, rows) -> column``.
ZeroColumns = Callable[[type[np.generic], int], npt.NDArray[Any]]


def fresh_zeros(dtype: type[np.generic], n: int) -> npt.NDArray[Any]:
    """New zero columns, for a decode whose columns may be written later."""
    return np.zeros(n, dtype)


class SharedZeros:
    """Zero columns as views of one zero array per type, grown as batches grow: a walker's
    decodes share them. Nothing writes into a batch's decode, so they stay zero."""

    def __init__(self) -> None:
        self._zeros: dict[type[np.generic], npt.NDArray[Any]] = {}

    def __call__(self, dtype: type[np.generic], n: int) -> npt.NDArray[Any]:
        zeros = self._zeros.get(dtype)
        if zeros is None or zeros.shape[0] < n:
            zeros = np.zeros(max(n, 1024), dtype)
            self._zeros[dtype] = zeros  # batches that hold the smaller one keep it
        return zeros[:n]


def finish(columns: Columns, written: int, zeros: ZeroColumns, rows: int) -> DecodedBatch:
    """The batch of the first *rows* rows of *columns* (``new_columns``' list, filled), with a
    zero column for each column of the sparse groups not in *written*."""
    if rows < columns[0].shape[0]:  # a walk that ended early
        columns = [column[:rows] for column in columns]
    for at, dtype in (() if written & WIDE else _WIDE_AT) + (() if written & ENCAP else _ENCAP_AT):
        columns[at] = zeros(dtype, rows)
    return DecodedBatch(*columns)


def new_columns(n: int, *, zeroed: bool) -> Columns:
    """Columns for ``n`` rows in ``DecodedBatch``'s field order (the compiled decoder's
    arguments), carved from one buffer: all zeroed if ``zeroed``, else none (the kernel writes
    every row of every column but the sparse groups it does not report written).

    One allocation per batch instead of 32 keeps the allocator's state, and so the cost of the
    flow table's own large allocations after it, as it was with fewer, larger decode buffers.
    The columns of one type are the rows of one 2-D block (``_GROUPS``), each padded to whole
    cache lines: the views cost a few µs a batch where slicing 32 columns out one by one cost
    ~30, which at a ring block of 512-byte frames was 4 ns a frame.
    """
    widths = [-(-n * size // 64) * 64 // size for _, size, _ in _GROUPS]
    buffer = np.empty(
        sum(w * size * len(at) for w, (_, size, at) in zip(widths, _GROUPS, strict=True)), np.uint8
    )
    columns: Columns = [_NONE] * len(_FIELDS)
    start = 0
    for width, (dtype, size, at) in zip(widths, _GROUPS, strict=True):
        nbytes = width * size * len(at)
        block = buffer[start : start + nbytes].view(dtype).reshape(len(at), width)
        if zeroed:
            block[:] = 0
        for i, column in zip(at, block[:, :n], strict=True):
            columns[i] = column
        start += nbytes
    return columns


_DTYPES: dict[str, type[np.generic]] = {
    "status": np.uint8,
    "ipver": np.uint8,
    "src_hi": np.uint64,
    "src_lo": np.uint64,
    "dst_hi": np.uint64,
    "dst_lo": np.uint64,
    "proto": np.uint8,
    "sport": np.uint16,
    "dport": np.uint16,
    "vlan": np.uint16,
    "tun_type": np.uint8,
    "tun_vni": np.uint32,
    "tun_dir": np.uint8,
    "outer_src_hi": np.uint64,
    "outer_src_lo": np.uint64,
    "outer_dst_hi": np.uint64,
    "outer_dst_lo": np.uint64,
    "encap": np.uint32,
    "carrier_ports": np.uint32,
    "carrier_ip_len": np.uint32,
    "carrier_l4_len": np.uint32,
    "ip_len": np.uint32,
    "l4_off": np.int64,
    "l4_len": np.uint32,
    "tcp_flags": np.uint16,
    "tcp_seq": np.uint32,
    "tcp_ack": np.uint32,
    "tcp_win": np.uint16,
    "ip_id": np.uint32,
    "frag": np.uint8,
    "ttl": np.uint8,
    "fp": np.uint64,
}
#: ``_DTYPES`` by type: (dtype, item size, the columns' places in ``_FIELDS``)
_GROUPS: tuple[tuple[type[np.generic], int, tuple[int, ...]], ...] = tuple(
    (
        dtype,
        np.dtype(dtype).itemsize,
        tuple(i for i, name in enumerate(_FIELDS) if _DTYPES[name] is dtype),
    )
    for dtype in dict.fromkeys(_DTYPES.values())
)
_WIDE_AT = tuple((_FIELDS.index(name), _DTYPES[name]) for name in _WIDE_COLUMNS)
_ENCAP_AT = tuple((_FIELDS.index(name), _DTYPES[name]) for name in _ENCAP_COLUMNS)
_NONE = np.zeros(0, np.uint8)  # a place in a column list before it is carved
