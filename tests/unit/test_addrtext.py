"""A delivery's address text: the compiled dotted quads and inet_ntop's IPv6 text."""

from __future__ import annotations

import ipaddress
import random

import numpy as np

from analyzers._addrtext import address_texts


def _keys(addresses: list[str]) -> list[int]:
    out = []
    for a in addresses:
        ip = ipaddress.ip_address(a)
        out.append(int(ip) | 0xFFFF << 32 if ip.version == 4 else int(ip))
    return out


def test_address_text_is_what_ipaddress_writes() -> None:
    """IPv4 edge octets, random IPv4, IPv6 with zero runs and an IPv4-mapped look-alike."""
    rng = random.Random(7)
    addresses = [
        str(ipaddress.IPv4Address(0)),
        "255.255.255.255",
        "10.0.0.1",
        "100.9.99.199",
        "::",
        "::1",
    ]
    addresses += ["2001:db8::1", "fe80::1:0:0:2", "::fffe:0:5", "64:ff9b::a00:1"]
    addresses += [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(2000)]
    keys = _keys(addresses)
    hi = np.array([k >> 64 for k in keys], np.uint64)
    lo = np.array([k & (1 << 64) - 1 for k in keys], np.uint64)
    assert address_texts(hi, lo, keys, {}) == addresses
    assert address_texts(hi[:0], lo[:0], [], {}) == []
