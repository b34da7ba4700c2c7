"""The exporter's snapshot of in-flight flows: their counters and TCP/DNS health, copied.

A metrics scrape reads this while the capture thread writes the table: only contiguous prefixes
of the columns are copied under the writer's lock (memcpy speed), the rest happens after.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from analyzers._flowcolumns import FlowColumns

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class ActiveFlows:
    """A copy of the in-flight flows' counters (what a metrics scrape reads); index i = one flow."""

    proto: npt.NDArray[np.uint8]
    orig_pkts: I64
    resp_pkts: I64
    orig_l2_bytes: I64
    resp_l2_bytes: I64
    orig_ip_bytes: I64
    resp_ip_bytes: I64
    first_ts_ns: I64
    last_ts_ns: I64
    orig: npt.NDArray[np.object_]  # Endpoint per flow
    resp: npt.NDArray[np.object_]
    # TCP and DNS health so far, the same counts the flow's record will carry (0 for other
    # protocols); -1 where a value is not known yet.
    retrans_orig: I64
    retrans_resp: I64
    rst_orig: I64
    rst_resp: I64
    zero_win_orig: I64
    zero_win_resp: I64
    handshake_rtt_ns: I64  # SYN to the originator's first ACK; -1 until the handshake completed
    dns_queries: I64
    dns_responses: I64
    dns_rcode: I64  # of the last response; -1 without one
    dns_latency_ns: I64  # first response matched by transaction id; -1 without one

    def __len__(self) -> int:
        return int(self.proto.shape[0])

    @classmethod
    def empty(cls) -> ActiveFlows:
        """No flows: what a reader shows before any table reported."""
        none = np.zeros(0, np.int64)
        columns: dict[str, npt.NDArray[Any]] = {f.name: none for f in fields(cls)}
        columns.update(
            proto=np.zeros(0, np.uint8), orig=np.empty(0, object), resp=np.empty(0, object)
        )
        return cls(**columns)

    @classmethod
    def concat(cls, parts: Sequence[ActiveFlows]) -> ActiveFlows:
        """The flows of several tables as one (``--workers N``): every column concatenated.

        Each flow lives in exactly one worker's table (the fanout hashes both directions of a
        flow to the same worker), so concatenating never counts a flow twice.
        """
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        return cls(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)}
        )


def active_flows(c: FlowColumns, lock: threading.Lock) -> ActiveFlows:
    """Copy the counters of every in-flight flow; *lock* is the one the table's writer holds.

    Under the lock only contiguous prefixes are copied (memcpy speed, so the hot path waits
    for milliseconds even at a million flows); picking the active rows happens after.
    """
    with lock:
        hwm = c.hwm
        active = c.active[:hwm].copy()
        proto = c.proto[:hwm].copy()
        pkts = c.pkts[:hwm].astype(np.int64)  # 32-bit in the table
        l2 = c.l2[:hwm].astype(np.int64)  # 32-bit in the table
        ipb = c.ipb[:hwm].astype(np.int64)
        first = c.first[:hwm].copy()
        last = c.last[:hwm].copy()
        ep = c.ep[:hwm].copy()
        retx_raw = c.retx[:hwm].copy()
        rst_raw = c.rst_count[:hwm].copy()
        zero_win_raw = c.zero_win[:hwm].copy()
        syn_ts = c.syn_ts[:hwm].copy()
        synack_ts = c.synack_ts[:hwm].copy()
        ack_ts = c.ack_ts[:hwm].copy()
        dns = list(c.dns.items()) if c.dns else []
    s = np.flatnonzero(active)
    retx = retx_raw[s].astype(np.int64)
    rst_count = rst_raw[s].astype(np.int64)
    zero_win = zero_win_raw[s].astype(np.int64)
    syn, synack, ack = syn_ts[s], synack_ts[s], ack_ts[s]
    dns_cols = np.zeros((hwm, 4), np.int64)
    dns_cols[:, 2:] = -1
    for slot, d in dns:  # only flows on port 53 have DNS state: few
        dns_cols[slot] = (
            d.queries,
            d.responses,
            -1 if d.rcode is None else d.rcode,
            -1 if d.latency_ns is None else d.latency_ns,
        )
    dns_cols = dns_cols[s]
    return ActiveFlows(
        proto=proto[s],
        orig_pkts=pkts[s, 0],
        resp_pkts=pkts[s, 1],
        orig_l2_bytes=l2[s, 0],
        resp_l2_bytes=l2[s, 1],
        orig_ip_bytes=ipb[s, 0],
        resp_ip_bytes=ipb[s, 1],
        first_ts_ns=first[s],
        last_ts_ns=last[s],
        orig=ep[s, 0],
        resp=ep[s, 1],
        retrans_orig=retx[:, 0],
        retrans_resp=retx[:, 1],
        rst_orig=rst_count[:, 0],
        rst_resp=rst_count[:, 1],
        zero_win_orig=zero_win[:, 0],
        zero_win_resp=zero_win[:, 1],
        handshake_rtt_ns=np.where((syn > 0) & (synack > 0) & (ack > 0), ack - syn, -1),
        dns_queries=dns_cols[:, 0],
        dns_responses=dns_cols[:, 1],
        dns_rcode=dns_cols[:, 2],
        dns_latency_ns=dns_cols[:, 3],
    )
