"""Zeek-like connection uids, a delivery's at a time, written by one compiled loop."""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

from capture import njit

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

_ALPHABET = np.frombuffer(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", np.uint8
)
_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xBF58476D1CE4E5B9)
_K3 = np.uint64(0x94D049BB133111EB)
_UID_LINE = 19  # "C", 17 base62 digits, a newline


@njit
def _bijection(x: np.uint64) -> np.uint64:
    # splitmix64's finaliser (the salt is added by the caller): a bijection of the 64-bit integers
    x ^= x >> np.uint64(30)
    x *= _K2
    x ^= x >> np.uint64(27)
    x *= _K3
    x ^= x >> np.uint64(31)
    return x


@njit
def _uid_lines(seqs: I64, salt_lo: np.uint64, salt_hi: np.uint64, out: U8) -> None:
    # every constant is uint64: numba turns mixed unsigned/signed arithmetic into floats
    base = np.uint64(62)
    for r in range(seqs.shape[0]):
        s = np.uint64(seqs[r]) * _K1
        pos = r * _UID_LINE
        out[pos] = 67  # "C"
        w = _bijection(s + salt_lo)
        for i in range(1, 12):
            out[pos + i] = _ALPHABET[w % base]
            w //= base
        w = _bijection(s + salt_hi)
        for i in range(12, 18):
            out[pos + i] = _ALPHABET[w % base]
            w //= base
        out[pos + 18] = 10


def make_uids(seed: bytes, seqs: I64) -> list[str]:
    """Zeek-like connection uids: ``C`` + 17 base62 characters, one per sequence number.

    The first 11 characters encode a bijection of the sequence number salted with the table's
    random seed, so uids never repeat within a table and differ across tables and restarts; the
    last 6 add more seed-dependent noise. No global state, no per-uid hashing call.
    """
    if seqs.shape[0] == 0:
        return []
    salt = int.from_bytes(hashlib.blake2b(seed, digest_size=16).digest(), "big")
    out = np.empty(seqs.shape[0] * _UID_LINE, np.uint8)
    _uid_lines(
        seqs.astype(np.int64), np.uint64(salt & 0xFFFF_FFFF_FFFF_FFFF), np.uint64(salt >> 64), out
    )
    return str(out[:-1].data, "ascii").split("\n")


def make_uid(seed: bytes, seq: int) -> str:
    """One uid (see ``make_uids``)."""
    return make_uids(seed, np.array([seq], np.int64))[0]
