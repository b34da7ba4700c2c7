"""Which flows end without a packet: timed out at packet time, or evicted to make room.

Timeouts follow Zeek's defaults per protocol; a TCP connection ends the close delay after its
close completed, a UDP DNS flow by the DNS session timer; a flow open longer than the active
timeout is reported and kept tracking.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from analyzers._flowcolumns import FlowColumns
from analyzers._flowkey import PROTO_TCP, PROTO_UDP
from analyzers._serverports import dns_udp_port_table

I64 = npt.NDArray[np.int64]
_DNS_GRACE_NS = 1_000_000_000  # Zeek's "- 1.0": one request and its reply need one timer


def idle_limits(
    proto: npt.NDArray[np.uint8], *, idle_ns: int, udp_idle_ns: int, icmp_idle_ns: int
) -> I64:
    """Each flow's inactivity timeout from its protocol."""
    return np.where(
        proto == PROTO_TCP, idle_ns, np.where(proto == PROTO_UDP, udp_idle_ns, icmp_idle_ns)
    ).astype(np.int64)


def dns_flows(c: FlowColumns, s: I64) -> npt.NDArray[np.bool_]:
    """Which of slots *s* are UDP flows to a DNS port (Zeek runs its DNS analyzer on them)."""
    ports = c.ports[s].astype(np.intp)
    resp = np.where(c.orig_a[s], ports & 0xFFFF, ports >> 16)
    out: npt.NDArray[np.bool_] = (c.proto[s] == PROTO_UDP) & dns_udp_port_table()[resp]
    return out


def ended(
    c: FlowColumns,
    s: I64,
    at: I64 | int,
    *,
    idle_ns: int,
    udp_idle_ns: int,
    icmp_idle_ns: int,
    closed_ns: int,
    dns_ns: int,
) -> npt.NDArray[np.bool_]:
    """Whether each flow of slots *s* has ended by packet time *at* without a packet of its own.

    Three of Zeek's timers: inactivity; the TCP close delay counted from the packet that
    completed the close; and the DNS analyzer's session timer on UDP, which fires every
    ``dns_ns`` from the flow's start and ends the flow if it has been quiet for ``dns_ns`` less
    one second (Zeek reschedules it from the time it fired, which is its due time whenever
    other traffic keeps the clock going).
    """
    proto = c.proto[s]
    last = c.last[s]
    limit = idle_limits(proto, idle_ns=idle_ns, udp_idle_ns=udp_idle_ns, icmp_idle_ns=icmp_idle_ns)
    close_ts = c.close_ts[s]
    out: npt.NDArray[np.bool_] = (at - last > limit) | (
        (proto == PROTO_TCP) & (close_ts > 0) & (at - close_ts >= closed_ns)
    )
    dns = dns_flows(c, s)
    if dns.any():
        first = c.first[s]
        fired = first + (at - first) // dns_ns * dns_ns  # the timer's last due time by *at*
        out |= dns & (fired > first) & (fired - last >= dns_ns - _DNS_GRACE_NS)
    return out


def timed_out(
    c: FlowColumns,
    now_ns: int,
    *,
    idle_ns: int,
    udp_idle_ns: int,
    icmp_idle_ns: int,
    closed_ns: int,
    active_ns: int,
    dns_ns: int,
) -> tuple[I64, I64]:
    """Slots ended at *now_ns* (``ended``), and slots (not ended) active too long."""
    act = np.flatnonzero(c.active[: c.hwm])
    gone = ended(
        c,
        act,
        now_ns,
        idle_ns=idle_ns,
        udp_idle_ns=udp_idle_ns,
        icmp_idle_ns=icmp_idle_ns,
        closed_ns=closed_ns,
        dns_ns=dns_ns,
    )
    first = c.first[act]
    too_long = ~gone & (first > 0) & (now_ns - first > active_ns)
    return act[gone], act[too_long]


def eviction_victims(c: FlowColumns, k: int, busy: I64) -> I64:
    """At least *k* active slots, least recently seen first, never one of *busy*."""
    active = c.active[: c.hwm].copy()
    active[busy] = False  # flows of the batch being processed stay
    act = np.flatnonzero(active)
    k = max(k, min(act.size, c.size // 100))  # evict in bulk, not one flow per batch
    return act if k >= act.size else act[np.argpartition(c.last[act], k - 1)[:k]]
