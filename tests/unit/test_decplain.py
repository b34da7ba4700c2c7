"""The common frame's path (``_decplain``) decodes exactly what the stages decode.

Every capture of both corpora, and frames built at each edge of the path's screen, are decoded
with the path (``decode``) and without it (``decode(..., fast=False)``): every column of every row
must be equal. ``plain`` itself is asked which frames it takes, so that a screen taking nothing
(every frame through the stages, always equal) fails too.
"""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import numpy as np
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet, Raw

from analyzers import DecodedBatch, decode
from analyzers._decplain import plain
from capture import CaptureError, FrameBatch, open_capture_file

SHARED = Path(__file__).resolve().parents[3] / "shared" / "corpus"
CORPORA = (SHARED / "tcpdump-tests", SHARED / "zeek-dev" / "traces")
MAC = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
_FIELDS = [f.name for f in dataclasses.fields(DecodedBatch)]


def _eth(*layers: Packet) -> Packet:
    pkt: Packet = Ether(**MAC)
    for layer in layers:
        pkt = pkt / layer
    return pkt


_IP = IP(src="10.16.0.5", dst="10.16.0.9", ttl=61, id=4242)
_PAYLOAD = Raw(b"\x17" * 30)

#: frames the path takes
TAKEN = {
    "tcp": _eth(_IP, TCP(sport=43512, dport=8080, seq=7, ack=9, window=501, flags="PA"), _PAYLOAD),
    "tcp with options": _eth(_IP, TCP(sport=1, dport=2, options=[("MSS", 1460), ("NOP", None)])),
    "tcp ns flag": _eth(_IP, TCP(sport=1, dport=2, flags="SEN") / Raw(b"\x01" * 4)),
    "tcp, padded frame": _eth(_IP, TCP(sport=1, dport=2)) / Raw(b"\x00" * 6),
    "udp": _eth(_IP, UDP(sport=5353, dport=31000), _PAYLOAD),
    "udp, DF": _eth(IP(src="1.2.3.4", dst="5.6.7.8", flags="DF"), UDP(sport=9, dport=10), _PAYLOAD),
    "udp to the DNS port": _eth(_IP, UDP(sport=40000, dport=53), _PAYLOAD),
    "udp, zeros (Teredo's screen passes, its test fails)": _eth(_IP, UDP(), Raw(b"\x00" * 48)),
    "udp, a Teredo bubble (not followed)": _eth(
        _IP, UDP(sport=1, dport=3544), IPv6(src="2001::1", dst="fd00::2", nh=59)
    ),
}
#: frames the path hands to the stages, each at one edge of its screen
HANDED_ON = {
    "vlan tag": _eth(Dot1Q(vlan=7), _IP, TCP(sport=1, dport=2), _PAYLOAD),
    "ipv6": _eth(IPv6(src="fd00::1", dst="fd00::2"), TCP(sport=1, dport=2), _PAYLOAD),
    "ip options": _eth(IP(src="1.2.3.4", dst="5.6.7.8", options=[IPOption_RR()]), TCP(), _PAYLOAD),
    "first fragment": _eth(IP(src="1.2.3.4", dst="5.6.7.8", flags="MF"), UDP(), _PAYLOAD),
    "later fragment": _eth(IP(src="1.2.3.4", dst="5.6.7.8", frag=3), Raw(b"\x01" * 40)),
    "icmp": _eth(_IP, ICMP(), _PAYLOAD),
    "tcp data offset below 20": _eth(_IP, TCP(sport=1, dport=2, dataofs=4), _PAYLOAD),
    "tcp data offset past the packet": _eth(_IP, TCP(sport=1, dport=2, dataofs=15)),
    "vxlan": _eth(_IP, UDP(sport=1, dport=4789), _PAYLOAD),
    "geneve": _eth(_IP, UDP(sport=1, dport=6081), _PAYLOAD),
    "gre in udp": _eth(_IP, UDP(sport=1, dport=4754), _PAYLOAD),
    "ayiya from its port": _eth(_IP, UDP(sport=5072, dport=1), _PAYLOAD),
    "ayiya to its port": _eth(_IP, UDP(sport=1, dport=5072), _PAYLOAD),
    "teredo": _eth(
        _IP, UDP(sport=1, dport=3544), IPv6(src="2001::1", dst="fd00::2"), UDP(), _PAYLOAD
    ),
    "teredo after an origin indication": _eth(
        _IP, UDP(sport=2, dport=9), Raw(b"\x00\x00" + b"\x01" * 6), IPv6(), TCP(), _PAYLOAD
    ),
    "udp too short for the path": _eth(_IP, UDP(sport=1, dport=2), Raw(b"\x05" * 4)),
}


def _frame(pkt: Packet) -> bytes:
    return bytes(pkt)


def _columns(batch: FrameBatch, *, fast: bool) -> dict[str, list[int]]:
    decoded = decode(batch, fast=fast)
    return {name: getattr(decoded, name).tolist() for name in _FIELDS}


def _same_both_ways(batch: FrameBatch) -> None:
    assert _columns(batch, fast=True) == _columns(batch, fast=False)


def _plain_takes(frame: bytes, *, wire: int | None = None, cap: int | None = None) -> bool:
    data = np.frombuffer(frame, np.uint8)
    end = len(frame) if cap is None else cap
    return bool(plain(data, 0, end, len(frame) if wire is None else wire)[0])


@pytest.mark.parametrize("name", sorted(TAKEN))
def test_the_path_takes_the_common_frames(name: str) -> None:
    assert _plain_takes(_frame(TAKEN[name]))


@pytest.mark.parametrize("name", sorted(HANDED_ON))
def test_the_path_hands_every_other_frame_to_the_stages(name: str) -> None:
    assert not _plain_takes(_frame(HANDED_ON[name]))


def test_the_path_hands_on_frames_whose_lengths_do_not_hold() -> None:
    """A capture cut short of 40 bytes of IP, an IP length past the wire, one below 40, or 0
    (a TSO segment: the stages take the length from the wire) all go to the stages."""
    frame = _frame(TAKEN["tcp"])
    assert _plain_takes(frame, cap=14 + 40)
    assert not _plain_takes(frame, cap=14 + 39)
    assert not _plain_takes(frame, wire=len(frame) - 1)
    for total in (39, 0):
        short = bytearray(frame)
        short[16:18] = total.to_bytes(2, "big")
        assert not _plain_takes(bytes(short))


def test_the_frames_at_the_edges_decode_the_same_both_ways() -> None:
    frames = [_frame(p) for p in (*TAKEN.values(), *HANDED_ON.values())]
    tso = bytearray(_frame(TAKEN["tcp"]))
    tso[16:18] = b"\x00\x00"
    frames.append(bytes(tso))
    batch = FrameBatch.from_frames(frames, list(range(len(frames))))
    _same_both_ways(batch)
    cut = FrameBatch(batch.data, batch.offsets, batch.caplens - 20, batch.wirelens, batch.ts_ns)
    _same_both_ways(cut)


def _captures() -> list[Path]:
    return sorted(p for root in CORPORA if root.is_dir() for p in root.iterdir() if p.is_file())


def test_every_corpus_capture_decodes_the_same_both_ways(tmp_path: Path) -> None:
    """Both corpora, 848 captures of every kind, damaged ones too: equal columns everywhere."""
    captures = _captures()
    assert len(captures) >= 840
    ported = 0
    for path in captures:
        read = path
        if path.suffix == ".gz":
            read = tmp_path / path.stem
            read.write_bytes(gzip.decompress(path.read_bytes()))
        try:
            with open_capture_file(read) as source:
                for batch in source.batches():
                    fast = _columns(batch, fast=True)
                    assert fast == _columns(batch, fast=False), path.name
                    ipv4 = np.array(fast["ipver"]) == 4
                    ported += int(np.count_nonzero(ipv4 & (np.array(fast["status"]) == 0)))
        except CaptureError:
            continue
    assert ported > 5_000  # IPv4 rows with ports compared: the path's kind of frame
