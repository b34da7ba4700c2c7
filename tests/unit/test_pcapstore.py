"""The pcap store's writing side: rotation, stored snaplen, quota, free-space floor, recovery."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capture import open_capture_file
from exporters import PcapArchive, PcapQuery, PcapStore, PcapStoreError, StoreConfig
from exporters._pcapfiles import SIDECAR_SUFFIX, parse_name, scan
from tests.unit._pcapkit import T0, A, B, C, Clock, batch, tcp4

MS = 1_000_000


def config(directory: Path, **kw: object) -> StoreConfig:
    settings: dict[str, object] = {
        "node": "node1",
        "quota_bytes": 1 << 30,
        "max_file_bytes": 1 << 20,
        "max_file_age_s": 60.0,
        "min_free_bytes": 0,
        "snaplen": 262_144,
    }
    settings.update(kw)
    return StoreConfig(directory=directory, **settings)  # type: ignore[arg-type]


def frames_in(directory: Path) -> list[tuple[int, int, int]]:
    """(ts, caplen, wirelen) of every stored frame, file by file, oldest file first."""
    out = []
    for f in scan(directory):
        with open_capture_file(f.path) as src:
            for b in src.batches():
                out += zip(b.ts_ns.tolist(), b.caplens.tolist(), b.wirelens.tolist(), strict=True)
    return out


def directory_bytes(directory: Path) -> int:
    return sum(f.size + f.sidecar_size for f in scan(directory))


def test_frames_are_stored_with_their_times_and_an_index_when_the_file_closes(
    tmp_path: Path,
) -> None:
    """Every frame lands in one pcap with ns timestamps; closing writes the sidecar index."""
    store = PcapStore(config(tmp_path, worker=3), clock=Clock())
    store.write(*batch([tcp4(A, B), tcp4(B, A), tcp4(C, A)], [T0, T0 + 1, T0 + 2]))
    store.flush()  # the writer thread has written it
    assert store.open_file() is not None
    store.close()
    files = scan(tmp_path)
    assert len(files) == 1
    assert parse_name(files[0].name) == ("node1", 3, T0, 0)
    assert [t for t, _, _ in frames_in(tmp_path)] == [T0, T0 + 1, T0 + 2]
    doc = json.loads(files[0].sidecar.read_text())
    assert doc["packets"] == 3
    assert doc["addresses"] == {A.v4: 3, B.v4: 2, C.v4: 1}
    assert (doc["first_ns"], doc["last_ns"]) == (T0, T0 + 2)
    c = store.counters()
    assert (c.frames_stored, c.frames_not_stored, c.full) == (3, 0, False)


def test_frames_are_cut_to_the_stored_snaplen_and_keep_their_wire_length(tmp_path: Path) -> None:
    """The stored snaplen truncates frames; the wire length is kept."""
    store = PcapStore(config(tmp_path, snaplen=128), clock=Clock())
    big = tcp4(A, B, payload=1000)
    store.write(*batch([big], [T0]))
    store.close()
    assert frames_in(tmp_path) == [(T0, 128, len(big))]


def test_files_rotate_by_size_and_never_exceed_it(tmp_path: Path) -> None:
    """A file (pcap plus sidecar) stays within max_file_bytes; a batch splits across files."""
    store = PcapStore(config(tmp_path, max_file_bytes=8192, snaplen=128), clock=Clock())
    sent = []
    for k in range(10):
        ts = [T0 + k * 100 * MS + i for i in range(40)]
        store.write(*batch([tcp4(A, B, payload=100)] * 40, ts))
        sent += ts
    store.close()
    files = scan(tmp_path)
    assert len(files) > 5
    assert all(f.size + f.sidecar_size <= 8192 for f in files)
    assert all(f.closed for f in files)
    assert [t for t, _, _ in frames_in(tmp_path)] == sent


def test_files_rotate_by_age_on_write_and_on_tick(tmp_path: Path) -> None:
    """A file older than max_file_age_s is closed at the next write, or by tick when idle."""
    clock = Clock()
    store = PcapStore(config(tmp_path, max_file_age_s=10.0), clock=clock)
    store.write(*batch([tcp4(A, B)], [T0]))
    store.flush()  # the writer thread has written it
    clock.now += 9.9
    store.write(*batch([tcp4(A, B)], [T0 + 1]))
    store.flush()  # the writer thread has written it
    assert len(scan(tmp_path)) == 1
    clock.now += 0.1
    store.write(*batch([tcp4(A, B)], [T0 + 2]))
    store.flush()  # the writer thread has written it
    assert [f.closed for f in scan(tmp_path)] == [True, False]
    clock.now += 10.0
    store.tick()
    store.flush()  # the writer thread closes it
    assert store.open_file() is None
    assert [f.closed for f in scan(tmp_path)] == [True, True]


def test_quota_evicts_the_oldest_files_and_is_never_exceeded(tmp_path: Path) -> None:
    """Filling past the quota deletes the oldest files; the newest stay and stay queryable."""
    quota = 6 * 8192
    store = PcapStore(
        config(tmp_path, quota_bytes=quota, max_file_bytes=8192, snaplen=128), clock=Clock()
    )
    for k in range(60):
        store.write(*batch([tcp4(A, B, payload=100)] * 10, [T0 + k * MS + i for i in range(10)]))
        store.flush()  # the writer thread has written it
        assert directory_bytes(tmp_path) <= quota
    c = store.counters()
    assert c.evictions > 0
    assert c.frames_not_stored == 0
    assert not c.full
    oldest = min(f.start_ns for f in scan(tmp_path))
    assert oldest > T0  # the first files went
    frames = list(
        PcapArchive(tmp_path, open_files=lambda: [o for o in [store.open_file()] if o]).query(
            PcapQuery.of(addresses=[A.v4], start_ns=T0, end_ns=T0 + 60 * MS)
        )
    )
    assert frames[-1].ts_ns == T0 + 59 * MS + 9  # the newest frame is there
    assert frames[0].ts_ns >= oldest


def test_two_workers_share_one_quota(tmp_path: Path) -> None:
    """Two workers writing into one directory together stay within the quota, each its files."""
    quota = 8 * 8192
    stores = [
        PcapStore(
            config(tmp_path, worker=w, quota_bytes=quota, max_file_bytes=8192, snaplen=128),
            clock=Clock(),
        )
        for w in (0, 1)
    ]
    for k in range(50):
        for w, store in enumerate(stores):
            ts = [T0 + k * MS + w * 1000 + i for i in range(8)]
            store.write(*batch([tcp4(A, B, payload=100)] * 8, ts))
            store.flush()  # the writer thread has written it
            assert directory_bytes(tmp_path) <= quota
    assert {f.worker for f in scan(tmp_path)} == {0, 1}
    assert sum(s.counters().evictions for s in stores) > 0


def test_below_the_free_space_floor_the_store_counts_instead_of_writing_and_resumes(
    tmp_path: Path,
) -> None:
    """Free space under the floor: frames counted as not stored, full reported, no exception;
    storing resumes once space returns (checked every retry_s)."""
    free = [10 << 30]
    clock = Clock()
    store = PcapStore(
        config(tmp_path, min_free_bytes=1 << 30, retry_s=1.0),
        clock=clock,
        free_bytes=lambda _: free[0],
    )
    store.write(*batch([tcp4(A, B)], [T0]))
    store.flush()  # the writer thread has written it
    free[0] = 100 << 20  # something else filled the disk
    clock.now += 1.0
    store.write(*batch([tcp4(A, B)] * 5, [T0 + i for i in range(1, 6)]))
    store.flush()  # the writer thread has written it
    c = store.counters()
    assert c.full
    assert "floor" in c.full_reason
    assert c.frames_not_stored == 5
    assert [f.closed for f in scan(tmp_path)] == [True]
    store.write(*batch([tcp4(A, B)] * 2, [T0 + 6, T0 + 7]))
    store.flush()  # the writer thread has written it
    assert store.counters().frames_not_stored == 7
    free[0] = 10 << 30
    store.write(*batch([tcp4(A, B)], [T0 + 8]))  # before retry_s passed: still counted
    store.flush()  # the writer thread has written it
    assert store.counters().frames_not_stored == 8
    clock.now += 1.0
    store.write(*batch([tcp4(A, B)], [T0 + 9]))
    store.flush()  # the writer thread has written it
    c = store.counters()
    assert not c.full
    assert c.full_reason == ""
    assert c.frames_stored == 2
    store.close()
    assert [t for t, _, _ in frames_in(tmp_path)] == [T0, T0 + 9]


def test_a_file_left_without_an_index_by_a_crash_is_indexed_at_start(tmp_path: Path) -> None:
    """A worker restarting indexes the file its previous run left open."""
    crashed = PcapStore(config(tmp_path), clock=Clock())
    crashed.write(*batch([tcp4(A, B), tcp4(C, B)], [T0, T0 + 1]))  # never closed
    crashed.flush()  # the writer thread has written it
    [f] = scan(tmp_path)
    assert not f.closed
    PcapStore(config(tmp_path), clock=Clock())
    [f] = scan(tmp_path)
    assert f.closed
    doc = json.loads(f.sidecar.read_text())
    assert doc["addresses"] == {A.v4: 1, B.v4: 2, C.v4: 1}


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ({"node": "../etc"}, "node name"),
        ({"snaplen": 64}, "snaplen"),
        ({"quota_bytes": 1000, "max_file_bytes": 1 << 20}, "quota"),
        ({"max_file_bytes": 1000}, "max file size"),
    ],
)
def test_settings_that_cannot_work_are_refused_with_the_reason(
    tmp_path: Path, setting: dict[str, object], words: str
) -> None:
    """A bad node name, snaplen, quota or file size fails at construction, naming it."""
    with pytest.raises(PcapStoreError, match=words):
        PcapStore(config(tmp_path, **setting))


def test_store_files_are_only_those_named_by_the_store(tmp_path: Path) -> None:
    """Other files in the directory are neither listed, evicted nor counted."""
    (tmp_path / "notes.txt").write_text("keep me")
    (tmp_path / ("x.pcap" + SIDECAR_SUFFIX)).write_text("{}")
    store = PcapStore(config(tmp_path), clock=Clock())
    store.write(*batch([tcp4(A, B)], [T0]))
    store.close()
    assert [f.name for f in scan(tmp_path)] == [scan(tmp_path)[0].name]
    assert (tmp_path / "notes.txt").read_text() == "keep me"
