"""DNS message headers and the first question: just what a flow record reports.

Only the 12-byte header and the first question are read (RFC 1035 §4.1): transaction id, QR,
RCODE, QNAME and QTYPE. Answers are never walked, so a hostile message costs a bounded amount of
work. A payload that does not parse returns ``None``; the caller counts it, nothing raises.
"""

from __future__ import annotations

from dataclasses import dataclass

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
_MAX_NAME = 255  # RFC 1035 §2.3.4


@dataclass(frozen=True, slots=True)
class DnsMessage:
    """Header fields and the first question of one DNS message."""

    txid: int
    is_response: bool
    rcode: int
    qname: str  # without the trailing dot; "" for the root or when there is no question
    qtype: int  # 0 when there is no question


def _read_name(buf: bytes, pos: int) -> tuple[str, int] | None:
    """Labels from *pos*; follows at most a few compression pointers (questions rarely use them)."""
    labels: list[str] = []
    end = -1
    hops = 0
    total = 0
    while True:
        if pos >= len(buf):
            return None
        length = buf[pos]
        if length == 0:
            pos += 1
            break
        if length & 0xC0 == 0xC0:
            if pos + 1 >= len(buf) or hops >= 8:
                return None
            if end < 0:
                end = pos + 2
            pos = ((length & 0x3F) << 8) | buf[pos + 1]
            hops += 1
            continue
        if length & 0xC0:
            return None  # reserved label types (RFC 6891 dropped the extended ones)
        label = buf[pos + 1 : pos + 1 + length]
        if len(label) != length:
            return None
        total += length + 1
        if total > _MAX_NAME:
            return None
        labels.append(label.decode("ascii", errors="backslashreplace"))
        pos += 1 + length
    return ".".join(labels), (end if end >= 0 else pos)


def parse_dns(payload: bytes) -> DnsMessage | None:
    """Parse a DNS message (UDP payload, or a TCP segment after its 2-byte length prefix)."""
    if len(payload) < _HEADER_LEN:
        return None
    txid = (payload[0] << 8) | payload[1]
    flags = (payload[2] << 8) | payload[3]
    qdcount = (payload[4] << 8) | payload[5]
    is_response = bool(flags & 0x8000)
    rcode = flags & 0x000F
    if qdcount == 0:
        return DnsMessage(txid, is_response, rcode, "", 0)
    named = _read_name(payload, _HEADER_LEN)
    if named is None:
        return None
    qname, pos = named
    if pos + 4 > len(payload):
        return None
    qtype = (payload[pos] << 8) | payload[pos + 1]
    return DnsMessage(txid, is_response, rcode, qname, qtype)
