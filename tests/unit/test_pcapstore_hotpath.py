"""The pcap store's per-frame work, made cheap: the compiled record packing, the pair unique the
MAC table and the index count with, and the page cache dropped behind the writer."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from analyzers import decode
from capture import FrameBatch, open_capture_file, pcap_file_header, pcap_records
from exporters import PcapStore, StoreConfig
from exporters._pcapcache import PageCacheShedder
from exporters._pcapindex import address_key, unique_pairs
from exporters._pcapmacs import MacTable
from tests.unit._pcapkit import T0, A, B, C, batch, tcp4, udp6


def _reference_records(frames: FrameBatch, snaplen: int) -> bytes:
    out = bytearray()
    for i in range(len(frames)):
        data = frames.frame(i)[:snaplen]
        sec, nsec = divmod(int(frames.ts_ns[i]), 1_000_000_000)
        out += struct.pack("<IIII", sec, nsec, len(data), int(frames.wirelens[i])) + data
    return bytes(out)


def test_records_are_the_frames_cut_to_the_snaplen_with_their_wire_lengths() -> None:
    """Every frame becomes one nanosecond record: seconds and nanoseconds of its time (across
    second boundaries), caplen cut to the snaplen, the wire length kept, then its bytes."""
    rng = np.random.default_rng(7)
    frames = [rng.integers(0, 256, int(n), dtype=np.uint8).tobytes() for n in (60, 1, 300, 1514, 0)]
    times = [T0, T0 + 999_999_999, T0 + 1_000_000_000, T0 + 5, (2**32 - 1) * 10**9 + 5]
    fb = FrameBatch.from_frames(frames, times, wirelens=[60, 9000, 300, 1514, 64])
    for snaplen in (262_144, 200, 1):
        assert pcap_records(fb, snaplen).tobytes() == _reference_records(fb, snaplen)
    assert pcap_records(FrameBatch.from_frames([], []), 100).size == 0


def test_packed_records_read_back_as_the_same_frames(tmp_path: Path) -> None:
    """A file of a header and packed records reads back frame for frame, time for time."""
    fb, _ = batch([tcp4(A, B), udp6(B, C), tcp4(C, A, payload=900)], [T0, T0 + 7, T0 + 10**9])
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap_file_header() + pcap_records(fb, 262_144).tobytes())
    with open_capture_file(path) as source:
        back = [b for b in source.batches() if len(b)]
    assert [back[0].frame(i) for i in range(3)] == [fb.frame(i) for i in range(3)]
    assert back[0].ts_ns.tolist() == fb.ts_ns.tolist()


def test_unique_pairs_counts_each_128_bit_key_once_with_its_first_row() -> None:
    """Distinct (hi, lo) pairs with their counts and first rows, as ``np.unique`` on the
    structured pairs gives them; keys equal in one half only stay apart; no rows, no pairs."""
    rng = np.random.default_rng(3)
    hi = rng.integers(0, 3, 5000).astype(np.uint64) << np.uint64(60)
    lo = rng.integers(0, 40, 5000).astype(np.uint64)
    got_hi, got_lo, first, counts = unique_pairs(hi, lo)
    pairs = np.empty(hi.size, [("hi", "<u8"), ("lo", "<u8")])
    pairs["hi"], pairs["lo"] = hi, lo
    want, want_first, want_counts = np.unique(pairs, return_index=True, return_counts=True)
    assert got_hi.tolist() == want["hi"].tolist()
    assert got_lo.tolist() == want["lo"].tolist()
    assert counts.tolist() == want_counts.tolist()
    assert (hi[first] == got_hi).all()
    assert (lo[first] == got_lo).all()
    assert first.tolist() == want_first.tolist()
    empty = np.empty(0, np.uint64)
    assert all(part.size == 0 for part in unique_pairs(empty, empty))


def test_the_mac_table_learns_each_address_from_its_ip_frames() -> None:
    """Each IPv4 and IPv6 source address maps to the MAC its frames came from."""
    table = MacTable()
    frames = [tcp4(A, B), udp6(B, C), tcp4(C, A), tcp4(A, C)] * 3
    table.on_frames(*batch(frames, [T0 + i for i in range(len(frames))]))
    macs = table.macs()
    for key, pod in ((A.v4, A), (B.v6, B), (C.v4, C)):
        assert macs[address_key(key)] == int(pod.mac.replace(":", ""), 16)


def _cached_bytes(path: Path) -> int:
    out = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out.split()[0])


def test_the_page_cache_behind_the_last_bytes_of_the_file_is_dropped(tmp_path: Path) -> None:
    """Of a file written past the lag, only about the newest ``keep`` bytes stay cached; the
    file reads back whole."""
    if shutil.which("fincore") is None:
        pytest.skip("fincore (util-linux) not installed")
    path = tmp_path / "f.pcap"
    chunk = np.random.default_rng(1).integers(0, 256, 1 << 20, dtype=np.uint8).tobytes()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        shedder = PageCacheShedder(fd, keep=4 << 20, step=1 << 20)
        for k in range(1, 33):
            os.write(fd, chunk)
            os.fsync(fd)  # clean pages, so each call drops its whole range at once
            shedder.written(k << 20)
    finally:
        os.close(fd)
    cached = _cached_bytes(path)
    if cached == 32 << 20 and os.statvfs(tmp_path).f_blocks == 0:
        pytest.skip("the filesystem keeps files in memory")
    assert cached <= 6 << 20
    assert path.read_bytes() == chunk * 32


def test_advice_the_file_refuses_is_ignored() -> None:
    """A descriptor the kernel refuses advice for (a pipe) raises nothing."""
    r, w = os.pipe()
    try:
        shedder = PageCacheShedder(w, keep=0, step=1)
        shedder.written(10)
        shedder.written(20)
    finally:
        os.close(r)
        os.close(w)


def test_a_batch_over_a_reusable_buffer_is_stored_as_it_was_when_written(tmp_path: Path) -> None:
    """A batch whose buffer its source may overwrite (here a bytearray, overwritten right after
    ``write``) is copied before ``write`` returns: the file holds the frames as they were."""
    frames = [tcp4(A, B), tcp4(B, A)]
    buffer = bytearray(b"".join(frames))
    fb = FrameBatch(
        data=np.frombuffer(buffer, np.uint8),
        offsets=np.array([0, len(frames[0])], np.int64),
        caplens=np.array([len(f) for f in frames], np.int64),
        wirelens=np.array([len(f) for f in frames], np.int64),
        ts_ns=np.array([T0, T0 + 1], np.int64),
    )
    store = PcapStore(StoreConfig(directory=tmp_path, node="node1", min_free_bytes=0))
    store.write(fb, decode(fb))
    buffer[:] = bytes(len(buffer))
    store.close()
    (path,) = tmp_path.glob("*.pcap")
    with open_capture_file(path) as source:
        back = [b for b in source.batches() if len(b)]
    assert [back[0].frame(i) for i in range(2)] == frames
