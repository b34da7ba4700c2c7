"""The scalar decoder: one frame at a time, every protocol the contract knows.

The vectorized path in ``_decode`` handles the common layouts for a whole batch; rows it cannot
vouch for (IPv6 extension headers, tunnels, truncation, malformed headers, deep VLAN stacks) come
here. It is also the reference the vectorized path is tested against, so both must agree on every
field for every input. Bounds are checked explicitly before each read: a frame cut anywhere gets a
reason code, never an exception.
"""

from __future__ import annotations

import struct

from analyzers._decoded import Encap, Status, TunnelType

Buffer = bytes | memoryview

# Column positions of a decoded row; the order is DecodedBatch's field order.
(
    STATUS,
    IPVER,
    SRC_HI,
    SRC_LO,
    DST_HI,
    DST_LO,
    PROTO,
    SPORT,
    DPORT,
    VLAN,
    TUN_TYPE,
    TUN_VNI,
    TUN_DIR,
    OUTER_SRC_HI,
    OUTER_SRC_LO,
    OUTER_DST_HI,
    OUTER_DST_LO,
    ENCAP,
    IP_LEN,
    L4_OFF,
    L4_LEN,
    TCP_FLAGS,
    TCP_SEQ,
    TCP_ACK,
    TCP_WIN,
    IP_ID,
    FRAG,
    TTL,
) = range(28)
NCOLS = 28

# Plain ints: reading an IntEnum member through its class costs ~0.14 us on Python 3.11.
_BAD_IPV6_EXT_HEADER = int(Status.BAD_IPV6_EXT_HEADER)
_BAD_IP_HEADER_LEN = int(Status.BAD_IP_HEADER_LEN)
_BAD_IP_TOTAL_LEN = int(Status.BAD_IP_TOTAL_LEN)
_BAD_IP_VERSION = int(Status.BAD_IP_VERSION)
_BAD_TCP_HEADER_LEN = int(Status.BAD_TCP_HEADER_LEN)
_BAD_TUNNEL = int(Status.BAD_TUNNEL)
_L3 = int(Status.L3)
_L4 = int(Status.L4)
_NON_IP = int(Status.NON_IP)
_TRUNCATED_L2 = int(Status.TRUNCATED_L2)
_TRUNCATED_L3 = int(Status.TRUNCATED_L3)
_TRUNCATED_L4 = int(Status.TRUNCATED_L4)
_UNSUPPORTED_LINKTYPE = int(Status.UNSUPPORTED_LINKTYPE)
_TUN_GENEVE = int(TunnelType.GENEVE)
_TUN_VXLAN = int(TunnelType.VXLAN)
_ENCAP_VLAN = int(Encap.VLAN)
_ENCAP_QINQ = int(Encap.QINQ)
_ENCAP_VXLAN = int(Encap.VXLAN)
_ENCAP_GENEVE = int(Encap.GENEVE)

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_TEB = 0x6558  # Geneve's "transparent Ethernet bridging": an inner Ethernet frame
VLAN_TPIDS = frozenset((0x8100, 0x88A8, 0x9100))

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58
PROTO_SCTP = 132

VXLAN_PORT = 4789
GENEVE_PORT = 6081

# IPv6 extension headers with the generic (next header, length in 8-octet units - 1) layout.
_IPV6_EXT_GENERIC = frozenset((0, 43, 60))
_IPV6_FRAGMENT = 44
_IPV6_AH = 51
IPV6_EXT_HEADERS = frozenset((*_IPV6_EXT_GENERIC, _IPV6_FRAGMENT, _IPV6_AH))
# A chain longer than this is an attack or garbage, not a packet a host would send.
_MAX_IPV6_EXT = 16

# Bytes of transport header that must be present to report ports, by protocol; the payload
# (l4_off) starts after ``L4_HEADER_LEN`` (TCP: after its data offset instead).
L4_MIN_CAPTURED = {PROTO_TCP: 20, PROTO_UDP: 8, PROTO_ICMP: 4, PROTO_ICMPV6: 4, PROTO_SCTP: 4}
L4_HEADER_LEN = {PROTO_TCP: 20, PROTO_UDP: 8, PROTO_ICMP: 8, PROTO_ICMPV6: 8, PROTO_SCTP: 12}

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
SUPPORTED_LINKTYPES = frozenset(
    (
        LINKTYPE_ETHERNET,
        LINKTYPE_RAW,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_IPV4,
        LINKTYPE_IPV6,
        LINKTYPE_LINUX_SLL2,
    )
)

IPV4_MAPPED = 0xFFFF_0000_0000

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_Q2 = struct.Struct("!QQ")
_TCP = struct.Struct("!HHIIBBH")
_U16X2 = struct.Struct("!HH")
_U32X2 = struct.Struct("!II")
_IPV4 = struct.Struct("!2xHHHBB")
_IPV6 = struct.Struct("!HBB")
_FRAG6 = struct.Struct("!HI")


class _Frame:
    """One frame being decoded: its bytes, where it sits in the batch, and the row being filled."""

    __slots__ = ("base", "buf", "row", "tunnelled", "wire_end")

    def __init__(self, buf: Buffer, base: int, wire_end: int, *, tunnelled: bool) -> None:
        self.buf = buf
        self.base = base
        self.wire_end = wire_end
        self.tunnelled = tunnelled
        self.row = [0] * NCOLS


def decode_frame(buf: Buffer, base: int, wirelen: int, linktype: int) -> list[int]:
    """Decode one captured frame into a row of ``NCOLS`` ints (DecodedBatch's column order).

    ``buf`` is the frame as captured (bytes, or a memoryview into the batch buffer), ``base`` its
    offset in the batch's buffer (``l4_off`` is reported in buffer coordinates), ``wirelen`` its
    length on the wire.
    """
    frame = _Frame(buf, base, max(wirelen, len(buf)), tunnelled=False)
    if linktype not in SUPPORTED_LINKTYPES:
        frame.row[STATUS] = _UNSUPPORTED_LINKTYPE
        return frame.row
    try:
        _link(frame, linktype)
    except (struct.error, IndexError):  # pragma: no cover - every read is bounds-checked first
        frame.row[STATUS] = _TRUNCATED_L2
    return frame.row


def _link(f: _Frame, linktype: int) -> None:
    buf, cap = f.buf, len(f.buf)
    if linktype == LINKTYPE_ETHERNET:
        if cap < 14:
            f.row[STATUS] = _TRUNCATED_L2
            return
        _ethertype(f, _U16.unpack_from(buf, 12)[0], 14)
    elif linktype == LINKTYPE_LINUX_SLL:
        if cap < 16:
            f.row[STATUS] = _TRUNCATED_L2
            return
        _ethertype(f, _U16.unpack_from(buf, 14)[0], 16)
    elif linktype == LINKTYPE_LINUX_SLL2:
        if cap < 20:
            f.row[STATUS] = _TRUNCATED_L2
            return
        _ethertype(f, _U16.unpack_from(buf, 0)[0], 20)
    elif linktype == LINKTYPE_IPV4:
        _ipv4(f, 0)
    elif linktype == LINKTYPE_IPV6:
        _ipv6(f, 0)
    elif cap < 1:  # LINKTYPE_RAW from here on: the version nibble says which
        f.row[STATUS] = _TRUNCATED_L3
    elif buf[0] >> 4 == 6:
        _ipv6(f, 0)
    else:
        _ipv4(f, 0)


def _ethertype(f: _Frame, etype: int, pos: int) -> None:
    tags = 0
    while etype in VLAN_TPIDS:
        if len(f.buf) < pos + 4:
            f.row[STATUS] = _TRUNCATED_L2
            return
        tci, etype = _U16X2.unpack_from(f.buf, pos)
        if tags == 0:
            f.row[VLAN] = tci & 0x0FFF
            f.row[ENCAP] |= _ENCAP_VLAN
        elif tags == 1:
            f.row[ENCAP] |= _ENCAP_QINQ
        tags += 1
        pos += 4
    if etype == ETH_IPV4:
        _ipv4(f, pos)
    elif etype == ETH_IPV6:
        _ipv6(f, pos)
    else:
        f.row[STATUS] = _NON_IP


def _ip_version_status(f: _Frame, pos: int, version: int, header: int) -> int | None:
    """Why the IP header at ``pos`` cannot be read, or None if its fixed part is all there."""
    if len(f.buf) < pos + 1:
        return _TRUNCATED_L3
    if f.buf[pos] >> 4 != version:
        return _BAD_IP_VERSION
    if len(f.buf) < pos + header:
        return _TRUNCATED_L3
    return None


def _ipv4(f: _Frame, pos: int) -> None:
    buf, row = f.buf, f.row
    bad = _ip_version_status(f, pos, 4, 20)
    hlen = (buf[pos] & 0x0F) * 4 if bad is None else 0
    if bad is None and hlen < 20:
        bad = _BAD_IP_HEADER_LEN
    elif bad is None and len(buf) < pos + hlen:
        bad = _TRUNCATED_L3
    if bad is not None:
        row[STATUS] = bad
        return
    total, ip_id, frag_field, ttl, proto = _IPV4.unpack_from(buf, pos)
    if total == 0:
        # A TSO/GSO or BIG TCP segment captured on the sending host, before the NIC splits it:
        # the kernel leaves the field 0 (the length may not fit 16 bits). tshark takes the length
        # from the frame's wire length, Zeek -C from the captured length; they agree unless the
        # snaplen cut the frame, and then the wire length is what the host sent.
        total = f.wire_end - pos
    if total < hlen or pos + total > f.wire_end:
        row[STATUS] = _BAD_IP_TOTAL_LEN
        return
    src, dst = _U32X2.unpack_from(buf, pos + 12)
    row[IPVER] = 4
    row[SRC_LO] = IPV4_MAPPED | src
    row[DST_LO] = IPV4_MAPPED | dst
    row[IP_LEN] = total
    row[IP_ID] = ip_id
    row[TTL] = ttl
    if frag_field & 0x1FFF:
        row[FRAG] = 2
    elif frag_field & 0x2000:
        row[FRAG] = 1
    _transport(f, pos + hlen, total - hlen, proto)


def _ipv6(f: _Frame, pos: int) -> None:
    buf, row = f.buf, f.row
    bad = _ip_version_status(f, pos, 6, 40)
    if bad is not None:
        row[STATUS] = bad
        return
    plen, nxt, hlim = _IPV6.unpack_from(buf, pos + 4)
    end = pos + 40 + plen
    if end > f.wire_end:
        row[STATUS] = _BAD_IP_TOTAL_LEN
        return
    row[IPVER] = 6
    row[SRC_HI], row[SRC_LO] = _Q2.unpack_from(buf, pos + 8)
    row[DST_HI], row[DST_LO] = _Q2.unpack_from(buf, pos + 24)
    row[IP_LEN] = plen + 40
    row[TTL] = hlim
    walked = _ipv6_chain(f, pos + 40, end, nxt)
    if isinstance(walked, int):
        row[STATUS] = walked
        return
    cur, nxt = walked
    _transport(f, cur, end - cur, nxt)


def _ipv6_chain(f: _Frame, cur: int, end: int, nxt: int) -> tuple[int, int] | int:
    """Walk the extension headers from ``cur``: (transport offset, its protocol) or a reason."""
    buf, row = f.buf, f.row
    for _ in range(_MAX_IPV6_EXT):
        if nxt not in IPV6_EXT_HEADERS:
            return cur, nxt
        need = 8 if nxt == _IPV6_FRAGMENT else 2
        if cur + need > end:
            return _BAD_IPV6_EXT_HEADER
        if cur + need > len(buf):
            return _TRUNCATED_L3
        if nxt == _IPV6_FRAGMENT:
            frag_field, ident = _FRAG6.unpack_from(buf, cur + 2)
            row[IP_ID] = ident
            row[FRAG] = 2 if frag_field >> 3 else (1 if frag_field & 1 else 0)
            hlen = 8
        elif nxt == _IPV6_AH:
            hlen = (buf[cur + 1] + 2) * 4
        else:
            hlen = (buf[cur + 1] + 1) * 8
        if cur + hlen > end:
            return _BAD_IPV6_EXT_HEADER
        nxt = buf[cur]
        cur += hlen
    return _BAD_IPV6_EXT_HEADER


def _transport(f: _Frame, pos: int, payload: int, proto: int) -> None:
    """Ports and payload bounds of the transport header at ``pos`` (``payload`` bytes per IP)."""
    buf, row = f.buf, f.row
    row[PROTO] = proto
    need = L4_MIN_CAPTURED.get(proto, 0)
    if need == 0 or row[FRAG] == 2:
        row[STATUS] = _L3
        row[L4_OFF] = f.base + pos
        row[L4_LEN] = payload
        return
    if payload < need or len(buf) < pos + need:
        row[STATUS] = _TRUNCATED_L4
        return
    hlen = L4_HEADER_LEN[proto]
    if proto == PROTO_TCP:
        sport, dport, seq, ack, off, flags, win = _TCP.unpack_from(buf, pos)
        hlen = (off >> 4) * 4
        if hlen < 20 or hlen > payload:
            row[STATUS] = _BAD_TCP_HEADER_LEN
            return
        row[SPORT], row[DPORT] = sport, dport
        row[TCP_SEQ], row[TCP_ACK], row[TCP_WIN] = seq, ack, win
        row[TCP_FLAGS] = ((off & 1) << 8) | flags
    elif proto in (PROTO_ICMP, PROTO_ICMPV6):
        row[SPORT], row[DPORT] = buf[pos], buf[pos + 1]
    else:
        row[SPORT], row[DPORT] = _U16X2.unpack_from(buf, pos)
    row[STATUS] = _L4
    row[L4_OFF] = f.base + pos + hlen
    row[L4_LEN] = max(payload - hlen, 0)
    if (
        proto == PROTO_UDP
        and not f.tunnelled
        and row[FRAG] == 0
        and row[DPORT] in (VXLAN_PORT, GENEVE_PORT)
    ):
        _tunnel(f, pos + 8, min(pos + payload, f.wire_end))


_GENEVE_INNER = {ETH_TEB: LINKTYPE_ETHERNET, ETH_IPV4: LINKTYPE_IPV4, ETH_IPV6: LINKTYPE_IPV6}


def _tunnel(f: _Frame, pos: int, end: int) -> None:
    """Replace the outer row by the inner frame's (tunnel header at ``pos``, data to ``end``)."""
    buf, row = f.buf, f.row
    if pos + 8 > end or pos + 8 > len(buf):
        row[STATUS] = _BAD_TUNNEL
        return
    vni = _U32.unpack_from(buf, pos + 4)[0] >> 8
    if row[DPORT] == VXLAN_PORT:
        # Without the I flag the VNI is not valid; only Geneve version 0 exists.
        valid = bool(buf[pos] & 0x08)
        kind, bit, inner_at, inner_type = _TUN_VXLAN, _ENCAP_VXLAN, pos + 8, LINKTYPE_ETHERNET
    else:
        kind, bit, inner_at = _TUN_GENEVE, _ENCAP_GENEVE, pos + 8 + (buf[pos] & 0x3F) * 4
        inner_type = _GENEVE_INNER.get(_U16.unpack_from(buf, pos + 2)[0], 0)
        valid = buf[pos] >> 6 == 0 and inner_type != 0 and inner_at <= min(end, len(buf))
    if not valid:
        row[STATUS] = _BAD_TUNNEL
        return
    # The inner frame is addressed relative to its own start, like a captured frame of its own.
    inner = _Frame(buf[inner_at:], f.base + inner_at, end - inner_at, tunnelled=True)
    _link(inner, inner_type)
    inner.row[TUN_TYPE] = kind
    inner.row[TUN_VNI] = vni
    inner.row[OUTER_SRC_HI], inner.row[OUTER_SRC_LO] = row[SRC_HI], row[SRC_LO]
    inner.row[OUTER_DST_HI], inner.row[OUTER_DST_LO] = row[DST_HI], row[DST_LO]
    inner.row[ENCAP] |= row[ENCAP] | bit
    row[:] = inner.row
