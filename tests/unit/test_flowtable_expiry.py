"""Flow table, issue 10: 64-bit sequence space, timeouts inside a batch, Zeek's reopen rule."""

from __future__ import annotations

import pytest

from tests.unit.flowkit import ACK, FIN, PSH, RST, SYN, Pkt, run

C, S = "10.0.0.1", "10.0.0.2"
_GIB = 1 << 30


def _big_transfer() -> list[Pkt]:
    """5 GiB + 1000 bytes from the responder, seen as one segment per GiB (a sampled trace)."""
    ci, si = 1000, 0xFFFF0000  # the responder wraps right away
    pkts = [
        Pkt(C, S, 40000, 20, flags=SYN, seq=ci, ts=0.0),
        Pkt(S, C, 20, 40000, flags=SYN | ACK, seq=si, ack=ci + 1, ts=0.01),
        Pkt(C, S, 40000, 20, flags=ACK, seq=ci + 1, ack=si + 1, ts=0.02),
    ]
    for k in range(6):
        seq = si + 1 + k * _GIB
        pkts.append(Pkt(S, C, 20, 40000, flags=ACK | PSH, seq=seq, ack=ci + 1, plen=1000, ts=1 + k))
    end = si + 1 + 5 * _GIB + 1000
    pkts += [
        Pkt(S, C, 20, 40000, flags=FIN | ACK, seq=end, ack=ci + 1, ts=7.0),
        Pkt(C, S, 40000, 20, flags=FIN | ACK, seq=ci + 1, ack=end + 1, ts=7.1),
        Pkt(S, C, 20, 40000, flags=ACK, seq=end + 1, ack=ci + 2, ts=7.2),
    ]
    return pkts


@pytest.mark.parametrize("per_packet", [False, True])
def test_bytes_count_in_64_bits_across_sequence_wraps(per_packet: bool) -> None:
    """A transfer past several 4 GiB wraps reports every byte and no retransmission letter."""
    pkts = _big_transfer()
    (r,) = run(pkts, splits=list(range(1, len(pkts))) if per_packet else None)
    assert r.resp_bytes == 5 * _GIB + 1000
    assert (r.conn_state, r.history, r.tcp_retrans_resp) == ("SF", "ShAdfFa", 0)


def _rejected_attempts(gap_s: float) -> list[Pkt]:
    """Three connection attempts from the same port, each refused with RST-ACK."""
    pkts = []
    for k in range(3):
        t, isn = k * gap_s, 1000 + k * 77777
        pkts += [
            Pkt(C, S, 40000, 81, flags=SYN, seq=isn, ts=t),
            Pkt(S, C, 81, 40000, flags=RST | ACK, seq=0, ack=isn + 1, ts=t + 0.001),
        ]
    return pkts


@pytest.mark.xfail(strict=True, reason="issue 10 item 3: reopen rule not implemented yet")
def test_syn_after_a_rejected_attempt_is_a_new_connection() -> None:
    """Three SYN/RST attempts on one 5-tuple, 1 s apart in one batch, are three REJ Sr records."""
    recs = run(_rejected_attempts(1.0))
    assert [(r.conn_state, r.history, r.orig_pkts, r.resp_pkts) for r in recs] == [
        ("REJ", "Sr", 1, 1)
    ] * 3
    assert len({r.uid for r in recs}) == 3
