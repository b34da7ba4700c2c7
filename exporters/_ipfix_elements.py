"""IPFIX information elements and the two templates (IPv4, IPv6) we export, RFC 7011 §3.4.1.

Standard elements (IANA), RFC 5103 reverse elements (PEN 29305: the same id, the other way),
Antrea's pod elements (PEN 56506, which collectors reading Antrea's flows already know) and ntop's
network-performance elements (PEN 35632, which Wireshark decodes by name). A data record lays its
fixed-length fields out in template order first, then the variable-length strings.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

#: RFC 5103's reverse information elements.
PEN_REVERSE = 29305
PEN_ANTREA = 56506
PEN_NTOP = 35632
VARLEN = 0xFFFF  # RFC 7011 §7: a field of variable length

TEMPLATE_V4 = 256  # template ids: 256 is the first one a data set may use
TEMPLATE_V6 = 257
TEMPLATE_SET_ID = 2
_ENTERPRISE_BIT = 0x8000


@dataclass(frozen=True, slots=True)
class Element:
    """One field of a template: IANA id (or an enterprise's with ``pen``) and its length."""

    name: str
    id: int
    length: int
    pen: int = 0

    def spec(self) -> bytes:
        """The field specifier: id with the enterprise bit when ``pen`` is set, length, PEN."""
        if self.pen:
            return struct.pack("!HHI", self.id | _ENTERPRISE_BIT, self.length, self.pen)
        return struct.pack("!HH", self.id, self.length)


def _common(icmp: Element) -> tuple[Element, ...]:
    return (
        Element("sourceTransportPort", 7, 2),
        Element("destinationTransportPort", 11, 2),
        Element("protocolIdentifier", 4, 1),
        icmp,
        Element("vlanId", 58, 2),
        Element("flowStartMilliseconds", 152, 8),
        Element("flowEndMilliseconds", 153, 8),
        Element("octetDeltaCount", 1, 8),
        Element("packetDeltaCount", 2, 8),
        Element("reverseOctetDeltaCount", 1, 8, PEN_REVERSE),
        Element("reversePacketDeltaCount", 2, 8, PEN_REVERSE),
        Element("tcpControlBits", 6, 2),
        Element("reverseTcpControlBits", 6, 2, PEN_REVERSE),
        Element("flowEndReason", 136, 1),
        Element("flowType", 137, 1, PEN_ANTREA),
        Element("RETRANSMITTED_IN_PKTS", 109, 4, PEN_NTOP),
        Element("RETRANSMITTED_OUT_PKTS", 110, 4, PEN_NTOP),
        Element("CLIENT_NW_LATENCY_MS", 123, 4, PEN_NTOP),
        Element("SERVER_NW_LATENCY_MS", 124, 4, PEN_NTOP),
        # variable length, in this order, after every fixed field
        Element("sourcePodNamespace", 100, VARLEN, PEN_ANTREA),
        Element("sourcePodName", 101, VARLEN, PEN_ANTREA),
        Element("destinationPodNamespace", 102, VARLEN, PEN_ANTREA),
        Element("destinationPodName", 103, VARLEN, PEN_ANTREA),
        Element("sourceNodeName", 104, VARLEN, PEN_ANTREA),
        Element("destinationNodeName", 105, VARLEN, PEN_ANTREA),
        Element("tcpState", 136, VARLEN, PEN_ANTREA),
    )


#: Fields of the IPv4 and the IPv6 template, in record order.
FIELDS_V4: tuple[Element, ...] = (
    Element("sourceIPv4Address", 8, 4),
    Element("destinationIPv4Address", 12, 4),
    *_common(Element("icmpTypeCodeIPv4", 32, 2)),
)
FIELDS_V6: tuple[Element, ...] = (
    Element("sourceIPv6Address", 27, 16),
    Element("destinationIPv6Address", 28, 16),
    *_common(Element("icmpTypeCodeIPv6", 139, 2)),
)
#: The fixed part of a record after the two addresses (``_common``'s fixed fields).
FIXED_TAIL = struct.Struct("!HHBHHQQQQQQHHBBIIII")
VAR_FIELDS = 7


def template_set() -> bytes:
    """One template set holding both templates (sent first and on every refresh)."""
    body = b""
    for tid, fields in ((TEMPLATE_V4, FIELDS_V4), (TEMPLATE_V6, FIELDS_V6)):
        body += struct.pack("!HH", tid, len(fields)) + b"".join(f.spec() for f in fields)
    return struct.pack("!HH", TEMPLATE_SET_ID, 4 + len(body)) + body


def varlen(text: str) -> bytes:
    """RFC 7011 §7: one length byte, or 255 and two length bytes from 255 bytes on."""
    data = text.encode()[:0xFFFF]
    n = len(data)
    if n < 255:
        return bytes((n,)) + data
    return b"\xff" + n.to_bytes(2, "big") + data
