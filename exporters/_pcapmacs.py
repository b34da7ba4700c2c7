"""Which MAC each address sends from, learned from the traffic itself (a ``FrameSink``).

A pod's ARP and neighbour-discovery frames carry no pod address in their IP columns, so a
download finds them by the pod's MAC. OVSDB does not hold it (Kube-OVN keeps it in OVN's
northbound database, which a node does not read), but every IP frame a pod sends names it: the
Ethernet source of a frame whose IP source is the pod's address. Per batch only the distinct
sources are looked at (``unique_pairs``), and of those only the (address, MAC) pairs not yet
settled: a pair seen in ``SETTLE`` frames is settled, and its frames are no longer counted. With
ten thousand active pods every ring block names thousands of sources, and counting each in a
dict took 0.16 us a frame of the capture thread, a sixth of the rate it could take frames off
the ring; the settled pairs are found with one ``searchsorted`` over a hash of the pair.
A settled pair replaces the address's other MACs (a pod deleted and created again with the same
address and a new MAC is settled anew), so the newest MAC an address sent ``SETTLE`` frames from
wins; before that the one it sent most frames from.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from analyzers import DecodedBatch
from capture import LINKTYPE_ETHERNET, FrameBatch
from exporters._pcapindex import unique_pairs

__all__ = ["SETTLE", "MacTable"]

SETTLE = 64  # frames from one (address, MAC) pair after which that pair is settled

_WEIGHTS = (np.uint64(1) << (np.arange(5, -1, -1, dtype=np.uint64) * np.uint64(8))).astype(
    np.uint64
)
_SRC_MAC = np.arange(6, 12)
_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9))


def _pair_hash(
    hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64], mac: npt.NDArray[np.uint64]
) -> npt.NDArray[np.uint64]:
    """A 64-bit hash of each (address, MAC) pair (wrapping multiplications: numpy's uint64)."""
    h: npt.NDArray[np.uint64] = hi * _MIX[0] ^ lo * _MIX[1] ^ mac * _MIX[2]
    mixed: npt.NDArray[np.uint64] = h ^ (h >> np.uint64(31))
    return mixed


class MacTable:
    """Address key (the decoder's 128-bit form) → the MAC most of its frames came from."""

    def __init__(self, max_addresses: int = 65_536) -> None:
        self._lock = threading.Lock()
        self._seen: dict[int, dict[int, int]] = {}  # address -> MAC -> frames
        self._max = max_addresses
        self._settled_of: dict[int, int] = {}  # address -> the hash of its settled pair
        self._settled = np.empty(0, np.uint64)  # those hashes, sorted (for searchsorted)

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
        mac_arr = head @ _WEIGHTS
        hashes = _pair_hash(hi, lo, mac_arr)
        todo = np.arange(hashes.size)
        if self._settled.size:
            pos = np.minimum(np.searchsorted(self._settled, hashes), self._settled.size - 1)
            todo = np.flatnonzero(self._settled[pos] != hashes)
        if todo.size == 0:
            return
        settled = False
        with self._lock:
            for i, h, low, mac, n in zip(
                todo.tolist(),
                hi[todo].tolist(),
                lo[todo].tolist(),
                mac_arr[todo].tolist(),
                counts[todo].tolist(),
                strict=True,
            ):
                key = (h << 64) | low
                table = self._seen.get(key)
                if table is None:
                    if len(self._seen) >= self._max:
                        continue
                    table = self._seen[key] = {}
                seen = table[mac] = table.get(mac, 0) + n
                if seen >= SETTLE:
                    # replaces the address's other MACs, and its old settled pair: that MAC
                    # counts again if it comes back
                    self._seen[key] = {mac: seen}
                    self._settled_of[key] = int(hashes[i])
                    settled = True
        if settled:
            self._settled = np.unique(np.fromiter(self._settled_of.values(), np.uint64))

    def macs(self) -> dict[int, int]:
        """Each address's MAC (the one most of its frames came from)."""
        with self._lock:
            return {k: max(t.items(), key=lambda kv: kv[1])[0] for k, t in self._seen.items()}

    def merge(self, learned: Mapping[int, int]) -> None:
        """Take another worker's ``macs()`` (the parent of ``--workers N``); newest wins."""
        with self._lock:
            for key, mac in learned.items():
                self._seen[key] = {mac: 1}
