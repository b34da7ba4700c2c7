"""The TPACKET_V3 ring's kernel ABI: socket option numbers and struct layouts (linux/if_packet.h).

Python's socket module does not name these, so they are spelled out once here, next to the C
struct they mirror, for ``_afpacket`` to read the ring with ``struct`` and numpy.
"""

from __future__ import annotations

import struct

import numpy as np

SOL_PACKET = 263
ETH_P_ALL = 0x0003

# setsockopt(SOL_PACKET, ...) option names
PACKET_ADD_MEMBERSHIP = 1
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_FANOUT = 18

TPACKET_V3 = 2
PACKET_MR_PROMISC = 1

PACKET_FANOUT_HASH = 0
PACKET_FANOUT_LB = 1
PACKET_FANOUT_CPU = 2
PACKET_FANOUT_FLAG_DEFRAG = 0x8000

# block_status / tp_status bits
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1 << 0
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6

SIOCGIFINDEX = 0x8933
ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772
ETH_P_8021Q = 0x8100

#: struct tpacket_req3: block_size, block_nr, frame_size, frame_nr, retire_blk_tov (ms),
#: sizeof_priv, feature_req_word.
TPACKET_REQ3 = struct.Struct("=7I")

#: struct packet_mreq: ifindex, type, alen, address[8].
PACKET_MREQ = struct.Struct("=iHH8s")

#: struct tpacket_stats_v3: tp_packets (includes drops when read), tp_drops, tp_freeze_q_cnt.
TPACKET_STATS_V3 = struct.Struct("=III")

#: struct tpacket_block_desc (version, offset_to_priv) then struct tpacket_hdr_v1:
#: block_status at 8, num_pkts at 12, offset_to_first_pkt at 16, blk_len at 20.
BLOCK_STATUS_OFFSET = 8
BLOCK_COUNTS = struct.Struct("=III")  # num_pkts, offset_to_first_pkt, blk_len, read at 12
BLOCK_COUNTS_OFFSET = 12

#: struct tpacket3_hdr up to the VLAN fields (hv1): the compiled block walk (``_ringwalk``) reads
#: its fields at these offsets.
TPACKET3_HDR = np.dtype(
    [
        ("next_offset", "=u4"),
        ("sec", "=u4"),
        ("nsec", "=u4"),
        ("snaplen", "=u4"),
        ("len", "=u4"),
        ("status", "=u4"),
        ("mac", "=u2"),
        ("net", "=u2"),
        ("rxhash", "=u4"),
        ("vlan_tci", "=u4"),
        ("vlan_tpid", "=u2"),
    ]
)
