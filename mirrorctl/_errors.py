"""The exception hierarchy. Messages say what went wrong and what to do; fields carry the facts."""

from __future__ import annotations


class MirrorscopeError(Exception):
    """Root of every error mirrorscope raises on purpose. The CLI prints it as one line."""

    exit_code = 1


class MirrorError(MirrorscopeError):
    """Setting up or inspecting OVS mirroring failed."""


class OVSDBUnreachableError(MirrorError):
    """The OVSDB endpoint did not answer."""

    exit_code = 3

    def __init__(self, endpoint: str, reason: str) -> None:
        super().__init__(
            f"cannot reach OVSDB at {endpoint}: {reason} "
            "(is ovsdb-server running? pass --ovsdb or set MIRRORSCOPE_OVSDB)"
        )
        self.endpoint = endpoint
        self.reason = reason


class NotFoundError(MirrorError):
    """A bridge, pod, namespace or interface the user named does not exist."""

    exit_code = 2


class LabError(MirrorscopeError):
    """Building or tearing down the local lab failed."""
