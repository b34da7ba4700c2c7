"""Query results as pcapng: an interface per node, pod names in packet comments, and tshark reads
it without a warning."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

from capture import PcapngWriter, open_capture_file
from exporters import PcapArchive, PcapQuery, PcapStore, StoreConfig, write_pcapng
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
    pod_of,
    tcp4,
    udp6,
)

# tshark says this on stderr whenever it runs as root (CI does); it is about the user, not the file.
_ROOT_NOTICE = 'Running as user "root" and group "root". This could be dangerous.'


def tshark(path: Path, *args: str) -> tuple[str, str]:
    done = subprocess.run(
        ["tshark", "-r", str(path), *args], capture_output=True, text=True, check=True
    )
    warnings = [line for line in done.stderr.splitlines() if line.strip() != _ROOT_NOTICE]
    return done.stdout, "\n".join(warnings)


def two_nodes(tmp_path: Path) -> PcapArchive:
    for w, node in enumerate(("node1", "node2")):
        store = PcapStore(
            StoreConfig(directory=tmp_path, node=node, worker=w, min_free_bytes=0), clock=Clock()
        )
        frames = [tcp4(A, B), udp6(B, A), arp_reply(B, A), tcp4(C, B)]
        store.write(*batch(frames, [T0 + 10 * i + w for i in range(4)]))
        store.close()
    return PcapArchive(tmp_path)


def test_tshark_opens_the_pcapng_without_warnings_and_shows_nodes_and_pod_comments(
    tmp_path: Path,
) -> None:
    """tshark -V reads every packet with no warning; each node is an interface; comments name
    the pods of both endpoints (frame.comment), including ARP by MAC."""
    archive = two_nodes(tmp_path / "store")
    q = PcapQuery.of(addresses=[A.v4, A.v6], macs=[A.mac], start_ns=T0, end_ns=T0 + 10**9)
    out = tmp_path / "a.pcapng"
    with out.open("wb") as f:
        assert write_pcapng(archive.query(q), f, pod_of=pod_of) == 6
    verbose, warnings = tshark(out, "-V")
    assert warnings == ""
    assert verbose.count("Frame ") >= 6
    fields, _ = tshark(
        out, "-T", "fields", "-E", "separator=|", "-e", "frame.interface_name", "-e",
        "frame.comment", "-e", "frame.time_epoch",
    )  # fmt: skip
    rows = [line.split("|") for line in fields.splitlines()]
    assert [r[0] for r in rows] == ["node1", "node2"] * 3
    assert [r[1] for r in rows] == [
        "src default/a dst default/b",
        "src default/a dst default/b",
        "src default/b dst default/a",
        "src default/b dst default/a",
        "src default/b dst default/a",
        "src default/b dst default/a",
    ]
    assert rows[1][2] == "1800000000.000000001"  # nanoseconds kept


def test_the_pcapng_round_trips_through_our_reader(tmp_path: Path) -> None:
    """Timestamps, wire lengths and bytes read back equal what was written."""
    archive = two_nodes(tmp_path / "store")
    q = PcapQuery.of(addresses=[C.v4], start_ns=T0, end_ns=T0 + 10**9)
    frames = list(archive.query(q))
    buf = io.BytesIO()
    write_pcapng(frames, buf, pod_of=pod_of)
    path = tmp_path / "c.pcapng"
    path.write_bytes(buf.getvalue())
    with open_capture_file(path) as src:
        read = [
            (b.ts_ns[i], b.wirelens[i], b.frame(i)) for b in src.batches() for i in range(len(b))
        ]
    assert read == [(f.ts_ns, f.wirelen, f.data) for f in frames]
    assert len(read) == 2


def test_a_packet_without_known_pods_has_no_comment(tmp_path: Path) -> None:
    """No pod on either side: no opt_comment at all (tshark shows no frame.comment)."""
    buf = io.BytesIO()
    w = PcapngWriter(buf)
    i = w.add_interface("node9", "a node")
    w.write_packet(i, T0, tcp4(A, B), comment="")
    path = tmp_path / "x.pcapng"
    path.write_bytes(buf.getvalue())
    fields, warnings = tshark(path, "-T", "fields", "-e", "frame.comment")
    assert (fields.strip(), warnings) == ("", "")


def test_a_pods_download_equals_tsharks_selection_on_the_stored_files(tmp_path: Path) -> None:
    """What a query by pod A serves equals what tshark selects from the raw stored files with
    A's addresses, and A's MAC on ARP and neighbour discovery (count and every frame's time)."""
    store_dir = tmp_path / "store"
    frames = [
        tcp4(A, B), udp6(B, A), arp_request(A, B), arp_reply(B, A), arp_request(C, B),
        nd_solicit(A, B), nd_advert(B, A), nd_solicit(C, B), tcp4(C, B), udp6(B, C),
    ]  # fmt: skip
    for w in (0, 1):
        store = PcapStore(
            StoreConfig(directory=store_dir, node="node1", worker=w, min_free_bytes=0),
            clock=Clock(),
        )
        store.write(*batch(frames, [T0 + 10 * i + w for i in range(len(frames))]))
        store.close()
    q = PcapQuery.of(addresses=[A.v4, A.v6], macs=[A.mac], start_ns=T0, end_ns=T0 + 10**9)
    served = [f.ts_ns for f in PcapArchive(store_dir).query(q)]
    selection = (
        f"ip.addr == {A.v4} || ipv6.addr == {A.v6} || "
        f"((arp || icmpv6.type in {{133..137}}) && eth.addr == {A.mac})"
    )
    expected = []
    for pcap in sorted(store_dir.glob("*.pcap")):
        out, warnings = tshark(pcap, "-Y", selection, "-T", "fields", "-e", "frame.time_epoch")
        assert warnings == ""
        expected += [int(t.replace(".", "")) for t in out.split()]
    assert served == sorted(expected)
    assert len(served) == 12
