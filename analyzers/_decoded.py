"""The decoder's output: header fields of a whole batch as parallel numpy columns.

One row per frame of the ``FrameBatch`` it was decoded from. Addresses are 128-bit values split in
two uint64 halves; IPv4 addresses are stored IPv4-mapped (``::ffff:a.b.c.d``), so one key layout
serves both families. For tunnelled frames (VXLAN, Geneve) every L3/L4 column describes the
*inner* packet (the innermost, with nesting) and ``tun_type``/``tun_vni`` record the tunnel right
outside it, ``outer_*`` the outermost tunnel's IP endpoints and ``encap`` every encapsulation the
frame crossed on the way in.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
U16 = npt.NDArray[np.uint16]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]


class Status(IntEnum):
    """Per-frame decode outcome. Values >= ``MALFORMED`` are malformed reasons, counted by name."""

    L4 = 0  # IP packet with a decoded transport header (TCP, UDP, ICMP, ICMPv6, SCTP ports)
    L3 = 1  # IP packet, no ports: another protocol, or a non-first fragment
    NON_IP = 2  # ARP, LLDP, other ethertypes: counted, not flowed
    # TRUNCATED_L2 comes first so that it, not MALFORMED, is the canonical name of 16: counters
    # keyed on ``Status(code).name`` then say what went wrong. MALFORMED stays the threshold.
    TRUNCATED_L2 = 16
    MALFORMED = 16
    TRUNCATED_L3 = 17
    TRUNCATED_L4 = 18
    BAD_IP_VERSION = 19
    BAD_IP_HEADER_LEN = 20
    BAD_IP_TOTAL_LEN = 21
    BAD_TCP_HEADER_LEN = 22
    BAD_IPV6_EXT_HEADER = 23
    BAD_TUNNEL = 24
    UNSUPPORTED_LINKTYPE = 25
    BAD_MPLS = 26  # a label stack deeper than the decoder follows
    BAD_PPPOE = 27  # not a version 1 session frame, or its length runs past the frame
    BAD_LINK_HEADER = 28  # a radiotap header whose version or length lies
    BAD_GRE = 29  # GRE version, routing or reserved flags, or a PPTP header that lies
    BAD_ERSPAN = 30  # an ERSPAN header cut, or of the wrong version for its GRE type
    # Tunnels nested deeper than the decoder follows. The pipeline counts codes below 32.
    TUNNEL_TOO_DEEP = 31


class TunnelType(IntEnum):
    """The tunnel right outside a frame's flow headers (4 bits in the flow key: at most 15)."""

    NONE = 0
    VXLAN = 1
    GENEVE = 2
    GRE = 3
    ERSPAN_I = 4
    ERSPAN_II = 5
    ERSPAN_III = 6
    GRE_UDP = 7
    PPTP = 8
    TEREDO = 9
    AYIYA = 10
    IPIP = 11  # IPv4 or IPv6 in IP


class Encap(IntFlag):
    """Every encapsulation a frame crossed (the ``encap`` column, a bit set)."""

    VLAN = 1 << 0
    QINQ = 1 << 1
    MPLS = 1 << 2
    PPPOE = 1 << 3
    FABRICPATH = 1 << 4
    PBB = 1 << 5
    VNTAG = 1 << 6
    PPP = 1 << 7
    NULL_LOOP = 1 << 8
    RADIOTAP = 1 << 9
    GRE = 1 << 10
    ERSPAN = 1 << 11
    GRE_UDP = 1 << 12
    PPTP = 1 << 13
    VXLAN = 1 << 14
    GENEVE = 1 << 15
    TEREDO = 1 << 16
    AYIYA = 1 << 17
    IPIP = 1 << 18


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    """Decoded header columns, one row per frame; meaningless where ``status`` says so."""

    status: U8
    ipver: U8  # 0 (not IP), 4 or 6
    src_hi: U64
    src_lo: U64
    dst_hi: U64
    dst_lo: U64
    proto: U8  # IP protocol number (last header of an IPv6 chain)
    sport: U16  # ICMP/ICMPv6: type (Zeek's convention)
    dport: U16  # ICMP/ICMPv6: code
    vlan: U16  # outermost 802.1Q VLAN id, 0 if untagged; tunnelled rows: the inner frame's
    tun_type: U8  # TunnelType
    tun_vni: U32  # VXLAN/Geneve VNI, GRE key, ERSPAN session id, PPTP call id
    tun_dir: U8  # ERSPAN direction: 0 unknown, 1 ingress, 2 egress
    outer_src_hi: U64  # the outermost tunnel's IP endpoints (IPv4-mapped); 0 if not tunnelled
    outer_src_lo: U64
    outer_dst_hi: U64
    outer_dst_lo: U64
    encap: U32  # Encap bits
    # The outermost tunnel's UDP datagram where Zeek logs it as a connection of its own (Teredo,
    # AYIYA, GRE over UDP; not VXLAN or Geneve): sport << 16 | dport (0: none), its IP length and
    # its UDP payload length. The pipeline accounts it as a flow beside the inner one.
    carrier_ports: U32
    carrier_ip_len: U32
    carrier_l4_len: U32
    ip_len: U32  # bytes of the IP packet (IPv4 total length; IPv6 payload length + 40)
    # Offset of the transport payload in the batch's data: after the TCP header (its data offset),
    # the 8-byte UDP/ICMP/ICMPv6 header, the 12-byte SCTP header; on L3 rows the IP payload.
    l4_off: I64
    l4_len: U32  # payload bytes from l4_off, from the IP lengths (not the snaplen); 0 if negative
    tcp_flags: U16  # 9 bits incl. NS; 0 for non-TCP
    tcp_seq: U32
    tcp_ack: U32
    tcp_win: U16  # raw window field, unscaled
    ip_id: U32  # IPv4 identification; IPv6 fragment id or 0
    frag: U8  # 1 if a fragment (any), 2 if a non-first fragment (no ports)
    ttl: U8  # IPv4 TTL / IPv6 hop limit
    # IP rows: the packet's NAT- and routing-invariant fingerprint, duplicate suppression's key
    # (``_dedupkernel.fingerprint``, computed while the decoder has the frame); 0 on other rows
    fp: U64

    def __len__(self) -> int:
        return int(self.status.shape[0])
