"""Reading the pcap store back: selection by address, MAC, time and filter; merging workers;
the file being written; indexes rebuilt; the listing."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from capture import CaptureError
from exporters import PcapArchive, PcapQuery, PcapStore, StoreConfig, StoredFrame
from exporters._pcapfiles import scan
from tests.unit._pcapkit import (
    T0,
    A,
    B,
    C,
    Clock,
    arp_reply,
    arp_request,
    batch,
    nd_advert,
    nd_solicit,
    ping4,
    tcp4,
    udp6,
)

MS = 1_000_000
END = T0 + 10**12


def store_in(directory: Path, worker: int = 0, node: str = "node1") -> PcapStore:
    return PcapStore(
        StoreConfig(directory=directory, node=node, worker=worker, min_free_bytes=0),
        clock=Clock(),
    )


def query(
    directory: Path,
    *,
    addresses: tuple[str, ...] = (),
    macs: tuple[str, ...] = (),
    start_ns: int = T0,
    end_ns: int = END,
    filter: str = "",
    stores: tuple[PcapStore, ...] = (),
) -> list[StoredFrame]:
    archive = PcapArchive(
        directory, open_files=lambda: [o for s in stores if (o := s.open_file()) is not None]
    )
    q = PcapQuery.of(
        addresses=addresses, macs=macs, start_ns=start_ns, end_ns=end_ns, filter=filter
    )
    return list(archive.query(q))


# A's traffic (v4, v6, ICMP, ARP, ND) and others' (B-C), one frame per ms.
MIXED = [
    tcp4(A, B),  # 0
    tcp4(B, C),  # 1
    udp6(B, A),  # 2
    ping4(C, B),  # 3
    arp_request(A, B),  # 4
    arp_reply(B, A),  # 5
    arp_request(C, B),  # 6
    nd_solicit(A, B),  # 7
    nd_advert(B, A),  # 8
    tcp4(C, A, dport=443),  # 9
    udp6(B, C),  # 10
]
MIXED_TS = [T0 + i * MS for i in range(len(MIXED))]


def stored(tmp_path: Path, *, close: bool = True) -> PcapStore:
    store = store_in(tmp_path)
    store.write(*batch(MIXED, MIXED_TS))
    store.flush()  # the writer thread has written it
    if close:
        store.close()
    return store


def picked(frames: list[StoredFrame]) -> list[int]:
    return [MIXED_TS.index(f.ts_ns) for f in frames]


def test_a_pods_frames_are_its_ip_frames_by_address_and_its_arp_nd_by_mac(
    tmp_path: Path,
) -> None:
    """By A's addresses and MAC: A's IPv4/IPv6 frames and the ARP/ND frames from or to A."""
    stored(tmp_path)
    frames = query(tmp_path, addresses=(A.v4, A.v6), macs=(A.mac,))
    assert picked(frames) == [0, 2, 4, 5, 7, 8, 9]
    assert [f.data for f in frames] == [MIXED[i] for i in (0, 2, 4, 5, 7, 8, 9)]


def test_an_address_alone_selects_only_that_address_family(tmp_path: Path) -> None:
    """An IPv6 address alone selects the IPv6 frames of it, not ARP/ND, not IPv4."""
    stored(tmp_path)
    assert picked(query(tmp_path, addresses=(A.v6,))) == [2]
    assert picked(query(tmp_path, addresses=(C.v4,))) == [1, 3, 9]


def test_the_window_is_start_inclusive_end_exclusive(tmp_path: Path) -> None:
    """[start, end): a frame at start is in, a frame at end is out."""
    stored(tmp_path)
    frames = query(tmp_path, addresses=(B.v4,), start_ns=MIXED_TS[1], end_ns=MIXED_TS[3])
    assert picked(frames) == [1]


def test_a_tcpdump_filter_narrows_the_selection(tmp_path: Path) -> None:
    """The filter runs through libpcap on the frames the addresses selected."""
    stored(tmp_path)
    assert picked(query(tmp_path, addresses=(A.v4,), filter="tcp port 443")) == [9]
    assert picked(query(tmp_path, addresses=(A.v4, A.v6), macs=(A.mac,), filter="arp")) == [4, 5]


def test_bad_query_values_are_refused_before_any_file_is_read(tmp_path: Path) -> None:
    """Not an address, not a MAC, an empty window, a filter libpcap rejects: errors up front.
    A path is not an address."""
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6"):
        PcapQuery.of(addresses=["../../etc/passwd"], start_ns=0, end_ns=1)
    with pytest.raises(ValueError, match="MAC"):
        PcapQuery.of(macs=["0a:00"], start_ns=0, end_ns=1)
    with pytest.raises(ValueError, match="not after"):
        PcapQuery.of(addresses=[A.v4], start_ns=5, end_ns=5)
    with pytest.raises(CaptureError, match="invalid capture filter"):
        PcapQuery.of(addresses=[A.v4], start_ns=0, end_ns=1, filter="port 80; rm -rf /")


def test_two_workers_files_merge_in_time_order(tmp_path: Path) -> None:
    """Frames of two workers (several files each) come out as one time-ordered stream."""
    stores = [store_in(tmp_path, worker=w) for w in (0, 1)]
    expected = []
    for k in range(6):
        for w, store in enumerate(stores):
            ts = [T0 + (2 * i + w) * MS + k * 100 * MS for i in range(5)]
            store.write(*batch([tcp4(A, B)] * 5, ts))
            store.flush()  # the writer thread has written it
            expected += ts
        if k % 2:
            stores[k % 2].close()  # rotate one worker now and then
    for store in stores:
        store.close()
    assert len({f.worker for f in scan(tmp_path)}) == 2
    frames = query(tmp_path, addresses=(A.v4,))
    assert [f.ts_ns for f in frames] == sorted(expected)


def test_the_file_being_written_is_read_up_to_its_last_complete_record(tmp_path: Path) -> None:
    """An open file answers queries (by the in-memory index, or by name from another process);
    half a record at its end is not served."""
    store = stored(tmp_path, close=False)
    [f] = scan(tmp_path)
    assert not f.closed
    assert picked(query(tmp_path, addresses=(A.v4,), stores=(store,))) == [0, 9]
    assert picked(query(tmp_path, addresses=(A.v4,))) == [0, 9]  # no live index: by name
    half = tcp4(A, B)
    with f.path.open("ab") as out:  # a record still arriving: header and part of the frame
        out.write(struct.pack("<IIII", 1, 2, len(half), len(half)) + half[:10])
    assert picked(query(tmp_path, addresses=(A.v4,), stores=(store,))) == [0, 9]
    assert picked(query(tmp_path, addresses=(A.v4,))) == [0, 9]


def test_a_query_opens_only_files_whose_index_can_match(tmp_path: Path) -> None:
    """A file whose index lacks the address is not read, even if its frames would match."""
    stored(tmp_path)
    [f] = scan(tmp_path)
    doc = json.loads(f.sidecar.read_text())
    del doc["addresses"][C.v4]
    f.sidecar.write_text(json.dumps(doc))
    assert query(tmp_path, addresses=(C.v4,)) == []
    assert query(tmp_path, addresses=(A.v4,), start_ns=MIXED_TS[-1] + 1) == []


@pytest.mark.parametrize("damage", ["missing", "unreadable"])
def test_an_index_missing_or_unreadable_is_rebuilt_from_the_pcap(
    tmp_path: Path, damage: str
) -> None:
    """Without a usable sidecar the index is rebuilt (equal to the original) and written back."""
    store = stored(tmp_path)
    store.write(*batch([tcp4(A, B)], [END - 1]))  # a newer file of the worker: this one is closed
    store.flush()  # the writer thread has written it
    f = scan(tmp_path)[0]
    original = json.loads(f.sidecar.read_text())
    if damage == "missing":
        f.sidecar.unlink()
    else:
        f.sidecar.write_text('{"version": 1, "addresses": ')
    assert picked(query(tmp_path, addresses=(C.v4,))) == [1, 3, 9]
    assert json.loads(f.sidecar.read_text()) == original


def test_the_listing_shows_each_files_range_counts_and_addresses(tmp_path: Path) -> None:
    """list_files: name, node, worker, size, time range, packets, bytes, addresses, MACs; the
    open file by its live index."""
    stored(tmp_path)
    live = store_in(tmp_path, worker=1)
    live.write(*batch([tcp4(C, B)], [T0 + 50 * MS]))
    live.flush()  # the writer thread has written it
    listing = PcapArchive(tmp_path, open_files=lambda: [o for o in [live.open_file()] if o])
    closed, open_ = listing.list_files()
    assert (closed.node, closed.worker, closed.writing, closed.indexed) == ("node1", 0, False, True)
    assert (closed.first_ns, closed.last_ns, closed.packets) == (MIXED_TS[0], MIXED_TS[-1], 11)
    assert closed.bytes == sum(len(m) for m in MIXED)
    assert closed.size == scan(tmp_path)[0].size
    assert closed.addresses[A.v4] == 2
    assert closed.macs[A.mac] == 4  # ARP 4 (source) and 5 (destination), ND 7 and 8
    assert (open_.writing, open_.indexed, open_.packets) == (True, True, 1)
    assert open_.addresses == {C.v4: 1, B.v4: 1}
    elsewhere = PcapArchive(tmp_path).list_files()[1]  # another process: no index yet
    assert (elsewhere.writing, elsewhere.indexed, elsewhere.first_ns) == (True, False, T0 + 50 * MS)
