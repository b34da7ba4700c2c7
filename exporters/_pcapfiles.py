"""The pcap store's directory layout: file names, sidecars, and what a scan of the directory sees.

Every worker writes its own files, named ``pcap-<node>-w<worker>-<UTC start>.pcap`` (the start is
the first frame's time to the nanosecond, e.g. ``pcap-node1-w0-20261126T130000.000000000Z.pcap``;
a ``-<n>`` suffix before ``.pcap`` keeps names unique when two files would start at the same
nanosecond). A file's index is written beside it as ``<file>.idx.json`` when the file closes, so a
file without a sidecar is one being written (or one a crash left open). Names are only ever made
here and parsed from a directory listing: no request value becomes a path.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "SIDECAR_SUFFIX",
    "StoredFile",
    "file_name",
    "parse_name",
    "scan",
    "sidecar_path",
    "valid_node",
]

SIDECAR_SUFFIX = ".idx.json"
_NS = 1_000_000_000
_NODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_NAME = re.compile(
    r"pcap-(?P<node>[A-Za-z0-9][A-Za-z0-9._-]*)-w(?P<worker>\d+)-"
    r"(?P<start>\d{8}T\d{6})\.(?P<frac>\d{9})Z(?:-(?P<seq>\d+))?\.pcap"
)


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One pcap file of the store as a directory scan found it."""

    path: Path
    node: str
    worker: int
    start_ns: int  # the first frame's time, from the name
    seq: int
    size: int  # bytes of the pcap file
    sidecar_size: int  # bytes of its index sidecar; 0 when there is none

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def sidecar(self) -> Path:
        return sidecar_path(self.path)

    @property
    def closed(self) -> bool:
        """Its index was written, so its writer is done with it."""
        return self.sidecar_size > 0

    @property
    def order(self) -> tuple[int, str]:
        """Oldest first: by start time, then name."""
        return (self.start_ns, self.path.name)


def sidecar_path(path: Path) -> Path:
    """Where the index of the pcap file ``path`` is kept."""
    return path.with_name(path.name + SIDECAR_SUFFIX)


def valid_node(node: str) -> bool:
    return _NODE.fullmatch(node) is not None


def file_name(node: str, worker: int, start_ns: int, seq: int = 0) -> str:
    """The name of a worker's file whose first frame is at ``start_ns``."""
    sec, frac = divmod(start_ns, _NS)
    stamp = datetime.fromtimestamp(sec, UTC).strftime("%Y%m%dT%H%M%S")
    suffix = f"-{seq}" if seq else ""
    return f"pcap-{node}-w{worker}-{stamp}.{frac:09d}Z{suffix}.pcap"


def parse_name(name: str) -> tuple[str, int, int, int] | None:
    """``(node, worker, start_ns, seq)`` of a store file name, None for any other name."""
    m = _NAME.fullmatch(name)
    if m is None:
        return None
    try:
        start = datetime.strptime(m["start"], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    start_ns = int(start.timestamp()) * _NS + int(m["frac"])
    return m["node"], int(m["worker"]), start_ns, int(m["seq"] or 0)


def scan(directory: Path) -> list[StoredFile]:
    """Every store file in ``directory``, oldest first (files vanishing meanwhile are skipped)."""
    sizes: dict[str, int] = {}
    try:
        with os.scandir(directory) as entries:
            for e in entries:
                try:
                    if e.is_file(follow_symlinks=False):
                        sizes[e.name] = e.stat(follow_symlinks=False).st_size
                except FileNotFoundError:
                    continue
    except FileNotFoundError:
        return []
    found = []
    for name, size in sizes.items():
        parsed = parse_name(name)
        if parsed is None:
            continue
        node, worker, start_ns, seq = parsed
        found.append(
            StoredFile(
                path=directory / name,
                node=node,
                worker=worker,
                start_ns=start_ns,
                seq=seq,
                size=size,
                sidecar_size=sizes.get(name + SIDECAR_SUFFIX, 0),
            )
        )
    found.sort(key=lambda f: f.order)
    return found
