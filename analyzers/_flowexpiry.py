"""Which flows end without a packet: timed out at packet time, or evicted to make room.

Timeouts follow Zeek's defaults per protocol, with a short one for TCP flows both sides closed
or either side reset; a flow open longer than the active timeout is reported and kept tracking.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from analyzers._flowcolumns import FlowColumns
from analyzers._flowkey import PROTO_TCP, PROTO_UDP
from analyzers._tcpstate import CLOSED, RESET

I64 = npt.NDArray[np.int64]


def idle_limits(
    proto: npt.NDArray[np.uint8],
    tcp_state: npt.NDArray[np.uint8],
    *,
    idle_ns: int,
    udp_idle_ns: int,
    icmp_idle_ns: int,
    closed_ns: int,
) -> I64:
    """Each flow's idle timeout from its protocol and (TCP) its endpoints' states ``(k, 2)``."""
    s0 = tcp_state[:, 0]
    s1 = tcp_state[:, 1]
    closed = ((s0 == CLOSED) & (s1 == CLOSED)) | (s0 == RESET) | (s1 == RESET)
    return np.where(
        proto == PROTO_TCP,
        np.where(closed, closed_ns, idle_ns),
        np.where(proto == PROTO_UDP, udp_idle_ns, icmp_idle_ns),
    ).astype(np.int64)


def timed_out(
    c: FlowColumns,
    now_ns: int,
    *,
    idle_ns: int,
    udp_idle_ns: int,
    icmp_idle_ns: int,
    closed_ns: int,
    active_ns: int,
) -> tuple[I64, I64]:
    """Slots idle too long at *now_ns*, and slots (not idle) active too long."""
    hwm = c.hwm
    act = c.active[:hwm]
    limit = idle_limits(
        c.proto[:hwm],
        c.tcp_state[:hwm],
        idle_ns=idle_ns,
        udp_idle_ns=udp_idle_ns,
        icmp_idle_ns=icmp_idle_ns,
        closed_ns=closed_ns,
    )
    last = c.last[:hwm]
    idle = act & (now_ns - last > limit)
    first = c.first[:hwm]
    too_long = act & ~idle & (first > 0) & (now_ns - first > active_ns)
    return np.flatnonzero(idle), np.flatnonzero(too_long)


def eviction_victims(c: FlowColumns, k: int, busy: I64) -> I64:
    """At least *k* active slots, least recently seen first, never one of *busy*."""
    active = c.active[: c.hwm].copy()
    active[busy] = False  # flows of the batch being processed stay
    act = np.flatnonzero(active)
    k = max(k, min(act.size, c.size // 100))  # evict in bulk, not one flow per batch
    return act if k >= act.size else act[np.argpartition(c.last[act], k - 1)[:k]]
