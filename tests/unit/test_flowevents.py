"""The flow table's events: attempts, handshakes, failures (REJ, half-open probe, S0) and ends."""

from __future__ import annotations

from analyzers import EventKind, FlowEvents, IdentityMap, PipelineOptions
from analyzers._pipeline import AnalysisPipeline
from tests.unit._noticekit import ACK, FIN, PSH, RST, SYN, frames_batch, tcp, udp

C, S = "10.0.0.1", "10.0.0.2"


class Events:
    """A FlowEventSink keeping (kind, port) of every event and the number of deliveries."""

    def __init__(self) -> None:
        self.seen: list[tuple[EventKind, int]] = []
        self.deliveries = 0

    def on_flow_events(self, events: FlowEvents) -> None:
        self.deliveries += 1
        for k, p in zip(events.kind.tolist(), events.resp_port.tolist(), strict=True):
            self.seen.append((EventKind(k), p))

    def kinds(self) -> list[EventKind]:
        return [k for k, _ in self.seen]


def _pipe() -> tuple[AnalysisPipeline, Events]:
    ev = Events()
    return AnalysisPipeline(IdentityMap(), (), options=PipelineOptions(), event_sinks=[ev]), ev


def test_a_connection_is_an_attempt_then_established_then_ended() -> None:
    """A full connection: ATTEMPT and ESTABLISHED in its batch, ENDED at flush, never FAILED."""
    p, ev = _pipe()
    frames = [
        tcp(C, S, 40000, 80, SYN, seq=1),
        tcp(S, C, 80, 40000, SYN | ACK, seq=9, ack=2),
        tcp(C, S, 40000, 80, ACK, seq=2, ack=10),
        tcp(C, S, 40000, 80, PSH | ACK, seq=2, ack=10, payload=b"GET /"),
        tcp(C, S, 40000, 80, FIN | ACK, seq=7, ack=10),
        tcp(S, C, 80, 40000, FIN | ACK, seq=10, ack=8),
    ]
    p.on_batch(frames_batch(frames, [0.001 * i for i in range(6)]))
    assert ev.kinds() == [EventKind.ATTEMPT, EventKind.ESTABLISHED]
    assert ev.deliveries == 1  # one event batch per frame batch
    p.flush()
    assert ev.kinds()[-1] is EventKind.ENDED
    assert (EventKind.ESTABLISHED, 80) in ev.seen


def test_a_refused_connection_fails_in_its_batch() -> None:
    """SYN answered by RST (Zeek's REJ) is a FAILED event at once, not after the close delay."""
    p, ev = _pipe()
    p.on_batch(frames_batch([tcp(C, S, 40001, 81, SYN), tcp(S, C, 81, 40001, RST | ACK)], [0, 0]))
    assert ev.seen == [(EventKind.ATTEMPT, 81), (EventKind.FAILED, 81)]


def test_a_half_open_probe_of_an_open_port_fails() -> None:
    """SYN, SYN-ACK, then the originator's RST without data (nmap -sS on an open port) fails."""
    p, ev = _pipe()
    frames = [
        tcp(C, S, 40002, 22, SYN, seq=1),
        tcp(S, C, 22, 40002, SYN | ACK, seq=5, ack=2),
        tcp(C, S, 40002, 22, RST, seq=2),
    ]
    p.on_batch(frames_batch(frames, [0, 0.001, 0.002]))
    assert ev.kinds() == [EventKind.ATTEMPT, EventKind.FAILED]


def test_an_unanswered_syn_fails_after_the_attempt_timeout_and_flow_goes_on() -> None:
    """S0: the FAILED event comes once packet time passes 5 s, long before the flow ends."""
    p, ev = _pipe()
    p.on_batch(frames_batch([tcp(C, S, 40003, 443, SYN)], [0]))
    p.on_batch(frames_batch([udp(C, "10.0.0.9", 5000, 53, b"q")], [3.0]))
    assert EventKind.FAILED not in ev.kinds()
    p.on_batch(frames_batch([udp(C, "10.0.0.9", 5000, 53, b"q")], [6.0]))
    assert ev.kinds().count(EventKind.FAILED) == 1
    assert EventKind.ENDED not in ev.kinds()
    p.on_batch(frames_batch([udp(C, "10.0.0.9", 5000, 53, b"q")], [12.0]))
    assert ev.kinds().count(EventKind.FAILED) == 1  # once per flow


def test_udp_flows_are_attempts_and_mid_stream_tcp_is_not() -> None:
    """A new UDP flow is an attempt; a TCP flow first seen mid-stream (no SYN) is not."""
    p, ev = _pipe()
    frames = [udp(C, S, 5000, 53, b"q"), tcp(C, S, 40004, 80, ACK, payload=b"x")]
    p.on_batch(frames_batch(frames, [0, 0]))
    assert ev.seen == [(EventKind.ATTEMPT, 53)]
