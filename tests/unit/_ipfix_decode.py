"""A small IPFIX collector for tests: RFC 7011 messages decoded with the templates they carry."""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass, field

# (PEN, element id) -> name, for the elements mirrorscope exports (written out independently)
NAMES: dict[tuple[int, int], str] = {
    (0, 8): "sourceIPv4Address",
    (0, 12): "destinationIPv4Address",
    (0, 27): "sourceIPv6Address",
    (0, 28): "destinationIPv6Address",
    (0, 7): "sourceTransportPort",
    (0, 11): "destinationTransportPort",
    (0, 4): "protocolIdentifier",
    (0, 32): "icmpTypeCodeIPv4",
    (0, 139): "icmpTypeCodeIPv6",
    (0, 58): "vlanId",
    (0, 152): "flowStartMilliseconds",
    (0, 153): "flowEndMilliseconds",
    (0, 1): "octetDeltaCount",
    (0, 2): "packetDeltaCount",
    (0, 6): "tcpControlBits",
    (0, 136): "flowEndReason",
    (29305, 1): "reverseOctetDeltaCount",
    (29305, 2): "reversePacketDeltaCount",
    (29305, 6): "reverseTcpControlBits",
    (56506, 100): "sourcePodNamespace",
    (56506, 101): "sourcePodName",
    (56506, 102): "destinationPodNamespace",
    (56506, 103): "destinationPodName",
    (56506, 104): "sourceNodeName",
    (56506, 105): "destinationNodeName",
    (56506, 136): "tcpState",
    (56506, 137): "flowType",
    (35632, 109): "RETRANSMITTED_IN_PKTS",
    (35632, 110): "RETRANSMITTED_OUT_PKTS",
    (35632, 123): "CLIENT_NW_LATENCY_MS",
    (35632, 124): "SERVER_NW_LATENCY_MS",
}
_STRINGS = {n for (pen, _), n in NAMES.items() if pen == 56506 and n != "flowType"}


@dataclass
class Message:
    length: int
    export_time: int
    sequence: int
    domain: int
    set_ids: list[int]
    records: list[dict[str, object]]


@dataclass
class Decoder:
    """Decodes messages in order, keeping the templates it has seen (per domain)."""

    templates: dict[tuple[int, int], list[tuple[int, int, int]]] = field(default_factory=dict)

    def message(self, data: bytes) -> Message:
        version, length, export, seq, domain = struct.unpack_from("!HHIII", data)
        assert version == 10, version
        assert length == len(data), (length, len(data))
        off, set_ids, records = 16, [], []
        while off < length:
            sid, slen = struct.unpack_from("!HH", data, off)
            assert 4 <= slen <= length - off, (sid, slen)
            body = data[off + 4 : off + slen]
            set_ids.append(sid)
            if sid == 2:
                self._templates(domain, body)
            else:
                assert sid >= 256, sid
                records += self._records(self.templates[domain, sid], body)
            off += slen
        return Message(length, export, seq, domain, set_ids, records)

    def _templates(self, domain: int, body: bytes) -> None:
        off = 0
        while off + 4 <= len(body):
            tid, count = struct.unpack_from("!HH", body, off)
            off += 4
            fields = []
            for _ in range(count):
                fid, flen = struct.unpack_from("!HH", body, off)
                off += 4
                pen = 0
                if fid & 0x8000:
                    (pen,) = struct.unpack_from("!I", body, off)
                    off += 4
                fields.append((pen, fid & 0x7FFF, flen))
            self.templates[domain, tid] = fields

    def _records(self, fields: list[tuple[int, int, int]], body: bytes) -> list[dict[str, object]]:
        out, off = [], 0
        while off < len(body):
            rec: dict[str, object] = {}
            for pen, fid, flen in fields:
                n = flen
                if n == 0xFFFF:
                    n = body[off]
                    off += 1
                    if n == 255:
                        (n,) = struct.unpack_from("!H", body, off)
                        off += 2
                raw = body[off : off + n]
                off += n
                name = NAMES[pen, fid]
                if name in _STRINGS:
                    rec[name] = raw.decode()
                elif name.endswith(("IPv4Address", "IPv6Address")):
                    rec[name] = str(ipaddress.ip_address(raw))
                else:
                    rec[name] = int.from_bytes(raw, "big")
            out.append(rec)
        return out


def receive_all(sock: socket.socket, quiet_s: float = 0.5) -> list[bytes]:
    """Every datagram until the socket has been quiet for *quiet_s*."""
    sock.settimeout(quiet_s)
    out = []
    while True:
        try:
            out.append(sock.recv(65535))
        except TimeoutError:
            return out
