"""The UDP carriers of tunnels Zeek logs as connections of their own, as rows the flow table takes.

Zeek logs a Teredo, AYIYA or GRE-over-UDP datagram's outer UDP connection beside the connection
inside it (VXLAN and Geneve we keep as before: the inner flow only, the overlay between nodes
being noise to a pod's operator). The decoder makes each frame one row, the inner packet, and
leaves the carrier's ports and lengths in the ``carrier_*`` columns and its addresses in
``outer_*``; ``carrier_view`` turns those rows into the UDP rows they were, for a second pass of
the flow table over the same batch.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from analyzers._decoded import DecodedBatch, Status

__all__ = ["carrier_view"]

_IPV4_MAPPED_HI = 0xFFFF  # the upper 32 bits of an IPv4-mapped address's low half
_UDP = 17


def carrier_view(dec: DecodedBatch) -> tuple[DecodedBatch, npt.NDArray[np.bool_]] | None:
    """``dec`` with every carrier row made its outer UDP datagram, and the mask of those rows;
    None when the batch has none (the usual case: one comparison over a column)."""
    mask = dec.carrier_ports != 0
    if not mask.any():
        return None
    n = len(dec)
    zeros = {f.name: np.zeros(n, getattr(dec, f.name).dtype) for f in dataclasses.fields(dec)}
    out = DecodedBatch(**zeros)
    rows = np.flatnonzero(mask)
    out.status[:] = Status.NON_IP
    out.status[rows] = Status.L4
    v4 = (dec.outer_src_hi[rows] == 0) & (
        dec.outer_src_lo[rows] >> np.uint64(32) == _IPV4_MAPPED_HI
    )
    out.ipver[rows] = np.where(v4, 4, 6)
    out.src_hi[rows] = dec.outer_src_hi[rows]
    out.src_lo[rows] = dec.outer_src_lo[rows]
    out.dst_hi[rows] = dec.outer_dst_hi[rows]
    out.dst_lo[rows] = dec.outer_dst_lo[rows]
    out.proto[rows] = _UDP
    ports = dec.carrier_ports[rows]
    out.sport[rows] = ports >> np.uint32(16)
    out.dport[rows] = ports & np.uint32(0xFFFF)
    out.ip_len[rows] = dec.carrier_ip_len[rows]
    out.l4_len[rows] = dec.carrier_l4_len[rows]
    return out, mask
