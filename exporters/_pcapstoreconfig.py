"""A pcap store's settings (``StoreConfig``) and reports (``StoreCounters``, ``OpenFile``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from exporters._errors import PcapStoreError
from exporters._pcapfiles import valid_node
from exporters._pcapindex import FileIndex

FILE_HEADER = 24
RECORD_HEADER = 16
# A sidecar's size bound: fixed fields, then at most this much per address or MAC (an IPv6
# address spelled out, quotes, a colon, a ten-digit count and a comma fit in 64 bytes).
SIDECAR_BASE = 256
SIDECAR_PER_KEY = 64
# A file's header and the sidecar of one frame (two addresses, two MACs): with room for two
# frames beyond it, every frame fits in a file and no file outgrows max_file_bytes.
ONE_FRAME_OVERHEAD = FILE_HEADER + SIDECAR_BASE + 4 * SIDECAR_PER_KEY
MIN_SNAPLEN = 128  # enough for the Ethernet, IP and transport headers the index reads


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Where and how much one worker stores; ``directory`` may be shared by several workers."""

    directory: Path
    node: str
    worker: int = 0
    quota_bytes: int = 1 << 30  # every store file and sidecar in the directory
    max_file_bytes: int = 64 << 20  # one file and its sidecar
    max_file_age_s: float = 60.0
    min_free_bytes: int = 256 << 20  # free space the store leaves on the filesystem
    snaplen: int = 262_144  # stored bytes per frame (the analysis snaplen is separate)
    retry_s: float = 1.0  # when full: how often to try again; when writing: free-space checks
    queue_bytes: int = 64 << 20  # records waiting for the writer thread; beyond: dropped

    def check(self) -> None:
        """Raise ``PcapStoreError`` naming the first setting that cannot work."""
        problem = ""
        if not valid_node(self.node):
            problem = f"node name {self.node!r} must be letters, digits, '.', '_' or '-'"
        elif self.worker < 0:
            problem = f"worker {self.worker} must be >= 0"
        elif self.snaplen < MIN_SNAPLEN:
            problem = f"stored snaplen {self.snaplen} must be >= {MIN_SNAPLEN}"
        elif self.max_file_bytes < 2 * (self.snaplen + RECORD_HEADER) + ONE_FRAME_OVERHEAD:
            problem = f"max file size {self.max_file_bytes} must hold a few frames of the snaplen"
        elif self.quota_bytes < self.max_file_bytes:
            problem = f"quota {self.quota_bytes} is below one file ({self.max_file_bytes} bytes)"
        elif self.max_file_age_s <= 0 or self.retry_s <= 0 or self.min_free_bytes < 0:
            problem = "file age and retry interval must be > 0, the free-space floor >= 0"
        elif self.queue_bytes <= 0:
            problem = f"write queue size {self.queue_bytes} must be > 0"
        if problem:
            raise PcapStoreError(str(self.directory), problem)


@dataclass(frozen=True, slots=True)
class StoreCounters:
    """A snapshot of one worker's store. ``bytes``/``files`` are the directory's (every worker)
    as of this worker's last rotation plus its own file since: export them from one worker."""

    bytes: int
    files: int
    frames_stored: int
    bytes_written: int
    evictions: int  # files this worker deleted to make room
    write_errors: int
    frames_not_stored: int  # dropped while full, by a failed write or with the queue full
    frames_queue_full: int  # of those: dropped because the writer thread was behind
    queued_bytes: int  # records handed to the writer thread, not yet written
    full: bool
    full_reason: str


@dataclass(frozen=True, slots=True)
class OpenFile:
    """The file a worker is writing: its index so far and its size up to the last whole record."""

    path: Path
    index: FileIndex
    size: int
