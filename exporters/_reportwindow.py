"""A report's window: ``--since D`` or ``--start T --end T``, and the durations and times they take.

A window is half-open, ``[start, end)``, and counts the records that *ended* in it (``ts +
duration``), as Zeek's conn.log does: a record is written when its flow ends.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``1h``, ``7d``, ``2w`` as seconds; ``ValueError`` otherwise."""
    m = _DURATION.match(text)
    if m is None:
        raise ValueError(f"{text!r} is not a duration like 90s, 15m, 1h or 7d")
    seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    return seconds


def parse_time(text: str) -> float:
    """RFC 3339 (``2026-11-26T12:00:00Z``, an offset, or no zone meaning UTC) or epoch seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{text!r} is neither RFC 3339 nor seconds since the epoch") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def iso(t: float) -> str:
    """``t`` as RFC 3339 in UTC, to the second."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Window:
    """``[start, end)`` in epoch seconds; None is unbounded on that side."""

    start: float | None = None
    end: float | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"the window ends ({iso(self.end)}) before it starts")

    @classmethod
    def since(cls, duration_s: float, now: float | None = None) -> Window:
        end = time.time() if now is None else now
        return cls(end - duration_s, end)

    def describe(self) -> str:
        first = "the first record" if self.start is None else iso(self.start)
        last = "the last record" if self.end is None else iso(self.end)
        return f"{first} to {last}"
