"""Flow events: what the flow table tells detectors as connection state changes, a batch at a time.

Detectors cannot wait for flows to end: an unanswered SYN (Zeek's S0) ends only at the TCP idle
timeout, five minutes later. So the flow table emits an event when a flow's state changes inside
a batch, and one ``FlowEvents`` per batch (or per expiry sweep) goes to every ``FlowEventSink``:

- ``ATTEMPT``: a new flow — a TCP flow whose first packet is a SYN without ACK, or a new UDP,
  ICMP or other IP flow.
- ``ESTABLISHED``: a TCP handshake completed (SYN, SYN-ACK and the originator's ACK seen).
- ``FAILED``: a TCP attempt that did not become a connection, as Zeek's scan policy counts them
  (``is_failed_conn``): a RST answering the SYN (REJ), the originator's RST after the SYN-ACK with
  no data either way (a half-open scan's probe of an open port), or no answer at all for
  ``attempt_timeout_s`` (Zeek's ``tcp_attempt_delay``, 5 s: S0 counts then, not at its end).
- ``ENDED``: a flow's record was delivered; ``records`` holds them in row order.

Columns, not per-event objects, so a compiled hot path can fill the same arrays later. Each flow
yields each kind at most once per incarnation; a flow may yield several kinds in one batch. A
batch is in time order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol

import numpy as np
import numpy.typing as npt

from analyzers._records import FlowRecord

U64 = npt.NDArray[np.uint64]


class EventKind(IntEnum):
    ATTEMPT = 1
    ESTABLISHED = 2
    FAILED = 3
    ENDED = 4


@dataclass(frozen=True, slots=True)
class FlowEvents:
    """One batch of events, a row each. Addresses are the decoder's 128-bit keys (IPv4 mapped
    into ``::ffff:0:0/96``) split in ``hi``/``lo`` words; ``orig``/``resp`` are Zeek's roles;
    ``orig_ep``/``resp_ep`` hold ``analyzers.Endpoint`` objects (pod identity at flow start)."""

    kind: npt.NDArray[np.uint8]
    ts_ns: npt.NDArray[np.int64]  # when the state changed (packet time)
    proto: npt.NDArray[np.uint8]  # IP protocol number
    orig_hi: U64
    orig_lo: U64
    resp_hi: U64
    resp_lo: U64
    resp_port: npt.NDArray[np.uint16]  # 0 for protocols without ports
    orig_ep: npt.NDArray[np.object_]
    resp_ep: npt.NDArray[np.object_]
    records: Sequence[FlowRecord] = field(default=())  # one per ENDED row, in row order

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    @classmethod
    def empty(cls) -> FlowEvents:
        z64 = np.zeros(0, np.uint64)
        return cls(
            kind=np.zeros(0, np.uint8),
            ts_ns=np.zeros(0, np.int64),
            proto=np.zeros(0, np.uint8),
            orig_hi=z64,
            orig_lo=z64,
            resp_hi=z64,
            resp_lo=z64,
            resp_port=np.zeros(0, np.uint16),
            orig_ep=np.empty(0, dtype=object),
            resp_ep=np.empty(0, dtype=object),
        )

    @classmethod
    def concat(cls, parts: Sequence[FlowEvents]) -> FlowEvents:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        return cls(
            kind=np.concatenate([p.kind for p in parts]),
            ts_ns=np.concatenate([p.ts_ns for p in parts]),
            proto=np.concatenate([p.proto for p in parts]),
            orig_hi=np.concatenate([p.orig_hi for p in parts]),
            orig_lo=np.concatenate([p.orig_lo for p in parts]),
            resp_hi=np.concatenate([p.resp_hi for p in parts]),
            resp_lo=np.concatenate([p.resp_lo for p in parts]),
            resp_port=np.concatenate([p.resp_port for p in parts]),
            orig_ep=np.concatenate([p.orig_ep for p in parts]),
            resp_ep=np.concatenate([p.resp_ep for p in parts]),
            records=[r for p in parts for r in p.records],
        )

    def sorted_by_time(self) -> FlowEvents:
        """The same events in time order (stable: a flow's kinds keep their order at one time)."""
        order = np.argsort(self.ts_ns, kind="stable")
        ended = np.flatnonzero(self.kind == EventKind.ENDED)
        record_of = dict(zip(ended.tolist(), self.records, strict=True))
        return FlowEvents(
            kind=self.kind[order],
            ts_ns=self.ts_ns[order],
            proto=self.proto[order],
            orig_hi=self.orig_hi[order],
            orig_lo=self.orig_lo[order],
            resp_hi=self.resp_hi[order],
            resp_lo=self.resp_lo[order],
            resp_port=self.resp_port[order],
            orig_ep=self.orig_ep[order],
            resp_ep=self.resp_ep[order],
            records=[record_of[i] for i in order.tolist() if i in record_of],
        )

    def of_kind(self, kind: EventKind) -> npt.NDArray[np.intp]:
        """Row indices of one kind."""
        return np.flatnonzero(self.kind == kind)


class FlowEventSink(Protocol):
    """Receives the flow table's events, one batch per processed batch or expiry sweep."""

    def on_flow_events(self, events: FlowEvents) -> None: ...
