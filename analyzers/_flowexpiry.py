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
from capture import njit

I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]
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
    """Slots ended at *now_ns* (``ended``), and slots (not ended) active too long.

    One compiled pass over the slots in use (the service sweeps every second: over a million
    flows, a dozen numpy passes with gathers took ~50 ms of each second)."""
    gone = np.empty(c.hwm, np.int64)
    too_long = np.empty(c.hwm, np.int64)
    n_gone, n_long = _sweep(
        (c.active, c.proto, c.orig_a, c.ports),
        (c.first, c.last, c.close_ts),
        dns_udp_port_table(),
        c.hwm,
        now_ns,
        (idle_ns, udp_idle_ns, icmp_idle_ns, closed_ns, active_ns, dns_ns),
        (gone, too_long),
    )
    return gone[:n_gone], too_long[:n_long]


@njit
def _sweep(  # noqa: PLR0917 - a compiled kernel takes its columns positionally
    flows: tuple[B, npt.NDArray[np.uint8], B, npt.NDArray[np.uint64]],
    times: tuple[I64, I64, I64],
    dns_port: B,
    hwm: int,
    now: int,
    limits: tuple[int, int, int, int, int, int],
    out: tuple[I64, I64],
) -> tuple[int, int]:
    """``timed_out``'s pass: the rules of ``ended`` and the active timeout, slot by slot."""
    active, proto, orig_a, ports = flows
    first_col, last_col, close_col = times
    idle_ns, udp_idle_ns, icmp_idle_ns, closed_ns, active_ns, dns_ns = limits
    gone, too_long = out
    n_gone = n_long = 0
    for s in range(hwm):
        if not active[s]:
            continue
        p = proto[s]
        last, first = last_col[s], first_col[s]
        limit = idle_ns if p == PROTO_TCP else (udp_idle_ns if p == PROTO_UDP else icmp_idle_ns)
        ended_now = now - last > limit
        if p == PROTO_TCP and close_col[s] > 0 and now - close_col[s] >= closed_ns:
            ended_now = True
        if not ended_now and p == PROTO_UDP and dns_ns > 0:
            both = np.int64(ports[s])
            resp = both & 0xFFFF if orig_a[s] else both >> 16
            if dns_port[resp]:
                fired = first + (now - first) // dns_ns * dns_ns  # the timer's last due time
                ended_now = fired > first and fired - last >= dns_ns - _DNS_GRACE_NS
        if ended_now:
            gone[n_gone] = s
            n_gone += 1
        elif first > 0 and now - first > active_ns:
            too_long[n_long] = s
            n_long += 1
    return n_gone, n_long


def eviction_victims(c: FlowColumns, k: int, busy: I64) -> I64:
    """At least *k* active slots, least recently seen first, never one of *busy*."""
    active = c.active[: c.hwm].copy()
    active[busy] = False  # flows of the batch being processed stay
    act = np.flatnonzero(active)
    k = max(k, min(act.size, c.size // 100))  # evict in bulk, not one flow per batch
    return act if k >= act.size else act[np.argpartition(c.last[act], k - 1)[:k]]
