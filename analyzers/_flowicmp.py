"""ICMP flows' "ports" as Zeek reports them: the originator's message type and its counterpart.

Zeek keys an ICMP connection on (type, counterpart type) for the request/reply pairs it knows
(echo, timestamp, information, router and neighbour discovery, mask, MLD, node information, home
agent discovery), so a request and its reply are one connection, and reports ``id.resp_p`` as the
counterpart (ICMPv6 echo: 128 -> 129); a message with no counterpart is one-way and its
``id.resp_p`` is its code. The flow key stores each type's class (the request of its pair,
``_flowkey``) so both directions meet; what a record says is rebuilt here from the class, the
code and the type of the flow's first packet, kept in a sparse side table only where it differs
from its class (a flow whose first packet was a reply: rare).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from analyzers._decoded import DecodedBatch

__all__ = ["IcmpFirstTypes", "icmp_ports"]

I64 = npt.NDArray[np.int64]

PROTO_ICMP = 1
PROTO_ICMP6 = 58
#: Zeek's ICMP4_counterpart / ICMP6_counterpart pairs (both ways).
_PAIRS4 = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
_PAIRS6_ONE_WAY = ((128, 129), (133, 134), (135, 136), (130, 131), (139, 140), (144, 145))
_PAIRS6 = dict(_PAIRS6_ONE_WAY) | {b: a for a, b in _PAIRS6_ONE_WAY}
#: Reply type -> request type: the class both messages of a pair are keyed on.
CLASS4 = {reply: req for req, reply in ((8, 0), (13, 14), (15, 16), (10, 9), (17, 18))}
CLASS6 = {reply: req for req, reply in _PAIRS6_ONE_WAY}


def icmp_ports(proto: int, klass: int, code: int, first: int | None) -> tuple[int, int]:
    """``(orig_p, resp_p)`` of an ICMP flow keyed on type class ``klass`` and ``code`` whose first
    packet had type ``first`` (None: the class itself)."""
    typ = klass if first is None else first
    pairs = _PAIRS4 if proto == PROTO_ICMP else _PAIRS6
    return typ, pairs.get(typ, code)


class IcmpFirstTypes:
    """Slot -> the type of an ICMP flow's first packet, for the flows where it is not its class."""

    def __init__(self) -> None:
        self._of: dict[int, int] = {}

    def remember(self, slots: I64, dec: DecodedBatch, rows: I64) -> None:
        """New flows in *slots* whose first packets are *rows* of *dec* (same order)."""
        proto = dec.proto[rows]
        icmp = np.flatnonzero((proto == PROTO_ICMP) | (proto == PROTO_ICMP6))
        if icmp.size == 0:
            return
        for slot, p, typ in zip(
            slots[icmp].tolist(), proto[icmp].tolist(), dec.sport[rows[icmp]].tolist(), strict=True
        ):
            if typ in (CLASS4 if p == PROTO_ICMP else CLASS6):
                self._of[slot] = typ

    def forget(self, slots: I64) -> None:
        if self._of:
            for slot in slots.tolist():
                self._of.pop(slot, None)

    def get(self, slot: int) -> int | None:
        return self._of.get(slot)
