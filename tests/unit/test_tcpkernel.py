"""The compiled TCP event kernel against ``TcpScratch.event``, the scalar reference."""

from __future__ import annotations

import random

import numpy as np

from analyzers._flowcolumns import HIST_WIDTH
from analyzers._tcpkernel import tcp_events
from analyzers._tcpstate import TcpScratch

_FLAGS = (0x02, 0x12, 0x10, 0x18, 0x11, 0x14, 0x04, 0x01, 0x06, 0x05, 0x03, 0x00)


def _stream(rng: random.Random, flows: int, n: int) -> list[tuple[int, ...]]:
    """Random segments per flow in arrival order: flags, directions, repeats and zero windows."""
    rows = []
    for _ in range(n):
        rows.append(
            (
                rng.randrange(flows),
                rng.randrange(2),
                rng.choice(_FLAGS),
                rng.choice((0, 1, 1000, 0xFFFFFFFF, rng.randrange(1 << 32))),
                rng.choice((0, 0, 100)),
                rng.choice((0, 512, 65535)),
                rng.randrange(1 << 40),
                int(rng.random() < 0.1),
            )
        )
    rows.sort(key=lambda r: r[0])  # per flow, arrival order kept (stable)
    return rows


def test_kernel_matches_the_scalar_state_machine_on_random_segments() -> None:
    """Every column and history (long ones included) equals TcpScratch's after the same events."""
    rng = random.Random(15)
    flows = 40
    rows = _stream(rng, flows, 4000)
    ref = [
        TcpScratch(
            "", [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], 0, 0, 0, [0, 0], 0
        )
        for _ in range(flows)
    ]
    for s, e, fl, sq, pl, wn, t, tl in rows:
        ref[s].event(e, fl, sq, pl, wn, t, bool(tl))
    ev = [np.array([r[i] for r in rows], np.int64) for i in range(7)]
    ev_t = np.array([r[7] for r in rows], np.bool_)
    u8 = [np.zeros((flows, 2), np.uint8) for _ in range(3)]
    u32 = [np.zeros((flows, 2), np.uint32) for _ in range(5)]
    ts = [np.zeros(flows, np.int64) for _ in range(3)]
    did_close = np.zeros((flows, 2), np.uint8)
    close_ts = np.zeros(flows, np.int64)
    hist = np.zeros((flows, HIST_WIDTH), np.uint8)
    spill = np.zeros((3 * len(rows), 2), np.int64)
    ns = tcp_events(*ev, ev_t, *u8, *u32, *ts, did_close, close_ts, hist, spill)
    longs = [bytearray(hist[s].tobytes().rstrip(b"\0")) for s in range(flows)]
    for s, letter in spill[:ns].tolist():
        longs[s].append(letter)
    assert any(len(h) > HIST_WIDTH for h in longs)
    names = ("state", "prev_state", "seen", "syn_mark", "fin_mark", "rst_mark", "zero_win")
    for s, o in enumerate(ref):
        assert longs[s].decode() == o.hist
        for col, name in zip(u8 + u32[:4], names, strict=True):
            assert col[s].tolist() == getattr(o, name), name
        assert u32[4][s].tolist() == o.rst_count
        assert [c[s] for c in ts] == [o.syn_ts, o.synack_ts, o.ack_ts]
        assert did_close[s].tolist() == o.did_close
        assert close_ts[s] == o.close_ts
