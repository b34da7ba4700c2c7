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


#: Where the kernel puts a frame's first byte in its slot: after ``tpacket3_hdr`` and the
#: ``sockaddr_ll`` it writes behind it (``TPACKET_ALIGN``ed), with no private area.
FRAME_AT = 82
#: ``offset_to_first_pkt`` of a block with no private area.
FIRST_AT = 48


def lay_out_block(frames: list[tuple[bytes, int, int, int, int, int]]) -> tuple[bytes, int]:
    """One TPACKET_V3 block as the kernel fills it: *frames* as (bytes, wire length, time in ns,
    status bits besides ``TP_STATUS_USER``, VLAN TCI, VLAN TPID), the last three as the kernel
    writes them into ``tpacket3_hdr`` (a tag it took out: ``TP_STATUS_VLAN_VALID`` and the TCI,
    with ``TP_STATUS_VLAN_TPID_VALID`` where it says the TPID); returns the block and its
    ``offset_to_first_pkt``.

    For code that must meet the ring's layout without a ring: the service's warm-up, tests.
    """
    out = bytearray(FIRST_AT)
    for i, (frame, wirelen, ts, status, tci, tpid) in enumerate(frames):
        size = (FRAME_AT + len(frame) + 7) & ~7
        hdr = np.zeros(1, TPACKET3_HDR)
        hdr["next_offset"] = 0 if i == len(frames) - 1 else size
        hdr["sec"], hdr["nsec"] = divmod(ts, 1_000_000_000)
        hdr["snaplen"], hdr["len"] = len(frame), wirelen
        hdr["status"] = TP_STATUS_USER | status
        hdr["mac"], hdr["net"] = FRAME_AT, FRAME_AT + 14
        hdr["vlan_tci"], hdr["vlan_tpid"] = tci, tpid
        slot = bytearray(size)
        slot[: TPACKET3_HDR.itemsize] = hdr.tobytes()
        slot[FRAME_AT : FRAME_AT + len(frame)] = frame
        out += slot
    BLOCK_COUNTS.pack_into(out, BLOCK_COUNTS_OFFSET, len(frames), FIRST_AT, len(out))
    return bytes(out), FIRST_AT
