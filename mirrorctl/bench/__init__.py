"""The mirroring benchmark: mirror off / on / on + analysis on a two-node lab, in the seed's tables.

It lives in ``mirrorctl`` rather than the repo's ``bench/`` because ``mirrorctl bench`` must work
from an installed wheel, which ships only the packages (``bench/`` is a checkout-only tool).
"""

from __future__ import annotations

from mirrorctl.bench._errors import BenchError
from mirrorctl.bench._report import load, write
from mirrorctl.bench._run import CONNECTIONS, SIZES, Config, Result, run
from mirrorctl.bench._table import MODES

__all__ = [
    "CONNECTIONS",
    "MODES",
    "SIZES",
    "BenchError",
    "Config",
    "Result",
    "load",
    "run",
    "write",
]
