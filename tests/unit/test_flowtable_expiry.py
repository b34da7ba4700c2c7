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
    """A transfer past several 4 GiB wraps reports every byte and no retransmission letter.

    The bytes between the sampled segments are missed once the client's FIN-ACK passes them:
    one ``g`` after its ``F``, as Zeek processes a packet's ACK after its flags.
    """
    pkts = _big_transfer()
    (r,) = run(pkts, splits=list(range(1, len(pkts))) if per_packet else None)
    assert r.resp_bytes == 5 * _GIB + 1000
    assert (r.conn_state, r.history, r.tcp_retrans_resp) == ("SF", "ShAdfFga", 0)
    assert r.missed_bytes == 5 * _GIB + 1000 - 6 * 1000


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


def test_syn_after_a_rejected_attempt_is_a_new_connection() -> None:
    """Three SYN/RST attempts on one 5-tuple, 1 s apart in one batch, are three REJ Sr records."""
    recs = run(_rejected_attempts(1.0))
    assert [(r.conn_state, r.history, r.orig_pkts, r.resp_pkts) for r in recs] == [
        ("REJ", "Sr", 1, 1)
    ] * 3
    assert len({r.uid for r in recs}) == 3


def test_reset_connection_reused_later_in_the_same_batch_is_two_flows() -> None:
    """A reset connection reused 15 s later, in one batch, ends as RSTO; the reuse is a new flow."""
    first = [
        Pkt(C, S, 40000, 80, flags=SYN, seq=100, ts=0.0),
        Pkt(S, C, 80, 40000, flags=SYN | ACK, seq=900, ack=101, ts=0.01),
        Pkt(C, S, 40000, 80, flags=RST, seq=101, ts=0.02),
    ]
    later = Pkt(C, S, 40000, 80, flags=ACK | PSH, seq=5000, ack=7000, plen=10, ts=15.0)
    recs = run([*first, later])
    assert [(r.conn_state, r.history, r.end_reason) for r in recs] == [
        ("RSTO", "ShR", "idle"),
        ("OTH", "D", "flush"),
    ]


def _frames() -> tuple[list[bytes], list[int]]:
    """Real frames: reused ports, pauses past every timeout, normal connections in between."""
    from scapy.layers.inet import IP, TCP, UDP  # noqa: PLC0415 - test-only dependency
    from scapy.layers.l2 import Ether  # noqa: PLC0415

    def tcp(  # noqa: PLR0917 - one frame per line in the list below
        src: str, dst: str, sp: int, dp: int, flags: str, seq: int, ack: int = 0
    ) -> bytes:
        pkt = (
            Ether() / IP(src=src, dst=dst) / TCP(sport=sp, dport=dp, flags=flags, seq=seq, ack=ack)
        )
        return bytes(pkt)

    out: list[tuple[float, bytes]] = []
    for k in range(3):  # refused attempts from one port
        out += [
            (k * 1.0, tcp(C, S, 40000, 81, "S", 1000 + k)),
            (k + 0.001, tcp(S, C, 81, 40000, "RA", 0, 1001 + k)),
        ]
    for k in range(40):  # short connections, 0.5 s apart
        t, p = 3.0 + k * 0.5, 41000 + k
        out += [
            (t, tcp(C, S, p, 80, "S", 10)),
            (t + 0.01, tcp(S, C, 80, p, "SA", 20, 11)),
            (t + 0.02, tcp(C, S, p, 80, "A", 11, 21)),
            (t + 0.03, tcp(C, S, p, 80, "FA", 11, 21)),
            (t + 0.04, tcp(S, C, 80, p, "FA", 21, 12)),
            (t + 0.05, tcp(C, S, p, 80, "A", 12, 22)),
        ]
    out += [(2.0, tcp(C, S, 42000, 80, "R", 5)), (30.0, tcp(C, S, 42000, 80, "A", 6, 9))]
    udp = bytes(Ether() / IP(src=C, dst=S) / UDP(sport=5000, dport=9999) / b"x")
    out += [(float(t), udp) for t in (0, 10, 75, 80, 150)]  # pauses past the 60 s UDP timeout
    out.sort(key=lambda x: x[0])
    return [f for _, f in out], [1_700_000_000_000_000_000 + round(t * 1e9) for t, _ in out]


def _pipeline_records(size: int) -> list[dict[str, object]]:
    from analyzers import AnalysisPipeline, IdentityMap  # noqa: PLC0415
    from capture._batch import FrameBatch  # noqa: PLC0415

    class Keep:
        def __init__(self) -> None:
            self.records: list[object] = []

        def on_flows_ended(self, records: list[object]) -> None:
            self.records.extend(records)

    frames, ts = _frames()
    sink = Keep()
    pipe = AnalysisPipeline(IdentityMap(), [sink], uid_seed=b"x")  # type: ignore[list-item]
    for a in range(0, len(frames), size):
        pipe.on_batch(FrameBatch.from_frames(frames[a : a + size], ts[a : a + size]))
    pipe.flush()
    logs = [{k: v for k, v in r.as_conn_log().items() if k != "uid"} for r in sink.records]  # type: ignore[attr-defined]
    return sorted(logs, key=lambda d: (d["ts"], d["id.orig_p"], d["id.resp_p"]))


def test_records_do_not_depend_on_batch_size() -> None:
    """The same frames in batches of 1, 7, 4096 and 65536 give the same records (uids aside)."""
    ref = _pipeline_records(1)
    assert sum(1 for r in ref if r["history"] == "Sr") == 3
    for size in (7, 4096, 65536):
        assert _pipeline_records(size) == ref
