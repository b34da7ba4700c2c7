"""The flow table's DNS accounting: one parsed message at a time, for rows on port 53 only.

The payloads are scanned at once (``_dns.scan_messages``), then applied in arrival order.
Only flows with a DNS payload get a ``DnsState`` (a side dict keyed by slot), so the columns stay
free of fields that nearly every flow would leave empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from analyzers._decoded import DecodedBatch
from analyzers._dns import (
    FIELDS,
    NAME_LEN,
    NAME_WIDTH,
    OK,
    QTYPE,
    RCODE,
    RESPONSE,
    TXID,
    qname_of,
    scan_messages,
)
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
    pos = np.flatnonzero(mask)
    pos = pos[np.argsort(rsorted[pos], kind="stable")]  # arrival order
    rws = rsorted[pos]
    # RFC 1035 §4.2.2 length prefix on TCP; assumes a message starts the segment
    starts = dec.l4_off[rws].astype(np.int64) + np.where(tcp[pos], 2, 0)
    stops = np.minimum(
        dec.l4_off[rws].astype(np.int64) + dec.l4_len[rws],
        batch.offsets[rws].astype(np.int64) + batch.caplens[rws],
    )
    out = np.empty((pos.shape[0], FIELDS), np.int64)
    names = np.empty((pos.shape[0], NAME_WIDTH), np.uint8)
    scan_messages(batch.data, starts, stops, out, names)
    unparsed = 0
    for k, (sl, t, f) in enumerate(
        zip(slot_sorted[pos].tolist(), ts_sorted[pos].tolist(), out.tolist(), strict=True)
    ):
        if not f[OK]:
            unparsed += 1
            continue
        stt = states.get(sl)
        if stt is None:
            stt = states[sl] = DnsState()
        if stt.query is None:
            stt.query, stt.qtype = qname_of(names, k, f[NAME_LEN]), f[QTYPE]
        if not f[RESPONSE]:
            stt.queries += 1
            if len(stt.pending) < _DNS_PENDING_MAX:
                stt.pending.setdefault(f[TXID], t)
        else:
            stt.responses += 1
            stt.rcode = f[RCODE]
            sent = stt.pending.pop(f[TXID], None)
            if sent is not None and stt.latency_ns is None:
                stt.latency_ns = t - sent
    return unparsed
