"""Properties over random input: decode never raises, keeps one row per frame, gives every row a
known status, and points every transport payload inside its frame."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scapy.contrib.erspan import ERSPAN_I, ERSPAN_II, ERSPAN_III, ERSPAN_PlatformSpecific
from scapy.contrib.geneve import GENEVE
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import GRE, ICMP, IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import ARP, Dot1AD, Dot1AH, Dot1Q, Ether
from scapy.layers.ppp import PPP, PPPoE
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

from analyzers import DecodedBatch, Status, decode
from capture._batch import FrameBatch

# Explicit MACs: scapy would otherwise resolve them, which can mean ARP on a real network.
MAC = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
LINKTYPES = [0, 1, 9, 50, 101, 105, 108, 113, 127, 228, 229, 276]
VALID_STATUS = {int(s) for s in Status}


def seeds() -> list[bytes]:
    """Valid frames of every layout the decoder knows, to cut and corrupt."""
    payload = Raw(b"0123456789abcdef" * 4)
    # A TSO/GSO segment as the sending host captures it: IPv4 total length 0.
    tso = bytearray(bytes(Ether(**MAC) / IP() / TCP(flags="PA") / payload))
    tso[16:18] = b"\0\0"
    return [bytes(tso)] + [
        bytes(p)
        for p in (
            Ether(**MAC) / IP() / TCP(flags="SA", options=[("MSS", 1460)]) / payload,
            Ether(**MAC) / Dot1Q(vlan=9) / IP() / UDP(dport=53) / payload,
            Ether(**MAC) / Dot1AD(vlan=1) / Dot1Q(vlan=2) / IPv6() / TCP() / payload,
            Ether(**MAC) / IP(options=[IPOption_RR(routers=["1.1.1.1"])]) / ICMP() / payload,
            Ether(**MAC) / IP(flags="MF") / UDP() / payload,
            Ether(**MAC) / IP(frag=5, proto=6) / payload,
            Ether(**MAC) / IPv6() / ICMPv6EchoRequest() / payload,
            Ether(**MAC)
            / IPv6()
            / IPv6ExtHdrHopByHop()
            / IPv6ExtHdrFragment(m=1)
            / UDP()
            / payload,
            Ether(**MAC)
            / IP()
            / UDP(dport=4789)
            / VXLAN(vni=3)
            / Ether(**MAC)
            / IP()
            / TCP()
            / payload,
            Ether(**MAC)
            / IP()
            / UDP(dport=6081)
            / GENEVE(vni=4)
            / Ether(**MAC)
            / IPv6()
            / UDP()
            / payload,
            Ether(**MAC) / IP() / UDP(dport=6081) / GENEVE(vni=5, proto=0x0800) / IP() / UDP(),
            Ether(**MAC) / ARP(),
            # issue 16's encapsulations: L2.5 headers, GRE and what it carries, IP-in-IP, Teredo
            Ether(**MAC, type=0x8847) / MPLS(s=0) / MPLS(s=1) / IP() / TCP() / payload,
            Ether(**MAC) / Dot1Q(vlan=3) / PPPoE(len=62) / PPP(proto=0x21) / IP() / UDP() / payload,
            Ether(**MAC) / Dot1AH() / Ether(**MAC) / IP() / TCP() / payload,
            Ether(**MAC) / IP() / GRE(key_present=1, seqnum_present=1) / IP() / TCP() / payload,
            Ether(**MAC) / IP() / GRE(proto=0x6558) / Ether(**MAC) / IPv6() / UDP() / payload,
            Ether(**MAC) / IP() / GRE() / ERSPAN_I() / Ether(**MAC) / IP() / TCP() / payload,
            Ether(**MAC)
            / IP()
            / GRE(seqnum_present=1)
            / ERSPAN_II()
            / Ether(**MAC)
            / IP()
            / UDP()
            / payload,
            Ether(**MAC)
            / IP()
            / GRE()
            / ERSPAN_III(o=1)
            / ERSPAN_PlatformSpecific()
            / Ether(**MAC)
            / IP()
            / TCP()
            / payload,
            Ether(**MAC)
            / IP()
            / GRE(version=1, key_present=1, proto=0x880B)
            / PPP(proto=0x21)
            / IP()
            / TCP()
            / payload,
            Ether(**MAC) / IP() / UDP(dport=4754) / GRE() / IP() / UDP() / payload,
            Ether(**MAC) / IP() / IPv6() / TCP() / payload,
            Ether(**MAC) / IP() / UDP(sport=3544) / IPv6() / UDP() / payload,
            Ether(**MAC) / IP() / GRE() / IP() / GRE() / IP() / GRE() / IP() / TCP(),
        )
    ]


def mutants(rng: np.random.Generator, count: int) -> tuple[list[bytes], list[int]]:
    """Seeds cut at random lengths (as a snaplen would: the wire length stays), with a few random
    bytes overwritten in most of them."""
    base = seeds()
    frames, wirelens = [], []
    for _ in range(count):
        frame = bytearray(base[int(rng.integers(len(base)))])
        for _ in range(int(rng.integers(0, 4))):
            frame[int(rng.integers(len(frame)))] = int(rng.integers(256))
        frames.append(bytes(frame[: int(rng.integers(0, len(frame) + 1))]))
        wirelens.append(len(frame))
    return frames, wirelens


def assert_sound(batch: FrameBatch, decoded: DecodedBatch) -> None:
    """One row per frame, a known status each, and on IP rows a payload inside the frame: from
    ``l4_off`` for ``l4_len`` bytes within the frame's extent on the wire (or as captured)."""
    assert len(decoded) == len(batch)
    assert set(decoded.status.tolist()) <= VALID_STATUS
    ip = decoded.status <= Status.L3
    start = batch.offsets[ip]
    end = start + np.maximum(batch.wirelens[ip], batch.caplens[ip])
    off = decoded.l4_off[ip]
    assert (off >= start).all()
    assert (off + decoded.l4_len[ip].astype(np.int64) <= end).all()


@pytest.mark.parametrize("linktype", LINKTYPES)
def test_random_bytes_never_raise(linktype: int) -> None:
    """Random byte strings of any length decode without raising, one valid status per frame."""
    rng = np.random.default_rng(linktype)
    frames = [rng.bytes(int(rng.integers(0, 120))) for _ in range(400)]
    batch = FrameBatch.from_frames(frames, [0] * len(frames), linktype=linktype)
    decoded = decode(batch)
    assert len(decoded) == len(frames)
    assert set(decoded.status.tolist()) <= VALID_STATUS
    assert_sound(batch, decoded)


@pytest.mark.parametrize("linktype", LINKTYPES)
def test_ip_looking_random_bytes_are_sound(linktype: int) -> None:
    """Random frames with a plausible IPv4/IPv6 start exercise deep paths; every row sound."""
    rng = np.random.default_rng(100 + linktype)
    frames = []
    for _ in range(400):
        frame = bytearray(rng.bytes(int(rng.integers(20, 140))))
        l3 = {0: 4, 1: 14, 108: 4, 113: 16, 276: 20}.get(linktype, 0)
        etype = b"\x08\x00" if rng.random() < 0.5 else b"\x86\xdd"
        if linktype == 1:
            frame[12:14] = etype
        elif linktype == 113:
            frame[14:16] = etype
        elif linktype == 276:
            frame[0:2] = etype
        if l3 < len(frame):
            frame[l3] = (0x45 if etype == b"\x08\x00" else 0x60) | (frame[l3] & 0x0F)
        frames.append(bytes(frame))
    batch = FrameBatch.from_frames(frames, [0] * len(frames), linktype=linktype)
    decoded = decode(batch)
    assert len(decoded) == len(frames)
    assert_sound(batch, decoded)


def test_truncated_and_corrupted_frames_are_sound() -> None:
    """Thousands of cut and corrupted valid frames: no exception, every row sound."""
    rng = np.random.default_rng(2024)
    frames, wirelens = mutants(rng, 3000)
    batch = FrameBatch.from_frames(frames, [0] * len(frames), wirelens=wirelens)
    decoded = decode(batch)
    assert len(decoded) == len(frames)
    assert_sound(batch, decoded)
    statuses = set(decoded.status.tolist())
    assert {
        Status.L4,
        Status.L3,
        Status.NON_IP,
        Status.TRUNCATED_L2,
        Status.TRUNCATED_L3,
        Status.TRUNCATED_L4,
        Status.BAD_IP_TOTAL_LEN,
        Status.BAD_TUNNEL,
    } <= statuses


def test_valid_seeds_are_sound() -> None:
    """The uncorrupted seed frames decode soundly, none malformed but the last, three tunnels deep;
    every encapsulated seed is decoded through its encapsulation."""
    frames = seeds()
    batch = FrameBatch.from_frames(frames, [0] * len(frames))
    decoded = decode(batch)
    assert_sound(batch, decoded)
    *valid, deep = decoded.status.tolist()
    assert all(s < Status.MALFORMED for s in valid)
    assert deep == Status.TUNNEL_TOO_DEEP
    assert (decoded.encap[-13:-1] != 0).all()


def test_frame_lengths_past_the_buffer_do_not_raise() -> None:
    """A reader bug claiming bytes past the buffer end is clamped, not read out of bounds."""
    frames = seeds()[:3]
    good = FrameBatch.from_frames(frames, [0, 0, 0])
    lying = dataclasses.replace(good, caplens=good.caplens + 4000)
    decoded = decode(lying)
    assert len(decoded) == 3
    assert decoded.status[0] == Status.L4


def test_many_tunnelled_frames_are_sound() -> None:
    """Many VXLAN/Geneve rows (valid, cut, corrupt): every row sound, most decoded inside."""
    rng = np.random.default_rng(77)
    tunnels = [f for f in seeds() if b"\x12\xb5" in f[34:38] or b"\x17\xc1" in f[34:38]]
    assert len(tunnels) == 3
    frames, wirelens = [], []
    for i in range(600):
        frame = bytearray(tunnels[i % 3])
        if i % 3 == 0:
            frame[int(rng.integers(len(frame)))] = int(rng.integers(256))
        cut = len(frame) if i % 4 else int(rng.integers(40, len(frame) + 1))
        frames.append(bytes(frame[:cut]))
        wirelens.append(len(frame))
    batch = FrameBatch.from_frames(frames, [0] * len(frames), wirelens=wirelens)
    decoded = decode(batch)
    assert_sound(batch, decoded)
    assert (decoded.tun_type != 0).sum() > 300


def test_no_frame_is_read_past_its_captured_bytes() -> None:
    """Cut and corrupted frames decode the same whatever bytes follow them in the buffer (zeros or
    0xFF junk): nothing after a frame's captured end is read."""
    rng = np.random.default_rng(31)
    frames, wirelens = mutants(rng, 1500)
    decoded = []
    for filler in (0x00, 0xFF):
        pad = bytes([filler]) * 64
        data = b"".join(f + pad for f in frames)
        offsets = np.cumsum([0] + [len(f) + 64 for f in frames[:-1]]).astype(np.int64)
        batch = FrameBatch(
            data=np.frombuffer(data, np.uint8),
            offsets=offsets,
            caplens=np.array([len(f) for f in frames], np.int64),
            wirelens=np.array(wirelens, np.int64),
            ts_ns=np.zeros(len(frames), np.int64),
        )
        decoded.append(decode(batch))
    for field in dataclasses.fields(DecodedBatch):
        assert np.array_equal(getattr(decoded[0], field.name), getattr(decoded[1], field.name))
