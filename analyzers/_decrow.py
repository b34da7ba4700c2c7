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

TUN_VXLAN, TUN_GENEVE = int(TunnelType.VXLAN), int(TunnelType.GENEVE)

ENC_VLAN, ENC_QINQ = int(Encap.VLAN), int(Encap.QINQ)
ENC_VXLAN, ENC_GENEVE = int(Encap.VXLAN), int(Encap.GENEVE)

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_TEB = 0x6558  # "transparent Ethernet bridging": an inner Ethernet frame (Geneve, GRE)

IPV4_MAPPED = 0xFFFF_0000_0000


@njit
def u16(data: U8, at: int) -> int:
    return (int(data[at]) << 8) | int(data[at + 1])


@njit
def u32(data: U8, at: int) -> int:
    return (
        (int(data[at]) << 24)
        | (int(data[at + 1]) << 16)
        | (int(data[at + 2]) << 8)
        | int(data[at + 3])
    )


@njit
def u64(data: U8, at: int) -> int:
    """Eight bytes big-endian, wrapping into int64 (stored as uint64, the bits are the same)."""
    value = 0
    for k in range(8):
        value = (value << 8) | int(data[at + k])
    return value
