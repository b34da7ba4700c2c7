"""The decoder kernels' shared vocabulary: one frame's row, its column positions, byte reads.

The compiled stages (``_declink``, ``_decchain``, ``_decip``, ``_dectun``, ``_decgre``) fill one
row per frame, a record of named int64 fields (``ROW``), and the frame loop in ``_decode`` stores
it into the typed columns of ``DecodedBatch``. A record, not an array: numba passes it as a plain
pointer, where every array argument costs each call an atomic reference count up and down. Status
and tunnel codes are the enums' values as plain ints (numba freezes module globals into the
compiled code). The byte readers do no bounds check: every caller checks the
frame's captured end first, because numba does not.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from analyzers._decoded import Encap, Status, TunnelType
from capture import njit

U8 = npt.NDArray[np.uint8]


class Row(Protocol):
    """One frame's row as the stages see it: a record of ``ROW`` (named int64 fields)."""

    status: int
    ipver: int
    src_hi: int
    src_lo: int
    dst_hi: int
    dst_lo: int
    proto: int
    sport: int
    dport: int
    vlan: int
    tun_type: int
    tun_vni: int
    tun_dir: int
    outer_src_hi: int
    outer_src_lo: int
    outer_dst_hi: int
    outer_dst_lo: int
    encap: int
    carrier_ports: int
    carrier_ip_len: int
    carrier_l4_len: int
    ip_len: int
    l4_off: int
    l4_len: int
    tcp_flags: int
    tcp_seq: int
    tcp_ack: int
    tcp_win: int
    ip_id: int
    frag: int
    ttl: int


#: The row's layout: DecodedBatch's columns, all int64 while a frame is decoded.
ROW = np.dtype(
    [
        (name, np.int64)
        for name in (
            "status",
            "ipver",
            "src_hi",
            "src_lo",
            "dst_hi",
            "dst_lo",
            "proto",
            "sport",
            "dport",
            "vlan",
            "tun_type",
            "tun_vni",
            "tun_dir",
            "outer_src_hi",
            "outer_src_lo",
            "outer_dst_hi",
            "outer_dst_lo",
            "encap",
            "carrier_ports",
            "carrier_ip_len",
            "carrier_l4_len",
            "ip_len",
            "l4_off",
            "l4_len",
            "tcp_flags",
            "tcp_seq",
            "tcp_ack",
            "tcp_win",
            "ip_id",
            "frag",
            "ttl",
        )
    ]
)


@njit
def clear_inner(row: Row) -> None:
    """Zero every field but the tunnel ones (type, key, direction, outer endpoints, encap)."""
    row.status = 0
    row.ipver = 0
    row.src_hi = 0
    row.src_lo = 0
    row.dst_hi = 0
    row.dst_lo = 0
    row.proto = 0
    row.sport = 0
    row.dport = 0
    row.vlan = 0
    row.ip_len = 0
    row.l4_off = 0
    row.l4_len = 0
    row.tcp_flags = 0
    row.tcp_seq = 0
    row.tcp_ack = 0
    row.tcp_win = 0
    row.ip_id = 0
    row.frag = 0
    row.ttl = 0


@njit
def clear(row: Row) -> None:
    """Zero every field: a new frame."""
    clear_inner(row)
    row.tun_type = 0
    row.tun_vni = 0
    row.tun_dir = 0
    row.outer_src_hi = 0
    row.outer_src_lo = 0
    row.outer_dst_hi = 0
    row.carrier_ports = 0
    row.carrier_ip_len = 0
    row.carrier_l4_len = 0
    row.outer_dst_lo = 0
    row.encap = 0


L4, L3, NON_IP = int(Status.L4), int(Status.L3), int(Status.NON_IP)
TRUNCATED_L2 = int(Status.TRUNCATED_L2)
TRUNCATED_L3 = int(Status.TRUNCATED_L3)
TRUNCATED_L4 = int(Status.TRUNCATED_L4)
BAD_IP_VERSION = int(Status.BAD_IP_VERSION)
BAD_IP_HEADER_LEN = int(Status.BAD_IP_HEADER_LEN)
BAD_IP_TOTAL_LEN = int(Status.BAD_IP_TOTAL_LEN)
BAD_TCP_HEADER_LEN = int(Status.BAD_TCP_HEADER_LEN)
BAD_IPV6_EXT_HEADER = int(Status.BAD_IPV6_EXT_HEADER)
BAD_TUNNEL = int(Status.BAD_TUNNEL)
UNSUPPORTED_LINKTYPE = int(Status.UNSUPPORTED_LINKTYPE)
BAD_MPLS = int(Status.BAD_MPLS)
BAD_PPPOE = int(Status.BAD_PPPOE)
BAD_LINK_HEADER = int(Status.BAD_LINK_HEADER)
BAD_GRE = int(Status.BAD_GRE)
BAD_ERSPAN = int(Status.BAD_ERSPAN)
TUNNEL_TOO_DEEP = int(Status.TUNNEL_TOO_DEEP)

TUN_VXLAN, TUN_GENEVE = int(TunnelType.VXLAN), int(TunnelType.GENEVE)
TUN_GRE, TUN_GRE_UDP, TUN_PPTP = int(TunnelType.GRE), int(TunnelType.GRE_UDP), int(TunnelType.PPTP)
TUN_ERSPAN_I, TUN_ERSPAN_II = int(TunnelType.ERSPAN_I), int(TunnelType.ERSPAN_II)
TUN_ERSPAN_III = int(TunnelType.ERSPAN_III)
TUN_TEREDO, TUN_AYIYA, TUN_IPIP = (
    int(TunnelType.TEREDO),
    int(TunnelType.AYIYA),
    int(TunnelType.IPIP),
)

ENC_VLAN, ENC_QINQ, ENC_MPLS = int(Encap.VLAN), int(Encap.QINQ), int(Encap.MPLS)
ENC_PPPOE, ENC_FABRICPATH, ENC_PBB = int(Encap.PPPOE), int(Encap.FABRICPATH), int(Encap.PBB)
ENC_VNTAG, ENC_PPP, ENC_NULL_LOOP = int(Encap.VNTAG), int(Encap.PPP), int(Encap.NULL_LOOP)
ENC_RADIOTAP = int(Encap.RADIOTAP)
ENC_VXLAN, ENC_GENEVE = int(Encap.VXLAN), int(Encap.GENEVE)
ENC_GRE, ENC_ERSPAN, ENC_GRE_UDP = int(Encap.GRE), int(Encap.ERSPAN), int(Encap.GRE_UDP)
ENC_PPTP, ENC_TEREDO, ENC_AYIYA = int(Encap.PPTP), int(Encap.TEREDO), int(Encap.AYIYA)
ENC_IPIP = int(Encap.IPIP)

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_TEB = 0x6558  # "transparent Ethernet bridging": an inner Ethernet frame (Geneve, GRE)

IPV4_MAPPED = 0xFFFF_0000_0000


@njit
def u8(data: U8, at: int) -> int:
    """One byte as int64 (numba's ``int()`` of a uint8 is a uint64, which mixes into floats).

    The index is made unsigned: numba wraps a signed one round (a negative index counts from
    the end) with a test and a reload of the buffer's length on every byte read. Every position
    a stage reads is checked against the frame first, never negative."""
    return np.int64(data[np.uint64(at)])  # type: ignore[return-value]


@njit
def u16(data: U8, at: int) -> int:
    return (u8(data, at) << 8) | u8(data, at + 1)


@njit
def u32(data: U8, at: int) -> int:
    return (u16(data, at) << 16) | u16(data, at + 2)


@njit
def u64(data: U8, at: int) -> int:
    """Eight bytes big-endian, wrapping into int64 (stored as uint64, the bits are the same)."""
    return (u32(data, at) << 32) | u32(data, at + 4)
