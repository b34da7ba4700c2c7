"""Errors of the local lab."""

from __future__ import annotations

from capture import MirrorscopeError


class LabError(MirrorscopeError):
    """Building or tearing down the local lab failed."""
