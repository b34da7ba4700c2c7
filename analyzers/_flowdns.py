"""The flow table's DNS accounting: one parsed message at a time, for rows on port 53 only.

Only flows with a DNS payload get a ``DnsState`` (a side dict keyed by slot), so the columns stay
free of fields that nearly every flow would leave empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from analyzers._decoded import DecodedBatch
from analyzers._dns import parse_dns
from capture import FrameBatch

I64 = npt.NDArray[np.int64]
_DNS_PENDING_MAX = 64


@dataclass(slots=True)
class DnsState:
    """One flow's DNS so far: the first question, the last response code, query/response counts."""

    query: str | None = None
    qtype: int | None = None
    rcode: int | None = None
    latency_ns: int | None = None
    queries: int = 0
    responses: int = 0
    pending: dict[int, int] = field(default_factory=dict)


def dns_rows(  # noqa: PLR0917 - hot-path column helper
    states: dict[int, DnsState],
    batch: FrameBatch,
    dec: DecodedBatch,
    rsorted: I64,
    mask: npt.NDArray[np.bool_],
    slot_sorted: I64,
    ts_sorted: I64,
    tcp: npt.NDArray[np.bool_],
) -> int:
    """Parse the DNS payloads of the sorted rows *mask* selects into *states*; returns how many
    payloads did not parse."""
    unparsed = 0
    pos = np.flatnonzero(mask)
    pos = pos[np.argsort(rsorted[pos], kind="stable")]  # arrival order
    rws = rsorted[pos]
    ends = (batch.offsets[rws] + batch.caplens[rws]).tolist()
    offs = dec.l4_off[rws].tolist()
    lens = dec.l4_len[rws].tolist()
    data = batch.data
    for sl, off, ln, end, t, is_tcp in zip(
        slot_sorted[pos].tolist(),
        offs,
        lens,
        ends,
        ts_sorted[pos].tolist(),
        tcp[pos].tolist(),
        strict=True,
    ):
        stop = min(off + ln, end)
        # RFC 1035 §4.2.2 length prefix on TCP; assumes a message starts the segment
        start = off + 2 if is_tcp else off
        payload = data[start:stop].tobytes() if stop > start else b""
        msg = parse_dns(payload)
        if msg is None:
            unparsed += 1
            continue
        stt = states.get(sl)
        if stt is None:
            stt = states[sl] = DnsState()
        if not msg.is_response:
            stt.queries += 1
            if stt.query is None:
                stt.query, stt.qtype = msg.qname, msg.qtype
            if len(stt.pending) < _DNS_PENDING_MAX:
                stt.pending.setdefault(msg.txid, t)
        else:
            stt.responses += 1
            stt.rcode = msg.rcode
            if stt.query is None:
                stt.query, stt.qtype = msg.qname, msg.qtype
            sent = stt.pending.pop(msg.txid, None)
            if sent is not None and stt.latency_ns is None:
                stt.latency_ns = t - sent
    return unparsed
