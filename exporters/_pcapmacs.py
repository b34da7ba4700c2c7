"""Which MAC each address sends from, learned from the traffic itself (a ``FrameSink``).

A pod's ARP and neighbour-discovery frames carry no pod address in their IP columns, so a
download finds them by the pod's MAC. OVSDB does not hold it (Kube-OVN keeps it in OVN's
northbound database, which a node does not read), but every IP frame a pod sends names it: the
Ethernet source of a frame whose IP source is the pod's address. Per batch only the distinct
sources are looked at (``unique_pairs``), so learning costs a few microseconds a batch.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np

from analyzers import DecodedBatch
from capture import LINKTYPE_ETHERNET, FrameBatch
from exporters._pcapindex import unique_pairs

__all__ = ["MacTable"]

_WEIGHTS = (np.uint64(1) << (np.arange(5, -1, -1, dtype=np.uint64) * np.uint64(8))).astype(
    np.uint64
)
_SRC_MAC = np.arange(6, 12)


class MacTable:
    """Address key (the decoder's 128-bit form) → the MAC most of its frames came from."""

    def __init__(self, max_addresses: int = 65_536) -> None:
        self._lock = threading.Lock()
        self._seen: dict[int, dict[int, int]] = {}  # address -> MAC -> frames
        self._max = max_addresses

    def on_frames(self, batch: FrameBatch, decoded: DecodedBatch) -> None:
        if batch.linktype != LINKTYPE_ETHERNET or len(batch) == 0:
            return
        # A tunnelled frame's Ethernet header is the tunnel's, not the inner sender's.
        rows = np.flatnonzero((decoded.ipver != 0) & (decoded.tun_type == 0))
        if rows.size == 0:
            return
        hi, lo, first, counts = unique_pairs(decoded.src_hi[rows], decoded.src_lo[rows])
        picked = rows[first]
        head = batch.data[batch.offsets[picked][:, None] + _SRC_MAC].astype(np.uint64)
        macs = (head @ _WEIGHTS).tolist()
        keys = [(h << 64) | low for h, low in zip(hi.tolist(), lo.tolist(), strict=True)]
        with self._lock:
            for key, mac, n in zip(keys, macs, counts.tolist(), strict=True):
                table = self._seen.get(key)
                if table is None:
                    if len(self._seen) >= self._max:
                        continue
                    table = self._seen[key] = {}
                table[mac] = table.get(mac, 0) + n

    def macs(self) -> dict[int, int]:
        """Each address's MAC (the one most of its frames came from)."""
        with self._lock:
            return {k: max(t.items(), key=lambda kv: kv[1])[0] for k, t in self._seen.items()}

    def merge(self, learned: Mapping[int, int]) -> None:
        """Take another worker's ``macs()`` (the parent of ``--workers N``); newest wins."""
        with self._lock:
            for key, mac in learned.items():
                self._seen[key] = {mac: 1}
