"""The pcap store on a filesystem that fills up (a 1 MiB tmpfs): it never raises, says it is full,
counts what it could not store, and resumes when space returns."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporters import PcapArchive, PcapQuery, PcapStore, StoreConfig
from tests.unit._pcapkit import T0, A, B, Clock, batch, tcp4

pytestmark = pytest.mark.root

MS = 1_000_000


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted under the test's directory, unmounted even if the test fails."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path: Path) -> None:
    """Write ``path`` until the filesystem refuses (ENOSPC)."""
    chunk = b"\0" * 4096
    with path.open("wb", buffering=0) as f:
        while True:
            try:
                f.write(chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                return


def test_a_full_filesystem_stops_storing_without_raising_and_storing_resumes(
    small_fs: Path,
) -> None:
    """ENOSPC mid-file: no exception, full reported, frames counted; retries evict the oldest
    files, and with nothing left to evict it stays full; once space is freed it resumes, and
    every frame served is a whole frame that was sent."""
    clock = Clock()
    store = PcapStore(
        StoreConfig(
            directory=small_fs / "pcaps",
            node="node1",
            quota_bytes=64 << 20,
            max_file_bytes=64 << 10,
            min_free_bytes=0,
            snaplen=1500,
            retry_s=1.0,
        ),
        clock=clock,
    )
    frame = tcp4(A, B, payload=900)
    ts = T0

    def write(n: int) -> None:
        nonlocal ts
        store.write(*batch([frame] * n, [ts + i for i in range(n)]))
        store.flush()  # the writer thread has written it
        ts += n * MS

    for _ in range(10):
        write(10)  # ~100 KB: one closed file, one open
    assert store.counters().frames_stored == 100
    fill(small_fs / "filler")
    write(10)
    c = store.counters()
    assert c.full
    assert c.full_reason == "disk full"
    assert c.write_errors == 1
    assert c.frames_not_stored == 10
    # Each retry evicts the store's oldest files to make room for a new file, and resumes when
    # that is enough; whatever it frees, something else takes. Once nothing of its own is left
    # to evict, it stays full.
    for k in range(20):
        clock.now += 1.0
        write(10)
        if store.counters().full:
            break
        fill(small_fs / f"filler{k}")
    c = store.counters()
    assert c.full
    assert "no room" in c.full_reason or c.full_reason == "disk full"
    assert c.evictions >= 1
    not_stored = c.frames_not_stored
    clock.now += 1.0
    write(10)
    assert store.counters().frames_not_stored == not_stored + 10
    for filler in small_fs.glob("filler*"):
        filler.unlink()
    clock.now += 1.0
    write(10)
    c = store.counters()
    assert not c.full
    assert c.frames_stored >= 110
    store.close()
    archive = PcapArchive(small_fs / "pcaps")
    served = list(archive.query(PcapQuery.of(addresses=[A.v4], start_ns=T0, end_ns=ts)))
    assert served
    assert all(f.data == frame for f in served)
    assert served[-1].ts_ns == ts - 10 * MS + 9  # the frames after resuming are there
