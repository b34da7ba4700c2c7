"""The duplicate search's hash table, bucket for bucket, against a plain model of its rules.

Which packets count as copies depends on the table's exact layout wherever a capture's clock runs
backwards: a packet older than the window is forgotten only when a probe reuses its bucket or the
table is rebuilt, and both depend on where each fingerprint landed (the golden records of fuzzed
corpus files such as ``babel_update_oobr.pcap`` rest on it). ``_dedupkernel.find_copies`` is
compiled and tuned (its first probe buckets are looked at without branches); the model below is
the rules written out one bucket at a time: linear probing from ``fp & mask`` to an empty bucket
or the same fingerprint, the first stale bucket passed reused, a rebuild at half full into a
table four times the live entries. Both run over the same batches, with fingerprints that
collide on purpose, and must agree on every keep bit, the count of copies, the fill and every
bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest

from analyzers._dedupkernel import find_copies

U64 = npt.NDArray[np.uint64]
_M64 = (1 << 64) - 1
_BIAS = 1 << 63
_L3 = 1  # Status.L3: rows above it are not IP


def _biased(t: int) -> int:
    return (t & _M64) ^ _BIAS


@dataclass
class Model:
    """The search's table, one bucket at a time in Python."""

    keys: list[list[int]]  # per bucket: fingerprint, biased time (0: empty)
    words: list[list[int]]  # per bucket: the six endpoint words
    fill: int = 0

    @classmethod
    def empty(cls, cap: int) -> Model:
        return cls([[0, 0] for _ in range(cap)], [[0] * 6 for _ in range(cap)])

    def rebuild(self, oldest: int) -> None:
        live = sum(1 for _, ts in self.keys if ts >= oldest)
        cap = 64
        while cap < 4 * live:
            cap *= 2
        keys, words = [[0, 0] for _ in range(cap)], [[0] * 6 for _ in range(cap)]
        for (fp, ts), ends in zip(self.keys, self.words, strict=True):
            if ts >= oldest:
                d = fp & (cap - 1)
                while keys[d][1] != 0:
                    d = (d + 1) & (cap - 1)
                keys[d], words[d] = [fp, ts], list(ends)
        self.keys, self.words, self.fill = keys, words, live

    def search(  # noqa: PLR0917 - the kernel's columns, as it takes them
        self,
        status: list[int],
        fp: list[int],
        ts: list[int],
        ends: list[tuple[int, ...]],
        window: int,
        nat_window: int,
    ) -> tuple[list[bool], int]:
        keep = [True] * len(fp)
        found = 0
        newest = -(1 << 62)
        k = 0
        while k < len(fp):
            if status[k] > _L3:
                k += 1
                continue
            t = ts[k]
            newest = max(newest, t)
            if 2 * (self.fill + 1) > len(self.keys):
                self.rebuild(_biased(newest - window))
                continue
            oldest = _biased(newest - window)
            mask = len(self.keys) - 1
            b, reuse = fp[k] & mask, -1
            while self.keys[b][1] != 0 and self.keys[b][0] != fp[k]:
                if reuse < 0 and self.keys[b][1] < oldest:
                    reuse = b
                b = (b + 1) & mask
            if self.keys[b][1] != 0:
                then = self.keys[b][1] ^ _BIAS
                then = then - (1 << 64) if then >= 1 << 63 else then
                w = self.words[b]
                src_addr = w[0:2] == list(ends[k][0:2])
                dst_addr = w[3:5] == list(ends[k][3:5])
                same_src = src_addr and w[2] == ends[k][2]
                same_dst = dst_addr and w[5] == ends[k][5]
                dt = abs(t - then)
                if same_src and same_dst:
                    copy = dt <= window
                else:
                    nat = (same_src and not dst_addr) or (same_dst and not src_addr)
                    copy = nat and dt <= nat_window
                if copy:
                    keep[k] = False
                    found += 1
            elif reuse >= 0:
                b = reuse
            else:
                self.fill += 1
            self.keys[b] = [fp[k], _biased(t)]
            self.words[b] = list(ends[k])
            k += 1
        return keep, found


def _batch(
    rng: np.random.Generator, n: int, clock: int
) -> tuple[dict[str, npt.NDArray[np.generic]], int]:
    """Rows whose fingerprints come from a small pool (repeats, and home buckets that collide
    in any table up to 4096 buckets), endpoints from small pools (equal, NATed and unrelated
    ends), and a clock that mostly steps forward by a few µs but jumps back or far ahead."""
    pool = (rng.integers(0, 1 << 40, 48, dtype=np.uint64) << np.uint64(12)) | rng.integers(
        0, 24, 48, dtype=np.uint64
    )
    fp = pool[rng.integers(0, pool.size, n)]
    steps = rng.choice(
        np.array([0, 1_000, 3_000, 20_000, 400_000, -300_000, -5_000_000, 50_000_000]),
        n,
        p=[0.1, 0.3, 0.25, 0.15, 0.08, 0.05, 0.04, 0.03],
    )
    ts = clock + np.cumsum(steps)
    addrs = rng.integers(1, 4, (n, 2), dtype=np.uint64)
    ports = rng.integers(1, 3, (n, 2)).astype(np.uint16)
    cols = {
        "status": rng.choice(np.array([0, 1, 2, 5], np.uint8), n, p=[0.6, 0.25, 0.1, 0.05]),
        "fp": fp,
        "ts": ts.astype(np.int64),
        "src_hi": np.zeros(n, np.uint64),
        "src_lo": addrs[:, 0],
        "sport": ports[:, 0],
        "dst_hi": np.zeros(n, np.uint64),
        "dst_lo": addrs[:, 1],
        "dport": ports[:, 1],
    }
    return cols, int(ts[-1])


@pytest.mark.parametrize("seed", range(6))
def test_the_compiled_search_matches_the_model_bucket_for_bucket(seed: int) -> None:
    rng = np.random.default_rng(seed)
    window, nat_window = 1_000_000, 100_000
    table: tuple[U64, U64] = (np.zeros((16, 2), np.uint64), np.zeros((16, 6), np.uint64))
    fill = 0
    model = Model.empty(16)
    clock = 1_700_000_000 * 10**9
    copies = 0
    for _ in range(12):
        cols, clock = _batch(rng, int(rng.integers(1, 700)), clock)
        ends_cols = tuple(
            cols[c] for c in ("src_hi", "src_lo", "sport", "dst_hi", "dst_lo", "dport")
        )
        keep = np.empty(cols["fp"].size, np.bool_)
        table, fill, found = find_copies(
            table, fill, cols["status"], cols["fp"], cols["ts"], ends_cols, window, nat_window,
            keep,
        )  # fmt: skip
        ends = [tuple(int(c[i]) for c in ends_cols) for i in range(cols["fp"].size)]
        want_keep, want_found = model.search(
            cols["status"].tolist(), cols["fp"].tolist(), cols["ts"].tolist(), ends, window,
            nat_window,
        )  # fmt: skip
        assert keep.tolist() == want_keep
        assert found == want_found
        assert fill == model.fill
        assert table[0].tolist() == model.keys
        used = table[0][:, 1] != 0
        assert table[1][used].tolist() == [w for w, u in zip(model.words, used, strict=True) if u]
        copies += found
    # the draw must exercise what the test is about: copies, rebuilds and long probes
    assert copies > 0
    assert len(model.keys) > 16
