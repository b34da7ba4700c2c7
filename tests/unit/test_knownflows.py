"""The known flows' per-packet path gives the general pass's records and events exactly.

Each case runs the same packets twice: once one packet per batch (every packet of a flow after
its first meets the flow in the table: the per-packet path's most) and once with that path
turned off, every row through the general pass. Records (uids included) and events must be the
same, and the per-packet path must have taken a good share of the rows.
"""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from analyzers import AnalysisPipeline, FlowTableOptions, IdentityMap, PipelineOptions, Status
from analyzers._decoded import DecodedBatch
from analyzers._flowevents import FlowEvents
from analyzers._flowtable import FlowTable
from analyzers._knownflows import KnownFlows
from analyzers._records import FlowRecord
from capture import CaptureError, FrameBatch, open_capture_file
from tests.unit.flowkit import ACK, FIN, PSH, SYN, Collector, Pkt, batch, handshake

I64 = npt.NDArray[np.int64]
C, S, D = "10.0.0.1", "10.0.0.2", "10.0.0.53"


class _Events:
    def __init__(self) -> None:
        self.rows: list[tuple[int, ...]] = []

    def on_flow_events(self, events: FlowEvents) -> None:
        for i in range(len(events.kind)):
            self.rows.append(
                (
                    int(events.kind[i]),
                    int(events.ts_ns[i]),
                    int(events.proto[i]),
                    int(events.orig_lo[i]),
                    int(events.resp_lo[i]),
                    int(events.resp_port[i]),
                )
            )


@contextmanager
def _counting(monkeypatch: pytest.MonkeyPatch, *, on: bool) -> Iterator[list[int]]:
    """The rows the per-packet path accounted, and the TCP ones among them (a two-element
    list), or the path turned off."""
    taken = [0, 0]
    real = KnownFlows.account

    def account(
        self: KnownFlows, fb: FrameBatch, dec: DecodedBatch, rows: I64, *, events: bool
    ) -> tuple[I64, int]:
        if not on:
            return rows, 0
        rest, known = real(self, fb, dec, rows, events=events)
        taken[0] += known
        done = np.setdiff1d(rows, rest)
        taken[1] += int(np.count_nonzero(dec.proto[done] == 6))
        return rest, known

    with monkeypatch.context() as m:
        m.setattr(KnownFlows, "account", account)
        yield taken


def _run(
    pkts: list[Pkt], sizes: list[int], *, events: bool = False, **options: float
) -> tuple[list[FlowRecord], list[tuple[int, ...]]]:
    """Feed *pkts* in batches of *sizes* (cycled), flush; the records by time, the events."""
    sink, ev = Collector(), _Events()
    ft = FlowTable(
        IdentityMap(),
        options=FlowTableOptions(**options),  # type: ignore[arg-type]
        on_ended=sink,
        uid_seed=b"test",
        on_events=[ev] if events else [],
    )
    i = 0
    while i < len(pkts):
        size = sizes[i % len(sizes)]
        ft.process(*batch(pkts[i : i + size]))
        i += size
    ft.flush()
    return sorted(sink.records, key=lambda r: (r.ts, r.uid)), ev.rows


def _same_both_ways(
    monkeypatch: pytest.MonkeyPatch, pkts: list[Pkt], *, events: bool = False, **options: float
) -> int:
    """Assert the path on and off give the same, one packet a batch and in batches of 2 to 9
    (where a flow's earlier row in the batch may have gone to the general pass); return the
    rows the path took one packet a batch."""
    taken_first = -1
    for sizes in ([1], random.Random(len(pkts)).choices(range(2, 10), k=len(pkts))):
        with _counting(monkeypatch, on=False):
            want, want_ev = _run(pkts, sizes, events=events, **options)
        with _counting(monkeypatch, on=True) as taken:
            got, got_ev = _run(pkts, sizes, events=events, **options)
        assert [r.as_conn_log() for r in got] == [r.as_conn_log() for r in want]
        assert got_ev == want_ev
        taken_first = taken[0] if taken_first < 0 else taken_first
    # and one batch of everything (the path sees no known flow there) agrees too, but for
    # uids: a flow that ends inside a batch is numbered again after the batch's new flows
    whole, _ = _run(pkts, [len(pkts)], events=events, **options)
    assert sorted(map(_no_uid, whole)) == sorted(map(_no_uid, want))
    return taken_first


def _bulk(cp: int, t: float, *, damage: bool) -> list[Pkt]:
    """A long TCP connection: handshake, 40 data segments each way with their ACKs, then FIN
    both ways. With *damage*: a retransmission, a segment lost (a hole), an ACK of data never
    seen, a zero window, a segment out of order."""
    ci, si = 1000, 9000
    out = [
        Pkt(C, S, cp, 80, flags=SYN, seq=ci, ts=t),
        Pkt(S, C, 80, cp, flags=SYN | ACK, seq=si, ack=ci + 1, ts=t + 0.001),
        Pkt(C, S, cp, 80, flags=ACK, seq=ci + 1, ack=si + 1, ts=t + 0.002),
    ]
    c_seq, s_seq, now = ci + 1, si + 1, t + 0.003
    for k in range(40):
        now += 0.001
        out.append(Pkt(C, S, cp, 80, flags=PSH | ACK, seq=c_seq, ack=s_seq, plen=100, ts=now))
        c_seq += 100
        out.append(Pkt(S, C, 80, cp, flags=ACK, seq=s_seq, ack=c_seq, ts=now + 0.0002))
        out.append(
            Pkt(S, C, 80, cp, flags=PSH | ACK, seq=s_seq, ack=c_seq, plen=50, ts=now + 0.0004)
        )
        s_seq += 50
        out.append(Pkt(C, S, cp, 80, flags=ACK, seq=c_seq, ack=s_seq, ts=now + 0.0006))
        if damage and k == 10:  # the last data segment again
            out.append(
                Pkt(
                    C,
                    S,
                    cp,
                    80,
                    flags=PSH | ACK,
                    seq=c_seq - 100,
                    ack=s_seq,
                    plen=100,
                    ts=now + 0.0007,
                )
            )
        if damage and k == 20:  # a segment never seen: the next one starts past the end
            c_seq += 100
        if damage and k == 25:  # an ACK of data the server never sent
            out.append(Pkt(C, S, cp, 80, flags=ACK, seq=c_seq, ack=s_seq + 500, ts=now + 0.0008))
        if damage and k == 5:  # a zero window
            out.append(Pkt(S, C, 80, cp, flags=ACK, seq=s_seq, ack=c_seq, win=0, ts=now + 0.0008))
    if damage:  # two of the segments swapped
        out[-4], out[-3] = out[-3], out[-4]
    now += 0.01
    out += [
        Pkt(C, S, cp, 80, flags=FIN | ACK, seq=c_seq, ack=s_seq, ts=now),
        Pkt(S, C, 80, cp, flags=FIN | ACK, seq=s_seq, ack=c_seq + 1, ts=now + 0.001),
        Pkt(C, S, cp, 80, flags=ACK, seq=c_seq + 1, ack=s_seq + 1, ts=now + 0.002),
    ]
    return out


def _no_uid(r: FlowRecord) -> str:
    return str({k: v for k, v in r.as_conn_log().items() if k != "uid"})


def _mixed(rng: random.Random) -> list[Pkt]:
    """UDP both ways (some idling out and coming back, some out of time order), ICMP echoes,
    IPv6, VLAN, a non-transport IP protocol, DNS, TCP: the per-packet path and the rows it
    must leave to the general pass, interleaved."""
    pkts: list[Pkt] = []
    for f in range(8):
        cp = 40000 + f
        t = f * 0.01
        for k in range(12):
            fwd = k % 3 != 2
            src, dst, sp, dp = (C, S, cp, 9000) if fwd else (S, C, 9000, cp)
            pkts.append(Pkt(src, dst, sp, dp, proto=17, plen=10 + k, ts=t + k * 0.5))
        # quiet past the UDP timeout (60 s) for half of them, then back: a new flow
        back = t + (90.0 if f % 2 else 30.0)
        pkts += [Pkt(C, S, cp, 9000, proto=17, plen=7, ts=back + k * 0.1) for k in range(4)]
    for k in range(10):
        pkts.append(Pkt(C, "10.0.0.9", 8, 0, proto=1, plen=56, ts=k * 0.2))
        pkts.append(Pkt("10.0.0.9", C, 0, 0, proto=1, plen=56, ts=k * 0.2 + 0.01))
        pkts.append(Pkt("fd00::1", "fd00::2", 5000, 443, proto=17, plen=9, ts=k * 0.3))
        pkts.append(Pkt(C, S, 6000, 6001, proto=17, plen=5, vlan=7, ts=k * 0.3 + 0.001))
        pkts.append(Pkt(C, S, proto=47, plen=40, status=Status.L3, ts=k * 0.4))
        pkts.append(Pkt(C, D, 33000 + k % 2, 53, proto=17, plen=30, ts=k * 0.25))
    pkts += handshake(cp=41000, t=0.5) + handshake(cp=41001, t=200.0)
    pkts += _bulk(42000, 0.05, damage=False) + _bulk(42001, 0.07, damage=True)
    pkts.sort(key=lambda p: p.ts)
    # a few packets a little out of time order (a mirror's copies from two CPUs)
    for _ in range(6):
        i = rng.randrange(1, len(pkts))
        pkts[i - 1], pkts[i] = pkts[i], pkts[i - 1]
    return pkts


@pytest.mark.parametrize("seed", range(4))
def test_mixed_traffic_same_records_with_and_without_the_path(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    pkts = _mixed(random.Random(seed))
    with _counting(monkeypatch, on=True) as counted:
        _run(pkts, [1])
    taken = _same_both_ways(monkeypatch, pkts)
    # the UDP, ICMP, GRE packets after their flow's first and the two long connections' steady
    # segments (most of their 330): well over half the ~580 rows
    assert taken > len(pkts) // 2
    assert counted[1] > 200


def test_events_are_the_same_with_and_without_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """ATTEMPT events of UDP and ICMP flows (pending until the general pass reports them) and
    the TCP ones come out alike."""
    pkts = _mixed(random.Random(9))
    taken = _same_both_ways(monkeypatch, pkts, events=True)
    assert taken > len(pkts) // 3


def test_a_counter_passing_32_bits_is_widened_by_the_general_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Jumbo wire lengths take a direction's byte count past 2**32: the path leaves that packet
    to the general pass, which widens the column, and counts the rest itself."""
    pkts = [Pkt(C, S, 5000, 6000, proto=17, plen=10, wire=1_500_000_000, ts=k) for k in range(6)]
    taken = _same_both_ways(monkeypatch, pkts)
    assert taken >= 3
    got, _ = _run(pkts, [1])
    assert got[0].orig_l2_bytes == 6 * 1_500_000_000


def test_a_full_table_sends_every_row_to_the_general_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With fewer free slots than rows a batch may evict: its flows' rows all go through the
    general pass, which keeps the batch's own flows (same records as without the path)."""
    pkts = [
        Pkt(C, S, 7000 + i % 12, 9000, proto=17, plen=1, ts=i * 1e-3, flags=ACK) for i in range(60)
    ]
    with _counting(monkeypatch, on=True) as taken:
        sink = Collector()
        ft = FlowTable(IdentityMap(), options=FlowTableOptions(max_flows=16), on_ended=sink)
        for a in range(0, 60, 10):
            ft.process(*batch(pkts[a : a + 10]))
        ft.flush()
    assert taken[0] == 0  # 10 rows a batch, at most 16 - 12 slots free after the first
    assert sum(r.orig_pkts for r in sink.records) == 60
    _same_both_ways(monkeypatch, pkts, max_flows=16)


CORPORA = [
    Path(__file__).resolve().parents[3] / "shared" / "corpus" / name
    for name in ("tcpdump-tests", "zeek-dev/traces")
]
FILES = sorted(p for root in CORPORA if root.is_dir() for p in root.iterdir() if p.is_file())
_GROUPS = 8  # the corpus in groups, spread over the test workers


def _corpus_records(path: Path, tmp: Path) -> list[dict[str, object]]:
    """*path*'s records through a pipeline fed 5-frame batches: flows span many batches, so
    most packets meet their flow in the table."""
    if path.suffix == ".gz":
        plain = tmp / path.stem
        plain.write_bytes(gzip.decompress(path.read_bytes()))
        path = plain
    sink = Collector()
    pipeline = AnalysisPipeline(
        IdentityMap(), [sink], options=PipelineOptions(max_flows=4096), uid_seed=b"c"
    )
    try:
        with open_capture_file(path, batch_size=5) as source:
            for b in source.batches():
                pipeline.on_batch(b)
    except CaptureError:
        pass  # a damaged capture: the records of what came before the damage
    pipeline.flush()
    return [r.as_conn_log() for r in sink.records]


@pytest.mark.parametrize("group", range(_GROUPS))
def test_every_corpus_capture_in_small_batches_same_with_and_without_the_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, group: int
) -> None:
    """tcpdump's and zeek-dev's captures (TCP connections whole and damaged, retransmissions,
    holes, zero windows, resets, tunnels, DNS), each in 5-frame batches: the records with the
    per-packet path are the general pass's alone."""
    files = FILES[group::_GROUPS]
    assert len(files) > 100
    taken_rows = taken_tcp = 0
    for path in files:
        with _counting(monkeypatch, on=False):
            want = _corpus_records(path, tmp_path)
        with _counting(monkeypatch, on=True) as taken:
            got = _corpus_records(path, tmp_path)
        assert got == want, path.name
        taken_rows += taken[0]
        taken_tcp += taken[1]
    # the path did take rows, TCP segments among them: this compares something
    assert taken_rows > 100
    assert taken_tcp > 10
