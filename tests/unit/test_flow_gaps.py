"""Zeek's content gaps without reassembly: ``G``/``g`` history letters and ``missed_bytes``.

Hand-built segments (flowkit) on one client-to-server connection; the expected values are
Zeek's TCP_Reassembler rule: a stretch of sequence space neither seen nor filled is a gap when
the peer's ACK passes it, counted while both endpoints are established.
"""

from __future__ import annotations

import pytest

from tests.unit.flowkit import ACK, FIN, PSH, SYN, Pkt, run

C, S, CP, SP = "10.0.0.1", "10.0.0.2", 40000, 80
CI, SI = 1000, 5000


def _open() -> list[Pkt]:
    return [
        Pkt(C, S, CP, SP, flags=SYN, seq=CI, ts=0.0),
        Pkt(S, C, SP, CP, flags=SYN | ACK, seq=SI, ack=CI + 1, ts=0.01),
        Pkt(C, S, CP, SP, flags=ACK, seq=CI + 1, ack=SI + 1, ts=0.02),
    ]


def _data(seq: int, n: int, t: float) -> Pkt:
    """*n* bytes from the server at sequence *seq*."""
    return Pkt(S, C, SP, CP, flags=ACK | PSH, seq=seq, ack=CI + 1, plen=n, ts=t)


def _ack(upto: int, t: float) -> Pkt:
    return Pkt(C, S, CP, SP, flags=ACK, seq=CI + 1, ack=upto, ts=t)


def _close(t: float, server_end: int) -> list[Pkt]:
    return [
        Pkt(S, C, SP, CP, flags=FIN | ACK, seq=server_end, ack=CI + 1, ts=t),
        Pkt(C, S, CP, SP, flags=FIN | ACK, seq=CI + 1, ack=server_end + 1, ts=t + 0.01),
        Pkt(S, C, SP, CP, flags=ACK, seq=server_end + 1, ack=CI + 2, ts=t + 0.02),
    ]


def _one(pkts: list[Pkt], splits: list[int] | None = None) -> tuple[str, int]:
    (rec,) = run(pkts, splits=splits)
    return rec.history, rec.missed_bytes


def test_a_hole_acked_is_a_gap() -> None:
    """A segment past a 100-byte hole, then an ACK past both: one ``g``, 100 bytes missed."""
    d0 = SI + 1
    pkts = [
        *_open(),
        _data(d0, 100, 0.1),
        _data(d0 + 200, 100, 0.2),  # d0+100 .. d0+200 never seen
        _ack(d0 + 300, 0.3),
        *_close(0.4, d0 + 300),
    ]
    assert _one(pkts) == ("ShAdgfFa", 100)


def test_a_gap_in_the_originators_data_is_capital_g() -> None:
    """The originator's hole, acked by the responder, is ``G``."""
    c0 = CI + 1
    pkts = [
        *_open(),
        Pkt(C, S, CP, SP, flags=ACK | PSH, seq=c0, ack=SI + 1, plen=50, ts=0.1),
        Pkt(C, S, CP, SP, flags=ACK | PSH, seq=c0 + 80, ack=SI + 1, plen=50, ts=0.2),
        Pkt(S, C, SP, CP, flags=ACK, seq=SI + 1, ack=c0 + 130, ts=0.3),
    ]
    assert _one(pkts) == ("ShADaG", 30)


def test_a_hole_filled_before_any_ack_is_no_gap() -> None:
    """A retransmission that fills the hole before the ACK passes it leaves no gap."""
    d0 = SI + 1
    pkts = [
        *_open(),
        _data(d0, 100, 0.1),
        _data(d0 + 200, 100, 0.2),
        _data(d0 + 100, 100, 0.25),  # the missing segment, late
        _ack(d0 + 300, 0.3),
        *_close(0.4, d0 + 300),
    ]
    history, missed = _one(pkts)
    assert "g" not in history.lower()
    assert missed == 0


def test_an_ack_past_data_never_seen_is_a_gap() -> None:
    """Acknowledged bytes no segment was seen for are missed, even with no later segment."""
    d0 = SI + 1
    pkts = [*_open(), _data(d0, 100, 0.1), _ack(d0 + 1100, 0.2)]
    assert _one(pkts) == ("ShAdg", 1000)


def test_a_hole_not_yet_acked_is_not_counted() -> None:
    """Zeek reports a gap only when an ACK passes it: none at the flow's end."""
    d0 = SI + 1
    pkts = [*_open(), _data(d0, 100, 0.1), _data(d0 + 200, 100, 0.2), _ack(d0 + 100, 0.3)]
    assert _one(pkts) == ("ShAd", 0)


def test_ten_holes_repeat_the_letter() -> None:
    """Ten gaps give the letter twice (1 and 10, Zeek's log scale); bytes add up."""
    d0 = SI + 1
    pkts = [*_open()]
    t = 0.1
    for i in range(10):
        pkts.append(_data(d0 + i * 200 + 100, 100, t))  # each leaves 100 bytes before it
        pkts.append(_ack(d0 + i * 200 + 200, t + 0.01))
        t += 0.1
    history, missed = _one(pkts)
    assert history == "ShAdgg"
    assert missed == 1000


def test_no_gap_before_the_connection_is_established() -> None:
    """An ACK over a hole while the handshake is incomplete consumes it without counting."""
    d0 = SI + 1
    pkts = [
        Pkt(S, C, SP, CP, flags=SYN | ACK, seq=SI, ack=CI + 1, ts=0.0),
        _data(d0 + 100, 100, 0.1),
        Pkt(C, S, CP, SP, flags=ACK | FIN, seq=CI + 1, ack=d0 + 200, ts=0.2),
    ]
    (rec,) = run(pkts)
    assert rec.missed_bytes == 0
    assert "g" not in rec.history.lower()


@pytest.mark.parametrize("splits", [[1], [4], [5], [3, 4, 5, 6], list(range(1, 12))])
def test_gaps_do_not_depend_on_the_batch_size(splits: list[int]) -> None:
    """An ACK captured before the data it covers counts the same across any batch cut."""
    d0 = SI + 1
    pkts = [
        *_open(),
        _data(d0, 100, 0.1),
        _ack(d0 + 150, 0.2),  # before the data: d0+100..d0+150 were never seen when acked
        _data(d0 + 100, 100, 0.3),
        _data(d0 + 300, 100, 0.4),  # leaves d0+200..d0+300
        _ack(d0 + 400, 0.5),
        *_close(0.6, d0 + 400),
    ]
    assert _one(pkts) == _one(pkts, splits) == ("ShAdgfFa", 150)
