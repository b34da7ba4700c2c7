"""Where a flow ends inside a pass, compiled: one walk over the pass's rows in arrival order.

Each flow carries its own small state through the walk (the time of its packet before, whether
it has one, the first FIN or RST of the pass): a packet after the flow's quiet limit, past its
TCP close delay, or a pure SYN on a flow with a packet before it is where the flow may end; the
first such packet of each flow is its cut, and the flow's rows from it on wait for the next pass.
The rules are ``_flowcuts``'s; this is only their loop.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from capture import njit

__all__ = ["find_cuts"]

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
U16 = npt.NDArray[np.uint16]
B = npt.NDArray[np.bool_]

# literal here: numba freezes globals anyway (as _tcpstate and _flowkey name them)
_TCP, _UDP = 6, 17
_FIN, _SYN, _RST, _ACK = 0x01, 0x02, 0x04, 0x10
_NS = 1_000_000_000
_L4 = 0  # Status.L4


@njit
def find_cuts(  # noqa: PLR0917 - a compiled kernel takes its columns positionally
    rows: I64,
    flow: I64,
    ts_col: I64,
    proto_col: U8,
    status_col: U8,
    flags_col: U16,
    last: I64,
    close_ts: I64,
    dns: B,
    checked: B,
    limits: I64,
    cut_at: I64,
) -> int:
    """Fill *cut_at* (per flow: the arrival position of its cut, -1 none); return how many cuts.

    *rows* are the pass's batch rows in arrival order, *flow* each one's flow (an index into
    *last*, *close_ts*, *dns*: the flows' stored state, last 0 for a flow new in the batch);
    *status_col* is the decoder's (0: a transport header); *limits* are the table's
    (idle, UDP idle, ICMP idle, close delay, DNS session) timeouts in ns. A batch where no
    packet can reach a limit (the span of its times below the shortest one, no flow back
    after a pause or past its close delay, no pure SYN on a known flow, no second pure SYN)
    has no cut at all.
    """
    idle, udp_idle, icmp_idle, closed, dns_ns = (
        limits[0],
        limits[1],
        limits[2],
        limits[3],
        limits[4],
    )
    n = rows.shape[0]
    nf = last.shape[0]
    tcp_floor = min(closed, idle)
    # the quick screen: the common batch has no cut
    syns = np.zeros(nf, np.int64)
    t_min = ts_col[rows[0]]
    t_max = t_min
    floor_min = tcp_floor + udp_idle + icmp_idle + dns_ns  # above any floor
    may_cut = False
    for i in range(n):
        r = rows[i]
        f = flow[i]
        t = ts_col[r]
        t_min = min(t_min, t)
        t_max = max(t_max, t)
        floor = _floor(proto_col[r], dns[f], tcp_floor, udp_idle, icmp_idle, dns_ns)
        floor_min = min(floor_min, floor)
        if _pure_syn(proto_col[r], status_col[r] == _L4, flags_col[r]):
            syns[f] += 1
            if last[f] > 0 or syns[f] > 1:
                may_cut = True
        if last[f] > 0 and t - last[f] > floor:
            may_cut = True
        if close_ts[f] > 0 and t - close_ts[f] >= closed:
            may_cut = True
    if not may_cut and t_max - t_min < floor_min:
        return 0
    # each flow's walk: the first packet where it may have ended is its cut
    prev_t = last.copy()
    has_prev = last > 0
    first_ctl = np.zeros(nf, np.int64)
    has_ctl = np.zeros(nf, np.bool_)
    cut_at[:] = -1
    cuts = 0
    for i in range(n):
        f = flow[i]
        if cut_at[f] >= 0:
            continue
        r = rows[i]
        t = ts_col[r]
        p = proto_col[r]
        tcp = p == _TCP and status_col[r] == _L4
        if has_prev[f] and not checked[r]:
            limit = idle if p == _TCP else _floor(p, dns[f], 0, udp_idle, icmp_idle, dns_ns)
            past_close = (close_ts[f] > 0 and t - close_ts[f] >= closed) or (
                has_ctl[f] and t - first_ctl[f] >= closed
            )
            if (
                t - prev_t[f] > limit
                or past_close
                or _pure_syn(p, status_col[r] == _L4, flags_col[r])
            ):
                cut_at[f] = i
                cuts += 1
                continue
        prev_t[f] = t
        has_prev[f] = True
        if tcp and flags_col[r] & (_FIN | _RST) and not has_ctl[f]:
            has_ctl[f] = True
            first_ctl[f] = t
    return cuts


@njit
def _pure_syn(proto: int, l4: bool, flags: int) -> bool:
    return proto == _TCP and l4 and (flags & (_SYN | _ACK | _RST)) == _SYN


@njit
def _floor(  # noqa: PLR0917 - a compiled helper takes its values positionally
    proto: int, dns: bool, tcp_floor: int, udp_idle: int, icmp_idle: int, dns_ns: int
) -> int:
    """The shortest quiet time after which a flow may have ended: the close delay for TCP, the
    DNS session timer less its grace for UDP DNS flows, else inactivity."""
    if proto == _TCP:
        return tcp_floor
    if proto == _UDP:
        return dns_ns - _NS if dns else udp_idle
    return icmp_idle
