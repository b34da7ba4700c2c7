"""A download's time window from request text: ``since=5m`` or ``start=``/``end=`` (RFC 3339 or
epoch seconds). Errors are ``ValueError``s that start with the parameter's name."""

from __future__ import annotations

import re
from datetime import datetime

__all__ = ["parse_duration", "parse_time", "window"]

_NS = 1_000_000_000
_DURATION = re.compile(r"(?P<n>\d+(?:\.\d+)?)(?P<unit>ms|s|m|h|d)?")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_EPOCH = re.compile(r"\d+(?:\.\d+)?")


def parse_duration(text: str, name: str = "since") -> int:
    """``90``, ``90s``, ``5m``, ``1.5h``, ``2d``, ``500ms`` as nanoseconds (> 0)."""
    m = _DURATION.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"{name}: {text!r} is not a duration like 30s, 5m or 1h")
    ns = int(float(m["n"]) * _UNIT_S[m["unit"]] * _NS)
    if ns <= 0:
        raise ValueError(f"{name}: {text!r} must be longer than zero")
    return ns


def parse_time(text: str, name: str) -> int:
    """RFC 3339 (``2026-11-26T13:00:00Z``, an offset, fractions) or epoch seconds, as ns."""
    t = text.strip()
    if _EPOCH.fullmatch(t):
        sec, _, frac = t.partition(".")
        return int(sec) * _NS + int((frac + "000000000")[:9])
    try:
        when = datetime.fromisoformat(t.replace("z", "Z"))
    except ValueError:
        raise ValueError(
            f"{name}: {text!r} is neither RFC 3339 (2026-11-26T13:00:00Z) nor epoch seconds"
        ) from None
    if when.tzinfo is None:
        raise ValueError(f"{name}: {text!r} has no time zone (add Z or an offset)")
    return int(when.timestamp()) * _NS + when.microsecond * 1000


def window(
    since: str | None, start: str | None, end: str | None, *, now_ns: int, default: str = "5m"
) -> tuple[int, int]:
    """``[start, end)`` in ns: ``since`` before now, or ``start`` (to ``end`` or now)."""
    if since is not None and start is not None:
        raise ValueError("since: give since or start, not both")
    if since is not None and end is not None:
        raise ValueError("end: goes with start, not with since")
    end_ns = parse_time(end, "end") if end is not None else now_ns
    if start is not None:
        start_ns = parse_time(start, "start")
    else:
        start_ns = end_ns - parse_duration(since if since is not None else default)
    if end_ns <= start_ns:
        raise ValueError(f"end: {end!r} is not after start {start!r}")
    return start_ns, end_ns
