"""Errors of the capture layer: they carry the source (interface or file) and the errno."""

from __future__ import annotations


class CaptureError(Exception):
    """Opening or reading a capture source failed (interface, ring, BPF filter, file)."""

    exit_code = 1

    def __init__(self, message: str, *, source: str = "", errno: int | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.errno = errno
