"""FlowColumns: narrow per-flow columns that widen instead of wrapping, resets of reused slots."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from analyzers._flowcolumns import FlowColumns

I64 = npt.NDArray[np.int64]


def _sums(gi: I64, **values: list[int]) -> I64:
    """``add_sums``'s rows: flat index, then packets, wire, IP and payload bytes (0 if not
    given)."""
    out = np.zeros((gi.shape[0], 5), np.int64)
    out[:, 0] = gi
    for col, name in enumerate(("pkts", "l2", "ipb", "pay"), start=1):
        if name in values:
            out[:, col] = values[name]
    return out


def test_packet_counts_widen_to_64_bits_instead_of_wrapping() -> None:
    """A count that would pass 2**32 - 1 widens the column; every count so far is kept."""
    cols = FlowColumns(8)
    s = cols.take(3)
    gi = s * 2  # the originator direction of each
    cols.add_sums(_sums(gi, pkts=[0xFFFF_FFF0, 5, 7]))
    assert cols.pkts.dtype == np.uint32
    cols.add_sums(_sums(gi, pkts=[0x20, 1, 1]))
    assert cols.pkts.dtype == np.int64
    assert cols.pkts[s, 0].tolist() == [0xFFFF_FFF0 + 0x20, 6, 8]
    assert cols.pkts_f[int(gi[0])] == 0x1_0000_0010  # the flat view follows the new column


def test_byte_counts_widen_each_column_on_its_own() -> None:
    """Wire, IP and payload bytes are 32-bit until a direction passes 4 GiB: that column alone
    widens, keeping every sum, and an active-flow snapshot reads it as 64-bit."""
    cols = FlowColumns(8)
    s = cols.take(2)
    gi = s * 2 + 1  # the responder direction
    cols.add_sums(_sums(gi, l2=[3 << 30, 60], ipb=[1 << 31, 40]))
    assert (cols.l2.dtype, cols.ipb.dtype, cols.pay.dtype) == (np.uint32,) * 3
    cols.add_sums(_sums(gi, l2=[1 << 31, 60], pay=[5, 5]))
    assert (cols.l2.dtype, cols.ipb.dtype) == (np.int64, np.uint32)
    assert cols.l2[s, 1].tolist() == [(3 << 30) + (1 << 31), 120]
    assert cols.l2_f[int(gi[0])] == (3 << 30) + (1 << 31)
    assert cols.ipb[s, 1].tolist() == [1 << 31, 40]
    assert cols.pay[s, 1].tolist() == [5, 5]  # added with the sum that widened l2, once


def test_a_reused_slot_starts_from_zero() -> None:
    """Counters and TCP state a flow left in its slot are zeroed for the next flow there."""
    cols = FlowColumns(4)
    s = cols.take(2)
    cols.add_sums(_sums(s * 2 + 1, pkts=[3, 4]))
    cols.missed[s[1], 0] = 1000
    cols.close_ts[s[0]] = 17
    cols.ahi[s[1]] = 1
    cols.release(s)
    again = cols.take(2)
    assert sorted(again.tolist()) == sorted(s.tolist())
    cols.reset_counters(again)
    cols.reset_tcp(again)
    cols.set_keys(again, *(np.zeros(2, np.uint64) for _ in range(6)))
    assert not cols.pkts[again].any()
    assert not cols.missed[again].any()
    assert not cols.close_ts[again].any()
    assert not cols.ahi[again].any()
