"""A pass's rows grouped by flow and direction, compiled: a hash table on the full key, no sort.

Each row, in arrival order, finds its flow in a table local to the pass, keyed by the flow's full
canonical key (the hash only picks the bucket), so two flows are never merged whatever their
hashes; flows are numbered in order of their first packet. A counting sort then lays the rows
out by (flow, direction), each group in arrival order: the order the flow table's per-group sums,
TCP and DNS accounting read them in. A flow whose 63-bit hash another flow of the pass already
has (the flow table's index holds one flow per hash) is marked to wait for the next pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analyzers._flowkey import FlowKeys, canonical
from capture import njit

__all__ = ["Groups", "group"]

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
B = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Groups:
    """A pass's rows by flow and direction (or, with ``wait``, the rows that must wait)."""

    wait: npt.NDArray[np.bool_] | None  # per row: its flow waits for the next pass (None: none)
    flow: I64  # per row (arrival order): its flow
    first: I64  # per flow: its first row
    perm: I64  # per sorted position: the row (index in the pass's rows)
    flow_of: I64  # per sorted position: its flow
    breaks: npt.NDArray[np.uint8]  # per sorted position: 1 a group starts, 3 a flow too
    keys: U64  # per flow: its canonical key (a_hi, a_lo, b_hi, b_lo, ports, meta)


def group(keys: FlowKeys) -> Groups:
    """Group the rows of *keys* (``group_rows``)."""
    n = keys.hash63.shape[0]
    flow = np.empty(n, np.int64)
    first = np.empty(n, np.int64)
    wait = np.empty(n, np.bool_)
    perm = np.empty(n, np.int64)
    flow_of = np.empty(n, np.int64)
    breaks = np.zeros(n, np.uint8)
    known = np.empty((n, 6), np.uint64)
    nf = group_rows(
        keys.hash63,
        keys.src_is_a,
        keys.src_hi,
        keys.src_lo,
        keys.dst_hi,
        keys.dst_lo,
        keys.sport,
        keys.dport,
        keys.icmp,
        keys.meta,
        flow,
        first,
        wait,
        perm,
        flow_of,
        breaks,
        known,
    )
    if nf < 0:
        return Groups(wait, flow, first, perm, flow_of, breaks, known)
    return Groups(None, flow, first[:nf], perm, flow_of, breaks, known[:nf])


@njit
def group_rows(  # noqa: PLR0917 - a compiled kernel takes its columns positionally
    hash63: U64,
    src_is_a: B,
    src_hi: U64,
    src_lo: U64,
    dst_hi: U64,
    dst_lo: U64,
    sport: U64,
    dport: U64,
    icmp: B,
    meta: U64,
    flow: I64,
    first: I64,
    later: B,
    perm: I64,
    flow_of: I64,
    breaks: npt.NDArray[np.uint8],
    known: U64,
) -> int:
    """Group the rows; return how many flows (negative: that many rows wait for the next pass).

    Per row (arrival order) *flow* gets its flow and *later* whether it waits; per flow *first*
    gets its first row and *known* its canonical key. Per sorted position *perm* gets the row,
    *flow_of* its flow and *breaks* 1 where a (flow, direction) group starts, 3 where a flow
    starts too.
    """
    n = hash63.shape[0]
    # the table grows with the flows, not the rows: a batch has a few thousand flows, and a
    # table that fits the cache is what makes a row's lookup cheap
    table = np.zeros((1024, 2), np.uint64)  # (hash, flow + 1) per bucket: one cache line
    clashed = np.zeros(n, np.bool_)  # per flow
    done = nf = 0
    while done < n:
        # the rows go through a loop that takes the table as an argument, handing back when the
        # table must grow: a table replaced inside the row loop would be counted up and down
        # (atomically) on every row
        done, nf = _number_flows(
            done, nf, table, known, clashed,
            (hash63, src_is_a, src_hi, src_lo, dst_hi, dst_lo, sport, dport, icmp, meta),
            flow, first,
        )  # fmt: skip
        if 2 * nf > table.shape[0]:
            table = _grown(table)
    waiting = 0
    for i in range(n):
        later[i] = clashed[flow[i]]
        waiting += later[i]
    if waiting:
        return -waiting
    # counting sort by (flow, direction), arrival order inside each group
    start = np.zeros(2 * nf + 1, np.int64)
    for i in range(n):
        start[2 * flow[i] + int(src_is_a[i]) + 1] += 1
    for j in range(2 * nf):
        start[j + 1] += start[j]
    for j in range(2 * nf):
        if start[j + 1] > start[j]:
            breaks[start[j]] = 1
    for f in range(nf):
        breaks[start[2 * f]] = 3
    for i in range(n):
        j = 2 * flow[i] + int(src_is_a[i])
        perm[start[j]] = i
        flow_of[start[j]] = flow[i]
        start[j] += 1
    return nf


@njit
def _number_flows(  # noqa: PLR0917 - a compiled kernel takes its columns positionally
    start: int,
    nf: int,
    table: U64,
    known: U64,
    clashed: B,
    rows: tuple[U64, B, U64, U64, U64, U64, U64, U64, B, U64],
    flow: I64,
    first: I64,
) -> tuple[int, int]:
    """Give rows from *start* on their flow, numbering new flows from *nf* on, until the table
    is half full; return (rows done, flows). *rows* are ``group_rows``'s key columns, in its
    order."""
    hash63, src_is_a, src_hi, src_lo, dst_hi, dst_lo, sport, dport, icmp, meta = rows
    n = hash63.shape[0]
    mask = np.uint64(table.shape[0] - 1)
    for i in range(start, n):
        # the row's canonical key (plain locals: a helper taking the columns would cost each
        # row a reference count up and down per column)
        k0, k1, k2, k3, k4 = canonical(
            src_hi[i], src_lo[i], dst_hi[i], dst_lo[i], sport[i], dport[i], icmp[i], src_is_a[i]
        )
        k5 = meta[i]
        h = hash63[i]
        pos = (h >> np.uint64(1)) & mask
        f = -1
        clash = False
        while table[pos, 1]:
            if table[pos, 0] == h:
                g = int(table[pos, 1]) - 1
                if (
                    known[g, 0] == k0
                    and known[g, 1] == k1
                    and known[g, 2] == k2
                    and known[g, 3] == k3
                    and known[g, 4] == k4
                    and known[g, 5] == k5
                ):
                    f = g
                    break
                clash = True
            pos = (pos + np.uint64(1)) & mask
        flow[i] = nf if f < 0 else f
        if f < 0:
            first[nf] = i
            table[pos, 0] = h
            table[pos, 1] = nf + 1
            known[nf, 0] = k0
            known[nf, 1] = k1
            known[nf, 2] = k2
            known[nf, 3] = k3
            known[nf, 4] = k4
            known[nf, 5] = k5
            clashed[nf] = clash
            nf += 1
            if 2 * nf > table.shape[0]:
                return i + 1, nf
    return n, nf


@njit
def _grown(table: U64) -> U64:
    """The table at twice the size, every entry placed again."""
    size = 2 * table.shape[0]
    mask = np.uint64(size - 1)
    out = np.zeros((size, 2), np.uint64)
    for j in range(table.shape[0]):
        if table[j, 1]:
            pos = (table[j, 0] >> np.uint64(1)) & mask
            while out[pos, 1]:
                pos = (pos + np.uint64(1)) & mask
            out[pos, 0] = table[j, 0]
            out[pos, 1] = table[j, 1]
    return out
