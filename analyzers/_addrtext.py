"""Address text for a delivery of records: IPv4 written by one compiled loop, IPv6 by the C library.

Nearly every address a node's mirror sees is IPv4, and a delivery's addresses are nearly all
distinct, so text per distinct address still cost one ``inet_ntop`` (and its ``to_bytes``) per
record. Dotted quads are simple enough to write a delivery at a time; IPv6 text (zero runs,
embedded IPv4) stays ``inet_ntop``'s, once per distinct address.
"""

from __future__ import annotations

import socket

import numpy as np
import numpy.typing as npt

from capture import njit

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
U8 = npt.NDArray[np.uint8]

_V4_LINE = 16  # "255.255.255.255\n"


@njit
def _ipv4_lines(hi: I64, lo: I64, out: U8) -> int:
    """Each row's dotted quad and a newline (only the newline for an address not IPv4-mapped);
    the halves come as int64 (numba's mixed unsigned/signed arithmetic would turn float)."""
    pos = 0
    for r in range(hi.shape[0]):
        x = lo[r]
        if hi[r] == 0 and (x >> 32) == 0xFFFF:
            for shift in (24, 16, 8, 0):
                octet = (x >> shift) & 0xFF
                if octet >= 100:
                    out[pos] = 48 + octet // 100
                    pos += 1
                if octet >= 10:
                    out[pos] = 48 + octet // 10 % 10
                    pos += 1
                out[pos] = 48 + octet % 10
                out[pos + 1] = 46  # "."
                pos += 2
            pos -= 1  # no dot after the last octet
        out[pos] = 10
        pos += 1
    return pos


def key_text(key: int) -> str:
    """The text of one 128-bit address key (IPv4 stored IPv4-mapped), as ``inet_ntop`` writes it."""
    if (key >> 32) == 0xFFFF:
        return socket.inet_ntop(socket.AF_INET, (key & 0xFFFFFFFF).to_bytes(4, "big"))
    return socket.inet_ntop(socket.AF_INET6, key.to_bytes(16, "big"))


def address_texts(hi: U64, lo: U64, keys: list[int], names: dict[int, str]) -> list[str]:
    """The text of each address (``hi``/``lo`` halves, ``keys`` their ints); *names* memoises the
    IPv6 ones across calls of one delivery."""
    if hi.shape[0] == 0:
        return []
    out = np.empty(hi.shape[0] * _V4_LINE, np.uint8)
    end = _ipv4_lines(hi.view(np.int64), lo.view(np.int64), out)
    texts = str(out[: end - 1].data, "ascii").split("\n")
    for i in np.flatnonzero((hi != 0) | ((lo >> np.uint64(32)) != 0xFFFF)).tolist():
        key = keys[i]
        texts[i] = names.get(key) or names.setdefault(key, key_text(key))
    return texts
