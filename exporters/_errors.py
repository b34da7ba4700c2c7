"""Errors of the exporters: they carry what the user passed and what the OS said."""

from __future__ import annotations

from capture import MirrorscopeError


class ExporterError(MirrorscopeError):
    """An exporter could not start or write its output."""


class ListenError(ExporterError):
    """The metrics listen address is malformed or cannot be bound."""

    exit_code = 2

    def __init__(self, listen: str, reason: str) -> None:
        super().__init__(
            f"cannot serve metrics on {listen!r}: {reason} "
            "(pass --listen ADDR:PORT, e.g. 0.0.0.0:10097 or [::]:10097, with a free port)"
        )
        self.listen = listen
        self.reason = reason


class PcapStoreError(ExporterError):
    """The pcap store's settings are inconsistent or its directory cannot be used."""

    exit_code = 2

    def __init__(self, directory: str, reason: str) -> None:
        super().__init__(f"cannot store pcaps in {directory}: {reason}")
        self.directory = directory
        self.reason = reason
