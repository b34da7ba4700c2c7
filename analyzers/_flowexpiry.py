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
from capture import njit, njit_inline

I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]
_DNS_GRACE_NS = 1_000_000_000  # Zeek's "- 1.0": one request and its reply need one timer


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
    """Whether each flow of slots *s* has ended by packet time *at* (one for all, or one each)
    without a packet of its own (``_ended_by``'s rules)."""
    times = np.broadcast_to(np.asarray(at, np.int64), s.shape)
    out = np.empty(s.shape[0], np.bool_)
    _ended_rows(
        s,
        times,
        (c.proto, c.orig_a, c.ports),
        (c.first, c.last, c.close_ts),
        dns_udp_port_table(),
        (idle_ns, udp_idle_ns, icmp_idle_ns, closed_ns, dns_ns),
        out,
    )
    return out


@njit
def _ended_rows(  # noqa: PLR0917 - a compiled kernel takes its columns positionally
    s: I64,
    times: I64,
    flows: tuple[npt.NDArray[np.uint8], B, npt.NDArray[np.uint64]],
    cols: tuple[I64, I64, I64],
    dns_port: B,
    limits: tuple[int, int, int, int, int],
    out: B,
) -> None:
    proto, orig_a, ports = flows
    first, last, close_ts = cols
    for k in range(s.shape[0]):
        slot = s[k]
        out[k] = _ended_by(
            times[k], proto[slot], orig_a[slot], ports[slot],
            (first[slot], last[slot], close_ts[slot]), dns_port, limits,
        )  # fmt: skip


@njit_inline
def _ended_by(  # noqa: PLR0917 - a compiled helper takes its values positionally
    at: int | np.int64,
    p: np.uint8,
    orig_a: bool,
    ports: np.uint64,
    times: tuple[np.int64, np.int64, np.int64],
    dns_port: B,
    limits: tuple[int, int, int, int, int],
) -> bool:
    """Whether a flow (protocol *p*, key *ports*, *orig_a*; first and last packet, close time)
    has ended by packet time *at* without a packet of its own.

    Three of Zeek's timers: inactivity; the TCP close delay counted from the packet that
    completed the close; and the DNS analyzer's session timer on UDP to a DNS port, which fires
    every ``dns_ns`` from the flow's start and ends the flow if it has been quiet for ``dns_ns``
    less one second (Zeek reschedules it from the time it fired, which is its due time whenever
    other traffic keeps the clock going).
    """
    first, last, close_ts = times
    idle_ns, udp_idle_ns, icmp_idle_ns, closed_ns, dns_ns = limits
    limit = idle_ns if p == PROTO_TCP else (udp_idle_ns if p == PROTO_UDP else icmp_idle_ns)
    if at - last > limit:
        return True
    if p == PROTO_TCP and close_ts > 0 and at - close_ts >= closed_ns:
        return True
    if p != PROTO_UDP or dns_ns <= 0:
        return False
    both = np.int64(ports)
    if not dns_port[both & 0xFFFF if orig_a else both >> 16]:
        return False
    fired = first + (at - first) // dns_ns * dns_ns  # the timer's last due time by *at*
    return bool(fired > first and fired - last >= dns_ns - _DNS_GRACE_NS)


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
    """``timed_out``'s pass: ``_ended_by`` and the active timeout, slot by slot."""
    active, proto, orig_a, ports = flows
    first_col, last_col, close_col = times
    idle_ns, udp_idle_ns, icmp_idle_ns, closed_ns, active_ns, dns_ns = limits
    gone, too_long = out
    n_gone = n_long = 0
    for s in range(hwm):
        if not active[s]:
            continue
        first = first_col[s]
        ended_now = _ended_by(
            now, proto[s], orig_a[s], ports[s], (first, last_col[s], close_col[s]), dns_port,
            (idle_ns, udp_idle_ns, icmp_idle_ns, closed_ns, dns_ns),
        )  # fmt: skip
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
