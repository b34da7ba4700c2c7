"""The benchmark's own error: a tool that failed or printed nothing we can read."""

from __future__ import annotations

from capture import MirrorscopeError


class BenchError(MirrorscopeError):
    """A measurement could not be taken; the message says which and why."""
