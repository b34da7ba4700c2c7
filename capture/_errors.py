"""The root of every error mirrorscope raises on purpose, and the capture layer's own errors.

The root lives here because capture is the first stage: analyzers, exporters and the control plane
all import capture already, so none of them has to import the control plane to derive from it.
"""

from __future__ import annotations


class MirrorscopeError(Exception):
    """Root of every error mirrorscope raises on purpose. The CLI prints it as one line."""

    exit_code = 1


class CaptureError(MirrorscopeError):
    """Opening or reading a capture source failed (interface, ring, BPF filter, file).

    Carries the source (interface or file) and the errno the OS gave, when there was one.
    """

    def __init__(self, message: str, *, source: str = "", errno: int | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.errno = errno
