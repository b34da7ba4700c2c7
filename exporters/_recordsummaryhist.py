"""A log-bucket histogram of positive durations: percentiles of merged summaries within 0.5 %.

Bucket ``i`` holds the values in ``(G**(i-1), G**i]`` with ``G = 1.01`` and stands for
``2 * G**i / (G + 1)``, which is within ``(G - 1) / (G + 1)`` (< 0.5 %) of every value in it.
Values of zero or less share one bucket that stands for 0. Histograms add bucket by bucket, so
the histogram of a day is the sum of its hours'; a percentile is taken as pandas takes it (linear
between the two order statistics around the rank), each order statistic read as its bucket's
value, so the answer is within 0.5 % of the exact one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

GROWTH = 1.01
#: The largest relative error of a percentile read from the histogram.
PRECISION = (GROWTH - 1) / (GROWTH + 1)
_ZERO = -(1 << 40)  # the bucket of values <= 0 (ln(1e-300) / ln(1.01) is about -69,000)
_LOG_G = float(np.log(GROWTH))


def _bucket_value(index: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    safe = np.where(index == _ZERO, 0, index)
    values = 2.0 * np.power(GROWTH, safe.astype(np.float64)) / (GROWTH + 1.0)
    return np.where(index == _ZERO, 0.0, values)


@dataclass(frozen=True)
class LogHistogram:
    """Counts by bucket index, both sorted by index, no empty bucket."""

    index: npt.NDArray[np.int64]
    count: npt.NDArray[np.int64]

    @classmethod
    def of(cls, values: npt.NDArray[np.float64]) -> LogHistogram:
        """The histogram of ``values`` (NaN skipped)."""
        v = values[~np.isnan(values)]
        positive = v > 0
        index = np.full(len(v), _ZERO, np.int64)
        index[positive] = np.ceil(np.log(v[positive]) / _LOG_G).astype(np.int64)
        zeros = int(np.count_nonzero(~positive))
        found = index[positive]
        low = int(found.min()) if len(found) else 0
        counts = np.bincount(found - low)  # a few thousand buckets: no sort of the values
        keys = np.flatnonzero(counts)
        index_out = np.concatenate([[_ZERO] if zeros else [], keys + low]).astype(np.int64)
        count_out = np.concatenate([[zeros] if zeros else [], counts[keys]]).astype(np.int64)
        return cls(index_out, count_out)

    @classmethod
    def merge(cls, parts: list[LogHistogram]) -> LogHistogram:
        if not parts:
            return cls(np.zeros(0, np.int64), np.zeros(0, np.int64))
        index = np.concatenate([p.index for p in parts])
        count = np.concatenate([p.count for p in parts])
        keys, inverse = np.unique(index, return_inverse=True)
        sums = np.bincount(inverse, weights=count, minlength=len(keys))
        return cls(keys.astype(np.int64), np.rint(sums).astype(np.int64))

    @property
    def total(self) -> int:
        return int(self.count.sum())

    def quantiles(self, qs: tuple[float, ...]) -> list[float | None]:
        """Each quantile as ``pandas.Series.quantile`` would give it, to ``PRECISION``."""
        n = self.total
        if n == 0:
            return [None for _ in qs]
        ends = np.cumsum(self.count)  # bucket k holds the order statistics [ends[k-1], ends[k])
        values = _bucket_value(self.index)
        out: list[float | None] = []
        for q in qs:
            rank = (n - 1) * q
            lo, hi = int(np.floor(rank)), int(np.ceil(rank))
            v_lo = values[np.searchsorted(ends, lo, side="right")]
            v_hi = values[np.searchsorted(ends, hi, side="right")]
            out.append(float(v_lo + (v_hi - v_lo) * (rank - lo)))
        return out

    def edges(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Each bucket's lower and upper bound (0 and 0 for the bucket of zeros)."""
        upper = np.where(self.index == _ZERO, 0.0, np.power(GROWTH, self.index.astype(float)))
        lower = np.where(self.index == _ZERO, 0.0, upper / GROWTH)
        return lower, upper

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index.tolist(), "count": self.count.tolist()}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> LogHistogram:
        return cls(np.asarray(doc["index"], np.int64), np.asarray(doc["count"], np.int64))
