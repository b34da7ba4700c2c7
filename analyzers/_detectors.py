"""Notice detectors over flow events: port scans, address scans, SYN floods, new external peers.

``NoticeDetectors`` is a ``FlowEventSink``. Each detector keeps its state in a ``CappedDict`` of
``max_entries`` keys (a window start and at most threshold + 1 distinct targets each), so a flood
of spoofed sources costs evictions, never memory. A key's window opens at its first event and
closes ``window_s`` later (Zeek's SumStats epochs, per key); a notice fires the moment a count
crosses its threshold, and at most once per (note, source, target) per ``suppress_s``.

Scans count *failed* attempts only, as Zeek's scan policy does: an ordinary client's successful
connections to many ports or hosts are not evidence.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from analyzers._capped import CappedDict
from analyzers._flowevents import EventKind, FlowEvents
from analyzers._identity import EXTERNAL, Endpoint, EndpointKind
from analyzers._notice import (
    ADDRESS_SCAN,
    NEW_EXTERNAL_PEER,
    PORT_SCAN,
    SAMPLE_SIZE,
    SYN_FLOOD,
    Notice,
    NoticeOptions,
    NoticeSink,
    address_text,
)

log = logging.getLogger(__name__)

_NS = 1_000_000_000
_TCP = 6
_PROTO_NAMES = {6: "tcp", 17: "udp", 132: "sctp"}

Addr = tuple[int, int]
_K = TypeVar("_K", bound=Hashable)


@dataclass(slots=True)
class _Window:
    start_ns: int
    targets: dict[int | Addr, None] = field(default_factory=dict)  # insertion-ordered set
    fired: bool = False


@dataclass(slots=True)
class _Flood:
    start_ns: int
    half_open: int = 0
    sources: dict[Addr, None] = field(default_factory=dict)  # a sample, insertion-ordered


def _ep(x: object) -> Endpoint:
    return x if isinstance(x, Endpoint) else EXTERNAL


class NoticeDetectors:
    """Every enabled detector, fed by ``FlowEvents``; notices go to ``sinks``."""

    def __init__(
        self, options: NoticeOptions, sinks: Sequence[NoticeSink] = (), *, node: str = ""
    ) -> None:
        self.options = options
        self._sinks = list(sinks)
        self._node = node
        cap = options.max_entries
        self.port_scan: CappedDict[tuple[Addr, Addr], _Window] = CappedDict(cap)
        self.address_scan: CappedDict[tuple[Addr, int, int], _Window] = CappedDict(cap)
        self.syn_flood: CappedDict[Addr, _Flood] = CappedDict(cap)
        self.peers: CappedDict[tuple[Addr, Addr], int] = CappedDict(cap)
        self.suppressed: CappedDict[tuple[str, Addr, str], int] = CappedDict(cap)
        self._learn_until_ns: int | None = None
        self.raised = 0

    def entries(self) -> dict[str, int]:
        """Entries each table holds now (each bounded by ``max_entries``)."""
        return {
            "port_scan": len(self.port_scan),
            "address_scan": len(self.address_scan),
            "syn_flood": len(self.syn_flood),
            "new_external_peer": len(self.peers),
            "suppressed": len(self.suppressed),
        }

    def evicted(self) -> int:
        """Entries dropped to stay within the bound, every table together."""
        tables = (self.port_scan, self.address_scan, self.syn_flood, self.peers, self.suppressed)
        return sum(t.evicted for t in tables)

    # ------------------------------------------------------------------ FlowEventSink
    def on_flow_events(self, events: FlowEvents) -> None:
        notices: list[Notice] = []
        failed = events.of_kind(EventKind.FAILED)
        if failed.size:
            notices += self._scans(events, failed)
        tcp = events.proto == _TCP
        attempts = np.flatnonzero((events.kind == EventKind.ATTEMPT) & tcp)
        est = np.flatnonzero(events.kind == EventKind.ESTABLISHED)
        if attempts.size or est.size:
            notices += self._floods(events, attempts, est)
        if self.options.new_peers:
            notices += self._peers(events, events.of_kind(EventKind.ATTEMPT))
        if notices:
            self.raised += len(notices)
            for sink in self._sinks:
                sink.on_notices(notices)

    # ------------------------------------------------------------------ detectors
    def _scans(self, ev: FlowEvents, rows: np.ndarray) -> Iterable[Notice]:
        o = self.options
        cols = zip(
            ev.ts_ns[rows].tolist(),
            ev.orig_hi[rows].tolist(),
            ev.orig_lo[rows].tolist(),
            ev.resp_hi[rows].tolist(),
            ev.resp_lo[rows].tolist(),
            ev.resp_port[rows].tolist(),
            ev.proto[rows].tolist(),
            rows.tolist(),
            strict=True,
        )
        for ts, ohi, olo, rhi, rlo, port, proto, row in cols:
            src, dst = (ohi, olo), (rhi, rlo)
            w = self._window(self.port_scan, (src, dst), ts, o.port_scan_window_s)
            if self._add(w, port, o.port_scan_threshold):
                ports = sorted(int(p) for p in w.targets if isinstance(p, int))
                n = len(w.targets)
                yield from self._notice(
                    ts, PORT_SCAN, src, ev.orig_ep[row], address_text(*dst), n,
                    f"{address_text(*src)} failed to connect to {n} ports of "
                    f"{address_text(*dst)} in {o.port_scan_window_s:g} s",
                    tuple(str(p) for p in ports[:SAMPLE_SIZE]),
                )  # fmt: skip
            if port == 0:  # no service port (ICMP): no address scan
                continue
            w = self._window(self.address_scan, (src, port, proto), ts, o.address_scan_window_s)
            if self._add(w, dst, o.address_scan_threshold):
                n = len(w.targets)
                service = f"port {port}/{_PROTO_NAMES.get(proto, str(proto))}"
                sample = [address_text(*t) for t in w.targets if isinstance(t, tuple)]
                yield from self._notice(
                    ts, ADDRESS_SCAN, src, ev.orig_ep[row], service, n,
                    f"{address_text(*src)} failed to connect to {n} hosts on {service} in "
                    f"{o.address_scan_window_s:g} s",
                    tuple(sample[:SAMPLE_SIZE]),
                )  # fmt: skip

    def _window(self, table: CappedDict[_K, _Window], key: _K, ts: int, window_s: float) -> _Window:
        w = table.get(key)
        if w is None or ts - w.start_ns > window_s * _NS:
            w = _Window(ts)
            table.put(key, w)
        return w

    @staticmethod
    def _add(w: _Window, target: int | Addr, threshold: int) -> bool:
        """Count *target* in *w*; True the once its distinct targets pass *threshold*."""
        if w.fired:
            return False
        w.targets[target] = None
        if len(w.targets) > threshold:
            w.fired = True
            return True
        return False

    def _floods(self, ev: FlowEvents, attempts: np.ndarray, est: np.ndarray) -> Iterable[Notice]:
        o = self.options
        limit_ns = o.syn_flood_window_s * _NS
        # attempts count up, completed handshakes down, netted per destination over the batch:
        # a batch holding whole short connections (wrk) nets to zero however many it holds
        rows = np.concatenate([attempts, est])
        dst = np.stack([ev.resp_hi[rows], ev.resp_lo[rows]], axis=1)
        uniq, inverse = np.unique(dst, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        k = uniq.shape[0]
        n_att = np.bincount(inverse[: attempts.size], minlength=k)
        net = n_att - np.bincount(inverse[attempts.size :], minlength=k)
        # the attempts grouped by destination, in row order inside each group
        grouped = attempts[np.argsort(inverse[: attempts.size], kind="stable")]
        ends = np.cumsum(n_att)
        for i in range(k):
            key = (int(uniq[i, 0]), int(uniq[i, 1]))
            f = self.syn_flood.get(key)
            if n_att[i] == 0:
                if f is not None:
                    f.half_open = max(f.half_open + int(net[i]), 0)
                continue
            mine = grouped[ends[i] - n_att[i] : ends[i]]
            row = int(mine[-1])  # the latest attempt names the source
            ts = int(ev.ts_ns[row])
            if f is None or ts - f.start_ns > limit_ns:
                f = _Flood(ts)
                self.syn_flood.put(key, f)
            before = f.half_open
            f.half_open = max(before + int(net[i]), 0)
            for r in mine[: max(SAMPLE_SIZE - len(f.sources), 0)].tolist():
                f.sources[(int(ev.orig_hi[r]), int(ev.orig_lo[r]))] = None
            if before <= o.syn_flood_threshold < f.half_open:
                src = (int(ev.orig_hi[row]), int(ev.orig_lo[row]))
                yield from self._notice(
                    ts, SYN_FLOOD, src, ev.orig_ep[row], address_text(*key), f.half_open,
                    f"{f.half_open} half-open TCP connections to {address_text(*key)} in "
                    f"{o.syn_flood_window_s:g} s (latest from {address_text(*src)})",
                    tuple(address_text(*s) for s in f.sources),
                )  # fmt: skip

    def _peers(self, ev: FlowEvents, rows: np.ndarray) -> Iterable[Notice]:
        o = self.options
        for row in rows.tolist():
            src_ep, dst_ep = _ep(ev.orig_ep[row]), _ep(ev.resp_ep[row])
            if src_ep.kind is not EndpointKind.POD or dst_ep.kind is not EndpointKind.EXTERNAL:
                continue
            ts = int(ev.ts_ns[row])
            if self._learn_until_ns is None:
                self._learn_until_ns = ts + int(o.new_peers_learn_s * _NS)
            src = (int(ev.orig_hi[row]), int(ev.orig_lo[row]))
            dst = (int(ev.resp_hi[row]), int(ev.resp_lo[row]))
            known = self.peers.get((src, dst)) is not None
            self.peers.put((src, dst), ts)
            if known or ts < self._learn_until_ns:
                continue
            yield from self._notice(
                ts, NEW_EXTERNAL_PEER, src, src_ep, address_text(*dst), 1,
                f"{src_ep.label} talked to {address_text(*dst)}, not seen in the learning window",
                (address_text(*dst),),
            )  # fmt: skip

    def _notice(  # noqa: PLR0917 - a notice's fields
        self,
        ts: int,
        note: str,
        src: Addr,
        src_ep: object,
        target: str,
        count: int,
        msg: str,
        sample: tuple[str, ...],
    ) -> Iterable[Notice]:
        key = (note, src, target)
        until = self.suppressed.get(key)
        if until is not None and ts < until:
            return
        self.suppressed.put(key, ts + int(self.options.suppress_s * _NS))
        log.info("notice %s: %s", note, msg)
        yield Notice(ts / _NS, note, address_text(*src), _ep(src_ep), target, count, msg,
                     sample, self._node)  # fmt: skip
