"""Notice detectors on the real decoder and flow table: scans, floods, new peers, and no noise."""

from __future__ import annotations

from collections.abc import Sequence

from analyzers import IdentityMap, Notice, NoticeDetectors, NoticeOptions
from tests.unit._noticekit import (
    ACK,
    FIN,
    PSH,
    RST,
    SYN,
    frames_batch,
    pipeline,
    pods,
    spoofed_syns,
    tcp,
    udp,
)

SCANNER, VICTIM, WEB = "10.16.0.10", "10.16.0.11", "10.16.0.12"


class Notices:
    """A NoticeSink keeping every notice."""

    def __init__(self) -> None:
        self.got: list[Notice] = []

    def on_notices(self, notices: Sequence[Notice]) -> None:
        self.got.extend(notices)

    def notes(self) -> list[str]:
        return [n.note for n in self.got]


def _setup(identity: IdentityMap | None = None, **opts: object) -> tuple[object, Notices]:
    sink = Notices()
    det = NoticeDetectors(NoticeOptions(**opts), [sink], node="node1")  # type: ignore[arg-type]
    ident = identity or pods({SCANNER: "attack/scanner", VICTIM: "prod/db", WEB: "prod/web"})
    return pipeline(ident, det), sink


def _conn(c: str, s: str, cp: int, sp: int) -> list[bytes]:
    """A short, complete connection with a request and a response (wrk-like)."""
    return [
        tcp(c, s, cp, sp, SYN, seq=1),
        tcp(s, c, sp, cp, SYN | ACK, seq=9, ack=2),
        tcp(c, s, cp, sp, ACK, seq=2, ack=10),
        tcp(c, s, cp, sp, PSH | ACK, seq=2, ack=10, payload=b"GET / HTTP/1.1\r\n\r\n"),
        tcp(s, c, sp, cp, PSH | ACK, seq=10, ack=20, payload=b"HTTP/1.1 200 OK\r\n\r\n"),
        tcp(c, s, cp, sp, FIN | ACK, seq=20, ack=29),
        tcp(s, c, sp, cp, FIN | ACK, seq=29, ack=21),
        tcp(c, s, cp, sp, ACK, seq=21, ack=30),
    ]


def test_refused_port_scan_raises_one_port_scan_for_the_scanning_pod() -> None:
    """16 refused ports of one host (more than Zeek's 15) raise port_scan once, with evidence."""
    p, sink = _setup()
    frames: list[bytes] = []
    for port in range(1, 101):
        frames += [
            tcp(SCANNER, VICTIM, 50000, port, SYN),
            tcp(VICTIM, SCANNER, port, 50000, RST | ACK),
        ]
    p.on_batch(frames_batch(frames, [i * 1e-4 for i in range(len(frames))]))
    assert sink.notes() == ["port_scan"]
    n = sink.got[0]
    assert (n.src, n.target, n.count) == (SCANNER, VICTIM, 16)
    assert n.src_endpoint.label == "attack/scanner"
    assert n.sample[:3] == ("1", "2", "3")
    assert '"note":"port_scan"' in n.to_json_line()


def test_fifteen_refused_ports_are_not_a_scan() -> None:
    """At Zeek's threshold (15 ports) nothing is raised: it takes more than 15."""
    p, sink = _setup()
    frames: list[bytes] = []
    for port in range(1, 16):
        frames += [
            tcp(SCANNER, VICTIM, 50000, port, SYN),
            tcp(VICTIM, SCANNER, port, 50000, RST | ACK),
        ]
    p.on_batch(frames_batch(frames, [0.0] * len(frames)))
    p.flush()
    assert sink.got == []


def test_unanswered_syn_scan_is_raised_within_seconds_not_at_the_idle_timeout() -> None:
    """SYNs nobody answers (S0) raise port_scan once 5 s of packet time pass, not after 300 s."""
    p, sink = _setup()
    p.on_batch(
        frames_batch([tcp(SCANNER, VICTIM, 50001, port, SYN) for port in range(1, 40)], [0.0] * 39)
    )
    assert sink.got == []
    p.on_batch(frames_batch([udp(WEB, VICTIM, 5000, 53, b"q")], [6.0]))
    assert sink.notes() == ["port_scan"]


def test_address_sweep_raises_address_scan() -> None:
    """26 refused hosts on one port (more than Zeek's 25) raise address_scan for the port."""
    p, sink = _setup()
    frames: list[bytes] = []
    for host in range(1, 41):
        dst = f"10.16.1.{host}"
        frames += [tcp(SCANNER, dst, 50002, 22, SYN), tcp(dst, SCANNER, 22, 50002, RST | ACK)]
    p.on_batch(frames_batch(frames, [i * 1e-3 for i in range(len(frames))]))
    assert sink.notes() == ["address_scan"]
    n = sink.got[0]
    assert (n.target, n.count, n.src_endpoint.label) == ("port 22/tcp", 26, "attack/scanner")
    assert n.sample[0] == "10.16.1.1"


def test_syn_flood_from_spoofed_sources_raises_syn_flood_for_the_victim() -> None:
    """More than 1000 half-open connections to one host in 10 s raise syn_flood once."""
    p, sink = _setup()
    p.on_batch(spoofed_syns(3000, VICTIM, 80, 0x0B000001, 0.0))
    assert sink.notes() == ["syn_flood"]
    assert sink.got[0].target == VICTIM
    assert sink.got[0].count > 1000


def test_many_complete_connections_in_one_batch_are_not_a_flood() -> None:
    """3000 whole connections to one server in a single batch net to zero half-open: no notice."""
    p, sink = _setup()
    frames = [f for i in range(3000) for f in _conn(WEB, VICTIM, 10000 + i, 80)]
    p.on_batch(frames_batch(frames, [i * 1e-6 for i in range(len(frames))]))
    p.flush()
    assert sink.got == []


def test_busy_ordinary_traffic_raises_nothing() -> None:
    """wrk-like short connections, DNS, periodic probes and a refused connection now and then: no
    notice."""
    p, sink = _setup()
    t = 0.0
    for round_ in range(30):  # 30 s of traffic, batches of a tenth of a second
        frames: list[bytes] = []
        for i in range(200):  # 2000 connections per second from the web pod to the db
            frames += _conn(WEB, VICTIM, 10000 + (round_ * 200 + i) % 50000, 5432)
        for i in range(20):  # DNS lookups, many answered NXDOMAIN
            frames += [udp(WEB, "10.96.0.10", 30000 + i, 53, b"q" * 30),
                       udp("10.96.0.10", WEB, 53, 30000 + i, b"r" * 30)]  # fmt: skip
        frames += _conn("10.16.0.1", WEB, 60000 + round_, 8080)  # kubelet probe
        if round_ % 10 == 0:  # a refused connection now and then
            frames += [tcp(WEB, VICTIM, 61000 + round_, 6379, SYN),
                       tcp(VICTIM, WEB, 6379, 61000 + round_, RST | ACK)]  # fmt: skip
        p.on_batch(frames_batch(frames, [t + i * 1e-5 for i in range(len(frames))]))
        t += 1.0
    p.flush()
    assert sink.got == []


def test_new_external_peer_is_off_by_default_and_learns_when_on() -> None:
    """Off by default; when on, the learning window's peers are known, a later new one is raised."""
    ext1, ext2 = "93.184.216.34", "203.0.113.7"
    for enabled in (False, True):
        p, sink = _setup(new_peers=enabled, new_peers_learn_s=60.0)
        p.on_batch(frames_batch([udp(WEB, ext1, 4000, 443, b"x")], [0.0]))
        p.on_batch(
            frames_batch(
                [udp(WEB, ext1, 4001, 443, b"x"), udp(WEB, ext2, 4002, 443, b"x")], [120.0, 120.0]
            )
        )
        if enabled:
            assert sink.notes() == ["new_external_peer"]
            assert (sink.got[0].target, sink.got[0].src_endpoint.label) == (ext2, "prod/web")
        else:
            assert sink.got == []


def test_a_million_spoofed_sources_stay_within_the_detector_bound() -> None:
    """A million spoofed SYN sources through the real decoder and flow table: every detector
    table stays at or below max_entries, the excess is counted as evictions."""
    bound = 5000
    det_sink = Notices()
    det = NoticeDetectors(NoticeOptions(max_entries=bound), [det_sink])
    p = pipeline(IdentityMap(), det, max_flows=200_000)
    per_batch = 100_000
    for b in range(10):
        p.on_batch(spoofed_syns(per_batch, VICTIM, 80, 0x0B000000 + b * per_batch, b * 1.0))
        assert max(det.entries().values()) <= bound
    p.on_batch(frames_batch([udp(WEB, VICTIM, 1, 53, b"q")], [20.0]))  # S0 failures fire
    assert max(det.entries().values()) <= bound
    assert det.evicted() > 0
    assert "syn_flood" in det_sink.notes()
