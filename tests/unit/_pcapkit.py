"""Frames for the pcap store's tests: pods A and B talking, pod C beside them, ARP and ND."""

from __future__ import annotations

from dataclasses import dataclass

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6ND_NS, IPv6
from scapy.layers.l2 import ARP, Ether

from analyzers import DecodedBatch, decode
from capture import FrameBatch

T0 = 1_800_000_000_000_000_000  # ns


@dataclass(frozen=True)
class Pod:
    name: str
    v4: str
    v6: str
    mac: str


A = Pod("default/a", "10.16.0.10", "fd00:10:16::a", "0a:00:00:00:00:0a")
B = Pod("default/b", "10.16.0.11", "fd00:10:16::b", "0a:00:00:00:00:0b")
C = Pod("other/c", "10.16.0.12", "fd00:10:16::c", "0a:00:00:00:00:0c")
PODS = (A, B, C)


def tcp4(src: Pod, dst: Pod, sport: int = 40000, dport: int = 80, payload: int = 10) -> bytes:
    return bytes(
        Ether(src=src.mac, dst=dst.mac)
        / IP(src=src.v4, dst=dst.v4)
        / TCP(sport=sport, dport=dport)
        / (b"x" * payload)
    )


def udp6(src: Pod, dst: Pod, payload: int = 20) -> bytes:
    return bytes(
        Ether(src=src.mac, dst=dst.mac)
        / IPv6(src=src.v6, dst=dst.v6)
        / UDP(sport=5353, dport=53)
        / (b"y" * payload)
    )


def ping4(src: Pod, dst: Pod) -> bytes:
    return bytes(Ether(src=src.mac, dst=dst.mac) / IP(src=src.v4, dst=dst.v4) / ICMP())


def arp_request(src: Pod, target: Pod) -> bytes:
    return bytes(
        Ether(src=src.mac, dst="ff:ff:ff:ff:ff:ff")
        / ARP(op=1, hwsrc=src.mac, psrc=src.v4, pdst=target.v4)
    )


def arp_reply(src: Pod, dst: Pod) -> bytes:
    return bytes(
        Ether(src=src.mac, dst=dst.mac)
        / ARP(op=2, hwsrc=src.mac, psrc=src.v4, hwdst=dst.mac, pdst=dst.v4)
    )


def nd_solicit(src: Pod, target: Pod) -> bytes:
    return bytes(
        Ether(src=src.mac, dst="33:33:ff:00:00:0b")
        / IPv6(src="fe80::a", dst="ff02::1:ff00:b")
        / ICMPv6ND_NS(tgt=target.v6)
    )


def nd_advert(src: Pod, dst: Pod) -> bytes:
    return bytes(
        Ether(src=src.mac, dst=dst.mac)
        / IPv6(src="fe80::b", dst="fe80::a")
        / ICMPv6ND_NA(tgt=src.v6)
    )


def batch(frames: list[bytes], ts_ns: list[int]) -> tuple[FrameBatch, DecodedBatch]:
    """A batch and its decode, as a capture worker hands them to the store."""
    b = FrameBatch.from_frames(frames, ts_ns)
    return b, decode(b)


def pod_of(text: str) -> str | None:
    """The test's identity: addresses and MACs of A, B and C."""
    for p in PODS:
        if text in (p.v4, p.v6, p.mac):
            return p.name
    return None


class Clock:
    """A clock the test moves."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
