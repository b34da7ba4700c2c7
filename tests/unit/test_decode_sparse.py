"""The decoder's sparse column groups (``_deccolumns``): IPv6 upper halves and what only an
encapsulated frame has are written from the first row that has them, zero everywhere else.

The columns come uninitialised (``new_columns``): the tests fill them with garbage first, so a
row the kernel fails to write shows. A batch without a group gets zero columns in its place:
for a walker, one shared zero array per type.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

from analyzers._deccolumns import ENCAP, WIDE, SharedZeros, finish, new_columns
from analyzers._decode import decode, decode_rows
from analyzers._decoded import DecodedBatch
from analyzers._decodewalk import DecodingWalker
from analyzers._decrow import ROW
from capture import PcapLayout, open_capture_file
from capture._batch import FrameBatch

MACS = {"src": "0a:00:00:00:00:01", "dst": "0a:00:00:00:00:02"}
WIDE_COLUMNS = ("src_hi", "dst_hi")
ENCAP_COLUMNS = (
    "encap", "vlan", "tun_type", "tun_vni", "tun_dir", "outer_src_hi", "outer_src_lo",
    "outer_dst_hi", "outer_dst_lo", "carrier_ports", "carrier_ip_len", "carrier_l4_len",
)  # fmt: skip
NO_TIMES = np.zeros(0, np.int64)


def v4(i: int) -> Packet:
    """A frame the common path (``_decplain``) takes: 32 payload bytes make 40 of IP and more."""
    ip = IP(src="10.0.0.1", dst="10.0.0.2", id=i)
    return Ether(**MACS) / ip / UDP(sport=1000 + i) / Raw(bytes(32))


def v6() -> Packet:
    return Ether(**MACS) / IPv6(src="fd00::1", dst="fd00::2") / TCP(sport=5, dport=6) / Raw(b"y")


def tagged() -> Packet:
    return Ether(**MACS) / Dot1Q(vlan=42) / IP(src="10.0.0.3", dst="10.0.0.4") / UDP() / Raw(b"z")


def batch_of(packets: list[Packet]) -> FrameBatch:
    return FrameBatch.from_frames([bytes(p) for p in packets], list(range(len(packets))))


def kernel_decode(batch: FrameBatch) -> tuple[dict[str, list[int]], int]:
    """The kernel's columns over garbage-filled buffers, and the groups it reports written."""
    columns = new_columns(len(batch), zeroed=False)
    for column in columns:
        column[:] = np.iinfo(column.dtype).max  # what a reused buffer may hold
    _, _, _, written, _ = decode_rows(
        np.ascontiguousarray(batch.data), batch.offsets, batch.caplens, batch.wirelens, NO_TIMES,
        -1, PcapLayout(0, False, 0, 0, batch.linktype), False, NO_TIMES, np.zeros(1, ROW), True,
        *columns,
    )  # fmt: skip
    names = [f.name for f in dataclasses.fields(DecodedBatch)]
    return {name: column.tolist() for name, column in zip(names, columns, strict=True)}, written


def test_a_batch_without_either_group_reports_neither_and_decodes_to_zeros() -> None:
    cols, written = kernel_decode(batch_of([v4(i) for i in range(5)]))
    assert written == 0
    dec = decode(batch_of([v4(i) for i in range(5)]))
    for name in WIDE_COLUMNS + ENCAP_COLUMNS:
        assert getattr(dec, name).tolist() == [0] * 5, name
    assert cols["status"] == dec.status.tolist()


@pytest.mark.parametrize("at", [0, 1, 3])
def test_an_ipv6_row_writes_the_upper_halves_on_every_row(at: int) -> None:
    packets = [v4(i) for i in range(4)]
    packets.insert(at, v6())
    cols, written = kernel_decode(batch_of(packets))
    assert written == WIDE
    expected = [0] * 5
    expected[at] = 0xFD00_0000_0000_0000
    assert cols["src_hi"] == expected
    assert cols["dst_hi"] == expected
    assert cols["ipver"] == [6 if k == at else 4 for k in range(5)]


@pytest.mark.parametrize("at", [0, 2, 4])
def test_an_encapsulated_row_writes_its_group_on_every_row(at: int) -> None:
    packets = [v4(i) for i in range(4)]
    packets.insert(at, tagged())
    cols, written = kernel_decode(batch_of(packets))
    assert written == ENCAP
    assert cols["vlan"] == [42 if k == at else 0 for k in range(5)]
    assert [bool(e) for e in cols["encap"]] == [k == at for k in range(5)]
    for name in ENCAP_COLUMNS[2:]:
        assert cols[name] == [0] * 5, name
    assert cols["src_hi"] != [0] * 5  # WIDE was not written: garbage the caller replaces


def test_both_groups_and_the_decode_equal_the_stages_alone() -> None:
    batch = batch_of([v4(0), tagged(), v4(1), v6(), v4(2)])
    fast, slow = decode(batch), decode(batch, fast=False)
    for f in dataclasses.fields(fast):
        assert getattr(fast, f.name).tolist() == getattr(slow, f.name).tolist(), f.name


def test_finish_replaces_only_the_groups_not_written_and_keeps_the_rows_walked() -> None:
    columns = new_columns(3, zeroed=False)
    for column in columns:
        column[:] = 7
    only_wide = finish(list(columns), WIDE, SharedZeros(), 3)
    assert only_wide.src_hi.tolist() == [7, 7, 7]
    assert only_wide.vlan.tolist() == [0, 0, 0]
    both = finish(list(columns), WIDE | ENCAP, SharedZeros(), 2)
    assert both.vlan.tolist() == [7, 7]
    assert len(both) == 2


def test_a_walkers_batches_share_their_zero_columns(tmp_path: Path) -> None:
    """A file of plain IPv4 frames, walked in batches of 4: every batch's IPv6 halves and
    encapsulation columns are zeros, views of one array."""
    path = tmp_path / "plain.pcap"
    wrpcap(str(path), [v4(i) for i in range(12)])
    walker = DecodingWalker()
    with open_capture_file(path, batch_size=4, walker=walker) as source:
        decodes = [walker.take(batch) for batch in source.batches()]
    assert len(decodes) == 3
    first = decodes[0]
    assert first is not None
    for dec in decodes:
        assert dec is not None
        assert dec.src_hi.tolist() == [0] * 4
        assert dec.vlan.tolist() == [0] * 4
        assert np.shares_memory(dec.vlan, first.vlan)
        assert dec.status.tolist() == [0] * 4  # L4: the walk did decode them
