"""The decoder kernels' shared vocabulary: one frame's row, its column positions, byte reads.

The compiled stages (``_declink``, ``_decip``, ``_dectun``) fill one int64 row per frame, named by
the column positions below, and the frame loop in ``_decode`` stores it into the typed columns of
``DecodedBatch``. Status and tunnel codes are the enums' values as plain ints (numba freezes module
globals into the compiled code). The byte readers do no bounds check: every caller checks the
frame's captured end first, because numba does not.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from analyzers._decoded import Encap, Status, TunnelType
from capture import njit

U8 = npt.NDArray[np.uint8]
Row = npt.NDArray[np.int64]

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
#: The columns a tunnel keeps when the inner frame's headers replace the outer ones.
FIRST_INNER, LAST_TUNNEL = IP_LEN, ENCAP

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
    """One byte as int64 (numba's ``int()`` of a uint8 is a uint64, which mixes into floats)."""
    return np.int64(data[at])  # type: ignore[return-value]


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
