"""DNS message headers and the first question: just what a flow record reports.

Only the 12-byte header and the first question are read (RFC 1035 §4.1): transaction id, QR,
RCODE, QNAME and QTYPE. Answers are never walked, so a hostile message costs a bounded amount of
work. A payload that does not parse returns ``None``; the caller counts it, nothing raises. The
scan is compiled (``scan_messages``: the flow table scans a batch's DNS payloads at once);
``parse_dns`` is the same scan for one payload.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from capture import njit

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]

#: RFC 1035 / RFC 2136 / RFC 6895 response codes (the 4-bit header field).
RCODE_NAMES: dict[int, str] = {
    0: "NOERROR",
    1: "FORMERR",
    2: "SERVFAIL",
    3: "NXDOMAIN",
    4: "NOTIMP",
    5: "REFUSED",
    6: "YXDOMAIN",
    7: "YXRRSET",
    8: "NXRRSET",
    9: "NOTAUTH",
    10: "NOTZONE",
}

QTYPE_NAMES: dict[int, str] = {
    1: "A",
    2: "NS",
    5: "CNAME",
    6: "SOA",
    12: "PTR",
    15: "MX",
    16: "TXT",
    28: "AAAA",
    33: "SRV",
    64: "SVCB",
    65: "HTTPS",
    255: "*",
}

_HEADER_LEN = 12
NAME_WIDTH = 255  # RFC 1035 §2.3.4: the longest name
_DOT = 0x2E


@dataclass(frozen=True, slots=True)
class DnsMessage:
    """Header fields and the first question of one DNS message."""

    txid: int
    is_response: bool
    rcode: int
    qname: str  # without the trailing dot; "" for the root or when there is no question
    qtype: int  # 0 when there is no question


# a scanned message's fields (``scan_messages``)
OK, TXID, RESPONSE, RCODE, QTYPE, NAME_LEN = range(6)
FIELDS = 6


@njit
def scan_messages(data: U8, starts: I64, stops: I64, out: I64, names: U8) -> None:
    """Scan the messages ``data[starts[k]:stops[k]]``: row *k* of *out* gets their fields (``OK``
    0: it does not parse), row *k* of *names* (255 wide) the first question's name, its labels
    joined by dots, ``out[k, NAME_LEN]`` bytes. Bytes are read only inside each message."""
    for k in range(starts.shape[0]):
        _scan(data, starts[k], max(stops[k], starts[k]), out[k], names[k])


@njit
def _scan(data: U8, s: int, e: int, out: I64, name: U8) -> None:
    size = e - s
    out[OK] = 0
    if size < _HEADER_LEN:
        return
    flags = (int(data[s + 2]) << 8) | int(data[s + 3])
    out[TXID] = (int(data[s]) << 8) | int(data[s + 1])
    out[RESPONSE] = (flags & 0x8000) != 0
    out[RCODE] = flags & 0x000F
    out[QTYPE] = 0
    out[NAME_LEN] = 0
    if (int(data[s + 4]) << 8) | int(data[s + 5]) == 0:  # no question
        out[OK] = 1
        return
    pos, n = _read_name(data, s, size, name)
    if pos < 0 or pos + 4 > size:
        return
    out[QTYPE] = (int(data[s + pos]) << 8) | int(data[s + pos + 1])
    out[NAME_LEN] = n
    out[OK] = 1


@njit
def _read_name(data: U8, s: int, size: int, name: U8) -> tuple[int, int]:
    """The first question's name into *name*: (position after it, its length); -1: no name.

    Follows at most a few compression pointers (questions rarely use them)."""
    pos = _HEADER_LEN
    end = -1
    hops = 0
    total = 0
    n = 0
    while True:
        if pos >= size:
            return -1, 0
        length = int(data[s + pos])
        if length == 0:
            pos += 1
            break
        if length & 0xC0 == 0xC0:
            if pos + 1 >= size or hops >= 8:
                return -1, 0
            if end < 0:
                end = pos + 2
            pos = ((length & 0x3F) << 8) | int(data[s + pos + 1])
            hops += 1
            continue
        total += length + 1
        # reserved label types (RFC 6891 dropped the extended ones), a cut label, a long name
        if length & 0xC0 or pos + 1 + length > size or total > NAME_WIDTH:
            return -1, 0
        if n:
            name[n] = _DOT
            n += 1
        for j in range(length):
            name[n + j] = data[s + pos + 1 + j]
        n += length
        pos += 1 + length
    return (end if end >= 0 else pos), n


def qname_of(names: U8, k: int, length: int) -> str:
    """Message *k*'s first question's name as ``scan_messages`` left it in *names*."""
    return names[k, :length].tobytes().decode("ascii", errors="backslashreplace")


def parse_dns(payload: bytes) -> DnsMessage | None:
    """Parse a DNS message (UDP payload, or a TCP segment after its 2-byte length prefix)."""
    out = np.empty((1, FIELDS), np.int64)
    names = np.empty((1, NAME_WIDTH), np.uint8)
    ends = np.array([len(payload)], np.int64)
    scan_messages(np.frombuffer(payload, np.uint8), np.zeros(1, np.int64), ends, out, names)
    f = out[0].tolist()
    if not f[OK]:
        return None
    return DnsMessage(
        f[TXID], bool(f[RESPONSE]), f[RCODE], qname_of(names, 0, f[NAME_LEN]), f[QTYPE]
    )
