"""The tunnel each flow came in: a sparse side table keyed by flow-table slot.

Most nodes see no tunnelled flow at all, and a dense per-flow column set (type, id, direction,
two 128-bit outer endpoints: ~40 bytes a slot, ~80 MB at 2 M flows) would cost memory for
nothing; a dict of the few tunnelled slots costs nothing when empty. A flow remembers the tunnel
of its first packet: type and id are part of its key (a flow never changes tunnel), the outer
endpoints are the first packet's.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from analyzers._addrtext import key_text
from analyzers._decoded import DecodedBatch, TunnelType

I64 = npt.NDArray[np.int64]

#: A record's ``tunnel`` by ``TunnelType``.
TUNNEL_NAMES = {
    TunnelType.VXLAN: "vxlan",
    TunnelType.GENEVE: "geneve",
    TunnelType.GRE: "gre",
    TunnelType.ERSPAN_I: "erspan1",
    TunnelType.ERSPAN_II: "erspan2",
    TunnelType.ERSPAN_III: "erspan3",
    TunnelType.GRE_UDP: "gre-udp",
    TunnelType.PPTP: "pptp",
    TunnelType.TEREDO: "teredo",
    TunnelType.AYIYA: "ayiya",
    TunnelType.IPIP: "ipip",
}
#: Tunnels without an id of their own: their records' ``tunnel_id`` is null, not 0.
NO_ID = frozenset((TunnelType.TEREDO, TunnelType.AYIYA, TunnelType.IPIP))
#: A record's ``tunnel_dir`` by the decoder's ``tun_dir`` (0, unknown, is null).
DIRECTIONS = {1: "ingress", 2: "egress"}


class FlowTunnel(NamedTuple):
    """The tunnel of one flow, in record terms (names and address text)."""

    tunnel: str  # TUNNEL_NAMES
    tunnel_id: int | None  # VNI, GRE key, ERSPAN session, PPTP call id
    tunnel_dir: str | None  # ERSPAN's direction, when it says
    outer_src: str  # the outermost tunnel's endpoints
    outer_dst: str


class FlowTunnels:
    """Slot → ``FlowTunnel`` for the flows that came in a tunnel."""

    def __init__(self) -> None:
        self._of: dict[int, FlowTunnel] = {}

    def __len__(self) -> int:
        return len(self._of)

    def remember(self, slots: I64, dec: DecodedBatch, rows: I64) -> None:
        """New flows in *slots* whose first packets are *rows* of *dec* (same order)."""
        kinds = dec.tun_type[rows]
        tunnelled = np.flatnonzero(kinds)
        if tunnelled.size == 0:
            return
        r = rows[tunnelled]
        for slot, kind, tid, direction, src, dst in zip(
            slots[tunnelled].tolist(),
            kinds[tunnelled].tolist(),
            dec.tun_vni[r].tolist(),
            dec.tun_dir[r].tolist(),
            _addresses(dec.outer_src_hi[r], dec.outer_src_lo[r]),
            _addresses(dec.outer_dst_hi[r], dec.outer_dst_lo[r]),
            strict=True,
        ):
            tunnel = TunnelType(kind)
            self._of[slot] = FlowTunnel(
                TUNNEL_NAMES[tunnel],
                None if tunnel in NO_ID else tid,
                DIRECTIONS.get(direction),
                src,
                dst,
            )

    def forget(self, slots: I64) -> None:
        """Slots *slots* are freed: their next flows start without a tunnel."""
        if self._of:
            for slot in slots.tolist():
                self._of.pop(slot, None)

    def of(self, slots: list[int]) -> list[FlowTunnel | None]:
        """The tunnel of each of *slots* (None: not tunnelled)."""
        if not self._of:
            return [None] * len(slots)
        return list(map(self._of.get, slots))


def _addresses(hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]) -> list[str]:
    return [key_text((h << 64) | x) for h, x in zip(hi.tolist(), lo.tolist(), strict=True)]
