"""Which rows of a batch one of N parallel analyses of the same frames takes: its share.

``capture read --workers N`` runs N processes over the same files, each analysing a disjoint
share of the flows, as PACKET_FANOUT_HASH splits a live link between ``capture run``'s workers.
A row's share is its flow key's hash (the flow table's own, ``_flowkey``), so every packet of a
flow, both directions, lands in the same share; rows that belong to no flow (not IP, malformed)
all go to share 0, so counters summed over the shares count every frame once.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from analyzers._decoded import DecodedBatch, Status
from analyzers._flowkey import flow_keys

__all__ = ["share_rows"]


def share_rows(dec: DecodedBatch, index: int, count: int) -> npt.NDArray[np.bool_]:
    """True for the rows of share ``index`` of ``count`` (0 <= index < count)."""
    if not 0 <= index < count:
        raise ValueError(f"share {index} of {count}: need 0 <= index < count")
    ip = dec.status <= Status.L3
    mine = ~ip if index == 0 else np.zeros(ip.shape[0], np.bool_)
    rows = np.flatnonzero(ip)
    if rows.size:
        # the top bits: the flow table's buckets use the low ones
        h = flow_keys(dec, rows).hash63 >> np.uint64(40)
        mine[rows] = h % np.uint64(count) == np.uint64(index)
    return mine
