"""The pcap/pcapng file source: formats, timestamps, batching, zero copy and damage handling."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from capture import (
    CaptureError,
    CorruptCaptureFileError,
    FrameBatch,
    PcapWriter,
    open_capture_file,
)
from capture._batch import LINKTYPE_ETHERNET, LINKTYPE_RAW

FRAMES = [bytes([i]) * (60 + i) for i in range(5)]
T0 = 1_700_000_000


def pcap_bytes(
    frames: list[bytes],
    *,
    endian: str = "<",
    nano: bool = False,
    linktype: int = LINKTYPE_ETHERNET,
    snaplen: int = 65535,
) -> bytes:
    """A classic pcap file with frame i at T0 + i seconds + (i+1) fraction units."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for i, f in enumerate(frames):
        out.append(struct.pack(endian + "IIII", T0 + i, i + 1, len(f), len(f) + 4))
        out.append(f)
    return b"".join(out)


def frames_of(path: Path, **kw: int) -> list[tuple[bytes, int, int, int, int]]:
    src = open_capture_file(path, **kw)
    out = []
    for b in src.batches():
        for i in range(len(b)):
            out.append(
                (b.frame(i), int(b.ts_ns[i]), int(b.caplens[i]), int(b.wirelens[i]), b.linktype)
            )
    src.close()
    return out


# --- pcapng builders ---------------------------------------------------------------------------


def block(e: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def shb(e: str = "<") -> bytes:
    return block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def option(e: str, code: int, value: bytes) -> bytes:
    return struct.pack(e + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def idb(
    e: str = "<",
    linktype: int = 1,
    snaplen: int = 0,
    tsresol: int | None = None,
    tsoffset: int | None = None,
) -> bytes:
    opts = b""
    if tsresol is not None:
        opts += option(e, 9, bytes([tsresol]))
    if tsoffset is not None:
        opts += option(e, 14, struct.pack(e + "q", tsoffset))
    if opts:
        opts += option(e, 0, b"")
    return block(e, 1, struct.pack(e + "HHI", linktype, 0, snaplen) + opts)


def epb(e: str, iface: int, ticks: int, frame: bytes, wirelen: int | None = None) -> bytes:
    wl = len(frame) if wirelen is None else wirelen
    hdr = struct.pack(e + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), wl)
    return block(e, 6, hdr + frame + b"\0" * (-len(frame) % 4) + option(e, 1, b"hi"))


def spb(e: str, frame: bytes, wirelen: int | None = None) -> bytes:
    wl = len(frame) if wirelen is None else wirelen
    return block(e, 3, struct.pack(e + "I", wl) + frame)


def opb(e: str, iface: int, ticks: int, frame: bytes) -> bytes:
    hdr = struct.pack(
        e + "HHIIII", iface, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame)
    )
    return block(e, 2, hdr + frame)


# --- classic pcap --------------------------------------------------------------------------------


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_classic_pcap_frames_timestamps_and_lengths(
    tmp_path: Path, endian: str, nano: bool
) -> None:
    """Both byte orders and both magics give the same bytes, lengths and ns timestamps."""
    p = tmp_path / "f.pcap"
    p.write_bytes(pcap_bytes(FRAMES, endian=endian, nano=nano))
    got = frames_of(p)
    unit = 1 if nano else 1000
    assert got == [
        (f, (T0 + i) * 10**9 + (i + 1) * unit, len(f), len(f) + 4, LINKTYPE_ETHERNET)
        for i, f in enumerate(FRAMES)
    ]


def test_batches_are_cut_at_batch_size_and_share_the_mapped_file(tmp_path: Path) -> None:
    """batch_size bounds each batch; every batch's data is a read-only view of the whole file."""
    p = tmp_path / "f.pcap"
    raw = pcap_bytes(FRAMES)
    p.write_bytes(raw)
    src = open_capture_file(p, batch_size=2)
    batches = list(src.batches())
    assert [len(b) for b in batches] == [2, 2, 1]
    for b in batches:
        assert b.data.nbytes == len(raw)
        assert not b.data.flags.writeable
        assert b.data.base is batches[0].data.base
    assert src.stats().received == 5
    assert src.stats().dropped == 0
    src.close()
    assert batches[2].frame(0) == FRAMES[4]  # views outlive close()


def test_linktype_comes_from_the_header_without_fcs_bits(tmp_path: Path) -> None:
    """The FCS flag bits of the header's link-type field are not part of the link type."""
    p = tmp_path / "f.pcap"
    p.write_bytes(pcap_bytes(FRAMES[:1], linktype=LINKTYPE_RAW | 0x1400_0000))
    assert frames_of(p)[0][4] == LINKTYPE_RAW


def test_empty_capture_yields_nothing(tmp_path: Path) -> None:
    """A header with no records is a valid, empty capture."""
    p = tmp_path / "f.pcap"
    p.write_bytes(pcap_bytes([]))
    assert frames_of(p) == []


# --- pcapng --------------------------------------------------------------------------------------


@pytest.mark.parametrize("e", ["<", ">"])
def test_pcapng_epb_spb_opb_and_unknown_blocks(tmp_path: Path, e: str) -> None:
    """EPB, SPB and OPB packets are read in order; unknown blocks and ISBs are skipped."""
    f0, f1, f2 = FRAMES[:3]
    data = (
        shb(e)
        + idb(e, snaplen=62)
        + epb(e, 0, 5_000_000, f0, wirelen=100)
        + block(e, 0x0BAD, b"custom")
        + spb(e, f1)  # 61 bytes, under the 62-byte snaplen
        + block(e, 5, b"\0" * 12)  # interface statistics
        + opb(e, 0, 7_000_000, f2)
    )
    p = tmp_path / "f.pcapng"
    p.write_bytes(data)
    assert frames_of(p) == [
        (f0, 5_000_000_000, 60, 100, 1),
        (f1, 0, 61, 61, 1),
        (f2, 7_000_000_000, 62, 62, 1),
    ]


def test_pcapng_spb_is_cut_to_the_interface_snaplen(tmp_path: Path) -> None:
    """An SPB's captured length is the smaller of its original length and the snaplen."""
    p = tmp_path / "f.pcapng"
    p.write_bytes(shb() + idb(snaplen=10) + spb("<", FRAMES[0]))
    assert frames_of(p) == [(FRAMES[0][:10], 0, 10, 60, 1)]


@pytest.mark.parametrize(
    ("tsresol", "ticks", "ns"),
    [
        (9, 1_700_000_000_123_456_789, 1_700_000_000_123_456_789),
        (3, 1_700_000_000_123, 1_700_000_000_123_000_000),
        (
            12,
            1_700_000_000_123_456_789_123 % 2**64,
            (1_700_000_000_123_456_789_123 % 2**64) // 1000,
        ),
        (0x80 | 10, (1_700_000_000 << 10) | 512, 1_700_000_000_500_000_000),
        (0x80 | 30, (5 << 30) | (1 << 28), 5_250_000_000),
        (0x80 | 40, (3 << 40) | (1 << 39), 3_500_000_000),
    ],
)
def test_pcapng_if_tsresol_decimal_and_binary(
    tmp_path: Path, tsresol: int, ticks: int, ns: int
) -> None:
    """if_tsresol in powers of ten and of two converts to nanoseconds since the epoch."""
    p = tmp_path / "f.pcapng"
    p.write_bytes(shb() + idb(tsresol=tsresol) + epb("<", 0, ticks, FRAMES[0]))
    assert frames_of(p)[0][1] == ns


def test_pcapng_if_tsoffset_is_added(tmp_path: Path) -> None:
    """if_tsoffset (seconds) is added to every timestamp of its interface."""
    p = tmp_path / "f.pcapng"
    p.write_bytes(shb() + idb(tsresol=9, tsoffset=100) + epb("<", 0, 7, FRAMES[0]))
    assert frames_of(p)[0][1] == 100_000_000_007


def test_pcapng_batches_hold_one_linktype(tmp_path: Path) -> None:
    """Packets of interfaces with different link types land in separate batches, in order."""
    e = "<"
    p = tmp_path / "f.pcapng"
    p.write_bytes(
        shb(e)
        + idb(e, linktype=1)
        + idb(e, linktype=101)
        + epb(e, 0, 1, FRAMES[0])
        + epb(e, 0, 2, FRAMES[1])
        + epb(e, 1, 3, FRAMES[2])
        + epb(e, 0, 4, FRAMES[3])
    )
    src = open_capture_file(p)
    batches = list(src.batches())
    assert [(len(b), b.linktype) for b in batches] == [(2, 1), (1, 101), (1, 1)]
    assert [b.frame(i) for b in batches for i in range(len(b))] == FRAMES[:4]


def test_pcapng_interfaces_with_one_linktype_share_a_batch(tmp_path: Path) -> None:
    """Two Ethernet interfaces with different resolutions share a batch, each converted right."""
    e = "<"
    p = tmp_path / "f.pcapng"
    p.write_bytes(
        shb(e) + idb(e) + idb(e, tsresol=9) + epb(e, 0, 1, FRAMES[0]) + epb(e, 1, 1, FRAMES[1])
    )
    batches = list(open_capture_file(p).batches())
    assert len(batches) == 1
    assert batches[0].ts_ns.tolist() == [1000, 1]


def test_pcapng_new_section_may_switch_byte_order(tmp_path: Path) -> None:
    """A second section in the other byte order, with its own interfaces, is read correctly."""
    p = tmp_path / "f.pcapng"
    p.write_bytes(
        shb("<")
        + idb("<", linktype=1)
        + epb("<", 0, 1, FRAMES[0])
        + shb(">")
        + idb(">", linktype=101, tsresol=9)
        + epb(">", 0, 2, FRAMES[1])
    )
    assert frames_of(p) == [(FRAMES[0], 1000, 60, 60, 1), (FRAMES[1], 2, 61, 61, 101)]


# --- damage --------------------------------------------------------------------------------------


def read_until_error(path: Path) -> tuple[list[bytes], CaptureError]:
    got: list[bytes] = []

    def read() -> None:
        src = open_capture_file(path, batch_size=2)
        for b in src.batches():
            got.extend(b.frame(i) for i in range(len(b)))

    with pytest.raises(CaptureError) as info:
        read()
    return got, info.value


def test_bad_magic_names_file_and_offset(tmp_path: Path) -> None:
    """A file that is neither pcap nor pcapng is refused at open with offset 0."""
    p = tmp_path / "notes.txt"
    p.write_bytes(b"hello, this is not a capture")
    got, err = read_until_error(p)
    assert got == []
    assert isinstance(err, CorruptCaptureFileError)
    assert err.offset == 0
    assert str(p) in str(err)
    assert "\n" not in str(err)


def test_missing_file_is_a_capture_error_with_errno(tmp_path: Path) -> None:
    """Opening a file that does not exist raises CaptureError carrying ENOENT."""
    with pytest.raises(CaptureError) as info:
        open_capture_file(tmp_path / "nope.pcap")
    assert info.value.errno == 2


def test_empty_file_is_damage(tmp_path: Path) -> None:
    """A zero-byte file is reported, not silently accepted."""
    p = tmp_path / "empty.pcap"
    p.write_bytes(b"")
    _, err = read_until_error(p)
    assert isinstance(err, CorruptCaptureFileError)


@pytest.mark.parametrize("cut", [1, 5, 15, 17])
def test_truncated_last_record_yields_the_frames_before_it(tmp_path: Path, cut: int) -> None:
    """Cutting into the last record (header or data) yields the others, then names its offset."""
    raw = pcap_bytes(FRAMES)
    p = tmp_path / "cut.pcap"
    p.write_bytes(raw[:-cut] if cut < 17 else raw[: len(raw) - len(FRAMES[4]) - 16 + 7])
    got, err = read_until_error(p)
    assert got == FRAMES[:4]
    assert isinstance(err, CorruptCaptureFileError)
    assert err.offset == len(raw) - len(FRAMES[4]) - 16
    assert f"byte offset {err.offset}" in str(err)


def test_absurd_caplen_stops_at_that_record(tmp_path: Path) -> None:
    """A record claiming more than any snaplen is damage even if the file is long enough."""
    raw = bytearray(pcap_bytes(FRAMES) + b"\0" * 3_000_000)
    third = 24 + sum(16 + len(f) for f in FRAMES[:2])
    struct.pack_into("<I", raw, third + 8, 2_000_000)
    p = tmp_path / "absurd.pcap"
    p.write_bytes(bytes(raw))
    got, err = read_until_error(p)
    assert got == FRAMES[:2]
    assert isinstance(err, CorruptCaptureFileError)
    assert err.offset == third
    assert "2000000" in str(err)


def test_pcapng_block_length_beyond_file(tmp_path: Path) -> None:
    """A pcapng block whose length runs past the file end stops the read at that block."""
    good = shb() + idb() + epb("<", 0, 1, FRAMES[0])
    bad = bytearray(epb("<", 0, 2, FRAMES[1]))
    struct.pack_into("<I", bad, 4, 4096)
    p = tmp_path / "f.pcapng"
    p.write_bytes(good + bytes(bad))
    got, err = read_until_error(p)
    assert got == [FRAMES[0]]
    assert isinstance(err, CorruptCaptureFileError)
    assert err.offset == len(good)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: struct.pack_into("<I", b, 4, 13),  # not a multiple of 4
        lambda b: struct.pack_into("<I", b, len(b) - 4, 8),  # trailing length differs
        lambda b: struct.pack_into("<I", b, 20, 10_000),  # caplen beyond the block
        lambda b: struct.pack_into("<I", b, 8, 7),  # undeclared interface
    ],
)
def test_pcapng_corrupt_packet_block(tmp_path: Path, mangle: object) -> None:
    """Inconsistent EPB fields are damage at the block's offset, after the good packets."""
    good = shb() + idb() + epb("<", 0, 1, FRAMES[0])
    bad = bytearray(epb("<", 0, 2, FRAMES[1]))
    mangle(bad)  # type: ignore[operator]
    p = tmp_path / "f.pcapng"
    p.write_bytes(good + bytes(bad) + epb("<", 0, 3, FRAMES[2]))
    got, err = read_until_error(p)
    assert got == [FRAMES[0]]
    assert isinstance(err, CorruptCaptureFileError)
    assert err.offset == len(good)


def test_random_damage_never_raises_anything_but_capture_error(tmp_path: Path) -> None:
    """Truncating and scribbling over valid files yields frames or CaptureError, nothing else."""
    rng = np.random.default_rng(7)
    e = "<"
    ng = (
        shb(e) + idb(e, tsresol=0x80 | 20) + b"".join(epb(e, 0, i, f) for i, f in enumerate(FRAMES))
    )
    p = tmp_path / "fuzz"
    for raw in (pcap_bytes(FRAMES), ng):
        for _ in range(300):
            b = bytearray(raw[: int(rng.integers(1, len(raw) + 1))])
            for _ in range(int(rng.integers(0, 4))):
                b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
            p.write_bytes(bytes(b))
            try:
                src = open_capture_file(p, batch_size=3)
                for batch in src.batches():
                    assert (batch.offsets + batch.caplens <= len(b)).all()
            except CaptureError:
                pass


# --- writer --------------------------------------------------------------------------------------


def test_writer_round_trips_a_batch(tmp_path: Path) -> None:
    """write_batch then reading back gives the same bytes, ns timestamps and wire lengths."""
    ts = [T0 * 10**9 + i * 1_000_001 for i in range(len(FRAMES))]
    batch = FrameBatch.from_frames(FRAMES, ts, wirelens=[len(f) + 10 for f in FRAMES])
    p = tmp_path / "w.pcap"
    with PcapWriter(p) as w:
        w.write_batch(batch)
        w.write(b"tail", T0 * 10**9)
    got = frames_of(p)
    assert got[:-1] == [(f, t, len(f), len(f) + 10, 1) for f, t in zip(FRAMES, ts, strict=True)]
    assert got[-1] == (b"tail", T0 * 10**9, 4, 4, 1)


def test_writer_truncates_to_snaplen_and_keeps_wirelen(tmp_path: Path) -> None:
    """Frames longer than the writer's snaplen are cut, their wire length kept."""
    p = tmp_path / "w.pcap"
    with PcapWriter(p, snaplen=16) as w:
        w.write_batch(FrameBatch.from_frames(FRAMES[:2], [1, 2]))
    assert frames_of(p) == [(FRAMES[0][:16], 1, 16, 60, 1), (FRAMES[1][:16], 2, 16, 61, 1)]


def test_writer_refuses_a_batch_of_another_linktype(tmp_path: Path) -> None:
    """A pcap file holds one link type, so a mismatched batch is an error, not silent garbage."""
    with PcapWriter(tmp_path / "w.pcap") as w, pytest.raises(CaptureError):
        w.write_batch(FrameBatch.from_frames(FRAMES[:1], [1], linktype=LINKTYPE_RAW))


def mixed_pcapng() -> tuple[bytes, list[tuple[bytes, int]]]:
    """EPB runs broken by SPB, OPB, ISB, custom blocks, a second IDB and a second section."""
    e = "<"
    f = [bytes([i]) * (60 + 3 * i) for i in range(12)]
    raw = (
        shb(e)
        + idb(e, tsresol=9)
        + idb(e, linktype=101, tsresol=9)
        + epb(e, 0, 1, f[0])
        + epb(e, 0, 2, f[1])
        + epb(e, 1, 3, f[2])
        + epb(e, 0, 4, f[3])
        + block(e, 5, b"\0" * 12)
        + epb(e, 0, 5, f[4])
        + spb(e, f[5])
        + opb(e, 0, 7, f[6])
        + epb(e, 0, 8, f[7])
        + block(e, 0x0BAD, b"custom")
        + epb(e, 0, 9, f[8])
        + shb(">")
        + idb(">", tsresol=9)
        + epb(">", 0, 10, f[9])
        + epb(">", 0, 11, f[10])
        + epb(">", 0, 12, f[11])
    )
    ts = [1, 2, 3, 4, 5, 0, 7, 8, 9, 10, 11, 12]
    return raw, list(zip(f, ts, strict=True))


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 8192])
def test_pcapng_mixed_blocks_read_the_same_at_any_batch_size(
    tmp_path: Path, batch_size: int
) -> None:
    """Frames, timestamps and link types do not depend on where batches are cut."""
    raw, expected = mixed_pcapng()
    p = tmp_path / "mixed.pcapng"
    p.write_bytes(raw)
    got = frames_of(p, batch_size=batch_size)
    assert [(g[0], g[1]) for g in got] == expected
    assert [g[4] for g in got] == [1, 1, 101, 1, 1, 1, 1, 1, 1, 1, 1, 1]


def test_random_damage_to_mixed_pcapng_yields_a_prefix_or_capture_error(tmp_path: Path) -> None:
    """Scribbled-over mixed pcapng files give frames within the file, then at most CaptureError."""
    rng = np.random.default_rng(11)
    raw, _ = mixed_pcapng()
    p = tmp_path / "fuzz.pcapng"
    for _ in range(400):
        b = bytearray(raw[: int(rng.integers(1, len(raw) + 1))])
        for _ in range(int(rng.integers(0, 3))):
            b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
        p.write_bytes(bytes(b))
        try:
            src = open_capture_file(p, batch_size=int(rng.integers(1, 6)))
            for batch in src.batches():
                assert (batch.offsets + batch.caplens <= len(b)).all()
        except CaptureError:
            pass


def test_kuznetzov_pcap_skips_its_longer_record_headers(tmp_path: Path) -> None:
    """The 0xa1b2cd34 variant's 24-byte record headers (ifindex, protocol, type) are skipped."""
    out = [struct.pack("<IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 65535, 1)]
    for i, f in enumerate(FRAMES[:3]):
        out.append(struct.pack("<IIII", T0, i, len(f), len(f)) + b"\x07" * 8 + f)
    p = tmp_path / "kuz.pcap"
    p.write_bytes(b"".join(out))
    assert [g[0] for g in frames_of(p)] == FRAMES[:3]
    assert [g[1] for g in frames_of(p)] == [T0 * 10**9 + i * 1000 for i in range(3)]
