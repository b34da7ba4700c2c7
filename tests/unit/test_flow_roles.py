"""Who originates a connection whose first packet is not a client's SYN (Zeek's flip rule).

Zeek flips a new connection's roles when its first packet comes from a likely server port and
goes to a port that is not one (TCP: only when that packet is not a pure SYN), never towards the
IPv4 broadcast address; a flipped connection's history starts with ``^``. The zeek-dev traces
show each case: DHCP offers, Teredo bubbles, HTTP FINs and RSTs whose connection began unseen.
"""

from __future__ import annotations

import dataclasses

from tests.unit.flowkit import ACK, FIN, RST, SYN, Pkt, run

C, S = "10.0.0.1", "10.0.0.2"


def test_udp_reply_from_a_server_port_seen_first_is_flipped() -> None:
    """A DHCP server's reply (67 -> 68) seen alone: the client originates, SHR ^d, 0/1 packets."""
    (r,) = run([Pkt(S, C, 67, 68, proto=17, plen=300)])
    assert (r.orig_h, r.orig_p, r.resp_h, r.resp_p) == (C, 68, S, 67)
    assert (r.conn_state, r.history, r.orig_pkts, r.resp_pkts) == ("SHR", "^d", 0, 1)


def test_flipped_udp_history_lists_the_responder_first() -> None:
    """A reply from 3544 then the client's datagram: history ^dD, both sides counted, SF."""
    (r,) = run(
        [
            Pkt(S, C, 3544, 40000, proto=17, plen=40),
            Pkt(C, S, 40000, 3544, proto=17, plen=20, ts=0.1),
        ]
    )
    assert (r.orig_p, r.resp_p, r.conn_state, r.history) == (40000, 3544, "SF", "^dD")
    assert (r.orig_bytes, r.resp_bytes) == (20, 40)


def test_udp_between_two_server_ports_or_from_a_client_port_is_not_flipped() -> None:
    """67 -> 53 (both likely servers) and 40000 -> 53 keep the sender as originator."""
    recs = run(
        [
            Pkt(S, C, 67, 53, proto=17, plen=10),
            Pkt(C, S, 40000, 53, proto=17, plen=10, ts=0.1),
        ]
    )
    assert [(r.orig_h, r.orig_p, r.history) for r in recs] == [(S, 67, "D"), (C, 40000, "D")]


def test_udp_to_the_broadcast_address_is_not_flipped() -> None:
    """A server-port datagram to 255.255.255.255 keeps its sender as originator (S0 D)."""
    (r,) = run([Pkt(S, "255.255.255.255", 67, 40000, proto=17, plen=300)])
    assert (r.orig_h, r.orig_p, r.conn_state, r.history) == (S, 67, "S0", "D")


def test_tcp_fin_from_a_server_port_seen_first_is_flipped() -> None:
    """The server's FIN then the client's ACK of a connection begun unseen: SHR ^fA, 1/1."""
    (r,) = run(
        [
            Pkt(S, C, 80, 40000, flags=FIN | ACK, seq=500, ack=900),
            Pkt(C, S, 40000, 80, flags=ACK, seq=900, ack=501, ts=0.001),
        ]
    )
    assert (r.orig_h, r.orig_p, r.resp_p) == (C, 40000, 80)
    assert (r.conn_state, r.history, r.orig_pkts, r.resp_pkts) == ("SHR", "^fA", 1, 1)


def test_tcp_rst_from_a_server_port_seen_first_is_rstrh() -> None:
    """A lone RST from port 80: the client originates, the server reset it: RSTRH ^r."""
    (r,) = run([Pkt(S, C, 80, 40000, flags=RST | ACK, seq=1, ack=1)])
    assert (r.orig_p, r.resp_p, r.conn_state, r.history) == (40000, 80, "RSTRH", "^r")


def test_tcp_pure_syn_from_a_server_port_is_never_flipped() -> None:
    """A SYN from port 80 to 40000 opens a connection from port 80 (S0 S)."""
    (r,) = run([Pkt(S, C, 80, 40000, flags=SYN, seq=7)])
    assert (r.orig_h, r.orig_p, r.conn_state, r.history) == (S, 80, "S0", "S")


def test_tcp_synack_from_a_client_port_is_not_flipped() -> None:
    """A SYN-ACK from 40000 to 80 (a stealth-scan answer) keeps its sender as originator: H."""
    (r,) = run([Pkt(C, S, 40000, 80, flags=SYN | ACK, seq=7, ack=1)])
    assert (r.orig_p, r.resp_p, r.history) == (40000, 80, "H")


def test_tcp_between_two_server_ports_flips_towards_the_higher_port() -> None:
    """Data from 22 to 80 (no SYN): the lower port is the server, so 80 originates (^…)."""
    (r,) = run([Pkt(S, C, 22, 80, flags=ACK, seq=1, ack=1, plen=10)])
    assert (r.orig_p, r.resp_p, r.history) == (80, 22, "^d")
    (r,) = run([Pkt(S, C, 80, 22, flags=ACK, seq=1, ack=1, plen=10)])
    assert (r.orig_p, r.resp_p, r.history) == (80, 22, "D")


def test_tcp_close_delay_counts_from_the_packet_that_completed_the_close() -> None:
    """A FIN with the peer unseen completes the close: a packet 7 s later starts a new flow,
    though the peer's ACK came in between (Zeek: SHR ^fA, then SH Fa)."""
    pkts = [
        Pkt(S, C, 80, 40000, flags=FIN | ACK, seq=500, ack=900),
        Pkt(C, S, 40000, 80, flags=ACK, seq=900, ack=501, ts=3.0),
        Pkt(C, S, 40000, 80, flags=FIN | ACK, seq=900, ack=501, ts=7.0),
        Pkt(S, C, 80, 40000, flags=ACK, seq=501, ack=901, ts=7.1),
    ]
    for splits in ([], [1], [2], [3]):
        recs = run(pkts, splits=splits)
        assert [(r.conn_state, r.history, r.orig_pkts, r.resp_pkts) for r in recs] == [
            ("SHR", "^fA", 1, 1),
            ("SH", "Fa", 1, 1),
        ], splits


def test_half_closed_connection_lives_on_while_the_peer_talks() -> None:
    """A FIN while the peer is established does not start the close delay: data 30 s later
    still belongs to the connection."""
    pkts = [
        Pkt(C, S, 40000, 80, flags=SYN, seq=1000),
        Pkt(S, C, 80, 40000, flags=SYN | ACK, seq=5000, ack=1001, ts=0.01),
        Pkt(C, S, 40000, 80, flags=ACK, seq=1001, ack=5001, ts=0.02),
        Pkt(C, S, 40000, 80, flags=FIN | ACK, seq=1001, ack=5001, ts=0.03),
        Pkt(S, C, 80, 40000, flags=ACK, seq=5001, ack=1002, plen=100, ts=30.0),
    ]
    (r,) = run(pkts)
    assert (r.orig_pkts, r.resp_pkts, r.history) == (3, 2, "ShAFd")


def test_udp_dns_flow_ends_at_the_session_timer_after_a_quiet_spell() -> None:
    """Zeek's DNS session timer (10 s, from the flow's start) ends a UDP DNS flow quiet for 9 s:
    queries 16 s apart on one socket are two connections; 8 s apart, one."""
    q = [(0.0, 33), (0.1, 321), (0.11, 33), (0.2, 117), (16.0, 35), (16.2, 35)]
    pkts = [
        Pkt(C, S, 1920, 53, proto=17, plen=n, ts=t)
        if i % 2 == 0
        else Pkt(S, C, 53, 1920, proto=17, plen=n, ts=t)
        for i, (t, n) in enumerate(q)
    ]
    for splits in ([], [4], [5]):
        recs = run(pkts, splits=splits)
        assert [(r.orig_pkts, r.resp_pkts, r.orig_bytes) for r in recs] == [
            (2, 2, 66),
            (1, 1, 35),
        ], splits
    close = [dataclasses.replace(p, ts=p.ts - 8.0) if p.ts > 1 else p for p in pkts]
    assert [(r.orig_pkts, r.resp_pkts) for r in run(close)] == [(3, 3)]


def test_udp_flow_off_the_dns_ports_keeps_the_udp_inactivity_timeout() -> None:
    """The same exchange on port 5000 is one flow: only DNS flows have the session timer."""
    pkts = [
        Pkt(C, S, 1920, 5000, proto=17, plen=10),
        Pkt(C, S, 1920, 5000, proto=17, plen=10, ts=16.0),
    ]
    assert [r.orig_pkts for r in run(pkts)] == [2]
