"""Flow table: Zeek conn_state/history, TCP health, timeouts, eviction, identity, batching."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import numpy.typing as npt
import pytest

import analyzers._flowtable as ft_module
import analyzers._slotmap as slotmap_module
from analyzers import DecodedBatch, Endpoint, EndpointKind, IdentityMap, Status
from analyzers._flowkey import FlowKeys, flow_keys
from analyzers._records import FlowRecord
from tests.unit.flowkit import (
    ACK,
    FIN,
    PSH,
    RST,
    SYN,
    T0,
    Pkt,
    batch,
    handshake,
    pod_identity,
    run,
    table,
)

C, S = "10.0.0.1", "10.0.0.2"


def _one(pkts: list[Pkt], identity: IdentityMap | None = None) -> FlowRecord:
    recs = run(pkts, identity=identity)
    assert len(recs) == 1
    return recs[0]


def test_normal_connection_is_sf_with_zeek_history() -> None:
    """3WHS, data both ways, FIN both ways and the last ACK give SF and ShADadFf."""
    r = _one(handshake())
    assert (r.conn_state, r.history) == ("SF", "ShADadFf")
    assert (r.orig_h, r.orig_p, r.resp_h, r.resp_p, r.proto) == (C, 40000, S, 80, "tcp")
    assert (r.orig_pkts, r.resp_pkts, r.orig_bytes, r.resp_bytes) == (6, 4, 100, 100)
    assert r.orig_ip_bytes == 6 * 40 + 100
    assert r.resp_l2_bytes == 4 * 54 + 100


def test_rejected_connection_is_rej() -> None:
    """A SYN answered by RST-ACK is REJ with history Sr."""
    r = _one(
        [
            Pkt(C, S, 40000, 81, flags=SYN, seq=1),
            Pkt(S, C, 81, 40000, flags=RST | ACK, seq=0, ack=2, ts=0.001),
        ]
    )
    assert (r.conn_state, r.history, r.tcp_rst, r.tcp_rst_resp) == ("REJ", "Sr", 1, 1)


def test_lone_syn_is_s0() -> None:
    """An unanswered SYN is S0 with history S."""
    r = _one([Pkt(C, S, 40000, 80, flags=SYN, seq=1)])
    assert (r.conn_state, r.history) == ("S0", "S")


def test_originator_abort_is_rsto() -> None:
    """An established connection the originator resets is RSTO."""
    pkts = [*handshake()[:6], Pkt(C, S, 40000, 80, flags=RST | ACK, seq=1101, ts=0.1)]
    r = _one(pkts)
    assert (r.conn_state, r.history) == ("RSTO", "ShADadR")
    assert (r.tcp_rst_orig, r.tcp_rst_resp) == (1, 0)


def test_responder_abort_is_rstr() -> None:
    """An established connection the responder resets is RSTR."""
    pkts = [*handshake()[:6], Pkt(S, C, 80, 40000, flags=RST | ACK, seq=5101, ts=0.1)]
    r = _one(pkts)
    assert (r.conn_state, r.history) == ("RSTR", "ShADadr")


def test_syn_then_fin_is_sh() -> None:
    """A SYN followed by a FIN from the originator, no answer, is SH."""
    r = _one(
        [
            Pkt(C, S, 40000, 80, flags=SYN, seq=1),
            Pkt(C, S, 40000, 80, flags=FIN | ACK, seq=2, ts=0.5),
        ]
    )
    assert (r.conn_state, r.history) == ("SH", "SF")


def test_midstream_pickup_is_oth() -> None:
    """Data picked up mid-stream with no SYN is OTH, history Dd, payload sums as bytes."""
    r = _one(
        [
            Pkt(C, S, 40000, 80, flags=ACK | PSH, seq=77, plen=10),
            Pkt(S, C, 80, 40000, flags=ACK | PSH, seq=99, plen=20, ts=0.01),
            Pkt(C, S, 40000, 80, flags=ACK | PSH, seq=87, plen=10, ts=0.02),
        ]
    )
    assert (r.conn_state, r.history) == ("OTH", "Dd")
    assert (r.orig_bytes, r.resp_bytes) == (20, 20)


def test_established_open_flow_is_s1_at_flush() -> None:
    """A connection still open at flush is S1 and ends with reason flush."""
    r = _one(handshake()[:6])
    assert (r.conn_state, r.history, r.end_reason) == ("S1", "ShADad", "flush")


def test_synack_first_from_a_server_port_flips_originator() -> None:
    """A SYN-ACK seen first from a likely server port (80) flips the roles (history ^h…)."""
    r = _one(handshake()[1:])
    assert (r.orig_h, r.orig_p, r.resp_p) == (C, 40000, 80)
    assert r.history.startswith("^h")
    assert r.conn_state == "SF"
    assert r.tcp_rtt_client is None
    assert r.tcp_rtt_server == pytest.approx(0.002)


def test_handshake_rtt_client_and_server_side() -> None:
    """RTT client side is SYN→SYN-ACK, server side SYN-ACK→ACK, in seconds."""
    r = _one(handshake())
    assert r.tcp_rtt_client == pytest.approx(0.010)
    assert r.tcp_rtt_server == pytest.approx(0.002)


def test_duplicate_segment_counts_one_retransmission() -> None:
    """A data segment seen twice is one retransmission (and a T in history); bytes count once."""
    pkts = handshake()
    dup = pkts[3]
    pkts = [*pkts[:4], Pkt(**{**dup.__dict__, "ts": 0.025}), *pkts[4:]]
    r = _one(pkts)
    assert (r.tcp_retrans_orig, r.tcp_retrans_resp) == (1, 0)
    assert r.history == "ShADTadFf"
    assert r.orig_bytes == 100  # sequence-based: the retransmission is not payload twice


def test_keepalive_probe_counts_as_retransmission_like_zeek() -> None:
    """A 1-byte keep-alive at snd_nxt-1 is a retransmission for Zeek; an empty one is not."""
    base = handshake()[:7]
    probe_1 = Pkt(C, S, 40000, 80, flags=ACK, seq=1100, ack=5101, plen=1, ts=1.0)
    probe_0 = Pkt(C, S, 40000, 80, flags=ACK, seq=1100, ack=5101, plen=0, ts=2.0)
    r = _one([*base, probe_0])
    assert r.tcp_retrans_orig == 0
    r = _one([*base, probe_1])
    assert r.tcp_retrans_orig == 1


def test_retransmission_letters_repeat_on_log_scale() -> None:
    """T appears at the 1st, 10th and 100th retransmission, like Zeek's scaled history."""
    pkts = handshake()[:4]
    dup = pkts[3]
    pkts += [Pkt(**{**dup.__dict__, "ts": 0.1 + i * 0.001}) for i in range(100)]
    r = _one(pkts)
    assert r.tcp_retrans_orig == 100
    assert r.history == "ShADTTT"


def test_zero_window_counted_per_direction() -> None:
    """A window-0 segment (not RST) counts as a zero window for its sender (W/w in history)."""
    pkts = handshake()
    zw = Pkt(S, C, 80, 40000, flags=ACK, seq=5101, ack=1101, win=0, ts=0.045)
    r = _one([*pkts[:6], zw, *pkts[6:]])
    assert (r.tcp_zero_win_orig, r.tcp_zero_win_resp) == (0, 1)
    assert "w" in r.history


def test_rst_with_zero_window_is_not_a_zero_window() -> None:
    """Zeek ignores the window of RST segments."""
    r = _one(
        [
            Pkt(C, S, 40000, 81, flags=SYN, seq=1),
            Pkt(S, C, 81, 40000, flags=RST | ACK, ack=2, win=0, ts=0.001),
        ]
    )
    assert r.tcp_zero_win_resp == 0


def test_idle_timeout_ends_flow_with_reason_idle() -> None:
    """A UDP flow silent past the UDP idle timeout ends as idle; an active one stays."""
    ft, sink = table(udp_idle_timeout_s=60)
    ft.process(*batch([Pkt(C, S, 5000, 9999, proto=17, plen=10, ts=0.0)]))
    ft.process(*batch([Pkt(C, "10.0.0.3", 5000, 9999, proto=17, plen=10, ts=50.0)]))
    assert ft.expire(T0 + 61 * 10**9) == 1
    assert [(r.resp_h, r.end_reason, r.conn_state) for r in sink.records] == [(S, "idle", "S0")]
    assert len(ft) == 1


def test_closed_tcp_flow_ends_after_short_linger() -> None:
    """A TCP connection closed by FINs ends 5 s after its last packet, not 120 s."""
    ft, sink = table()
    ft.process(*batch(handshake()))
    assert ft.expire(T0 + 4 * 10**9) == 0
    assert ft.expire(T0 + 6 * 10**9) == 1
    assert sink.records[0].conn_state == "SF"


def test_active_timeout_slices_a_long_flow_into_records() -> None:
    """A flow longer than the active timeout gives an 'active' record and continues as a new one."""
    ft, sink = table(active_timeout_s=10, udp_idle_timeout_s=60)
    ft.process(*batch([Pkt(C, S, 5000, 53, proto=17, plen=10, ts=float(t)) for t in range(5)]))
    assert ft.expire(T0 + 11 * 10**9) == 1
    ft.process(*batch([Pkt(C, S, 5000, 53, proto=17, plen=10, ts=12.0)]))
    ft.flush()
    first, second = sink.records
    assert (first.end_reason, first.orig_pkts) == ("active", 5)
    assert (second.end_reason, second.orig_pkts, second.ts) == ("flush", 1, T0 / 1e9 + 12)
    assert first.uid != second.uid


def test_max_flows_evicts_oldest_idle_and_counts() -> None:
    """Over max_flows the least recently seen flows are evicted, reported and counted."""
    ft, sink = table(max_flows=100)
    pkts = [Pkt(C, S, 1000 + i, 53, proto=17, plen=1, ts=i * 0.01) for i in range(150)]
    for i in range(0, 150, 10):
        ft.process(*batch(pkts[i : i + 10]))
    c = ft.counters()
    assert c.flows_evicted >= 50
    assert c.flows_evicted == c.flows_ended["evicted"] == len(sink.records)
    assert min(r.orig_p for r in sink.records) == 1000
    assert all(r.end_reason == "evicted" for r in sink.records)
    assert c.flows_active + c.flows_evicted == 150


def test_identity_columns_from_identity_map() -> None:
    """Both sides carry pod/node identity from the IdentityMap, unknown ones are external."""
    r = _one(handshake(), identity=pod_identity())
    assert (r.orig_kind, r.orig_namespace, r.orig_pod, r.orig_node) == (
        "pod",
        "default",
        "client",
        "node-a",
    )
    assert (r.resp_kind, r.resp_namespace, r.resp_pod) == ("pod", "web", "server")
    r = _one(handshake(c="172.18.0.2", s="8.8.8.8"), identity=pod_identity())
    assert (r.orig_kind, r.orig_node, r.resp_kind, r.resp_pod) == ("node", "node-a", "external", "")


def test_external_identity_is_looked_up_again_at_record_time() -> None:
    """A pod that appears after its flow started is named in the record."""
    ident = IdentityMap()
    ft, sink = table(identity=ident)
    ft.process(*batch(handshake()[:3]))
    ident.replace("late", [(S, Endpoint(EndpointKind.POD, "ns", "late-pod", "n"))])
    ft.flush()
    assert (sink.records[0].resp_kind, sink.records[0].resp_pod) == ("pod", "late-pod")


def test_ipv6_and_vlan_flows_are_separate() -> None:
    """The same 5-tuple on another VLAN is another flow; IPv6 addresses print as IPv6."""
    recs = run(
        [
            Pkt(C, S, 1, 2, proto=17, plen=5),
            Pkt(C, S, 1, 2, proto=17, plen=5, vlan=7),
            Pkt(S, C, 2, 1, proto=17, plen=5, vlan=7, ts=0.1),
            Pkt("fd00::1", "fd00::2", 1, 2, proto=17, plen=5),
            Pkt(C, S, 1, 2, proto=17, plen=5, vni=42),
        ]
    )
    assert len(recs) == 4
    by = {(r.vlan, r.tunnel_vni, r.ip_version): r for r in recs}
    assert by[(7, 0, 4)].conn_state == "SF"
    assert by[(0, 0, 4)].conn_state == "S0"
    assert by[(0, 0, 6)].orig_h == "fd00::1"
    assert by[(0, 42, 4)].orig_pkts == 1


def test_icmp_echo_request_and_reply_share_a_flow() -> None:
    """Echo request and reply are one flow: orig_p is the type (8), resp_p the code, proto icmp."""
    r = _one(
        [
            Pkt(C, S, 8, 0, proto=1, plen=56),
            Pkt(S, C, 0, 0, proto=1, plen=56, ts=0.001),
        ]
    )
    assert (r.proto, r.orig_p, r.resp_p, r.orig_pkts, r.resp_pkts) == ("icmp", 8, 0, 1, 1)
    assert r.conn_state == "OTH"


def test_non_ip_and_keep_mask_are_respected() -> None:
    """Non-IP rows are counted, not flowed; rows the deduplicator drops are not counted."""
    ft, _ = table()
    pkts = [Pkt(C, S, 1, 2, proto=17, plen=5), Pkt(C, S, 1, 2, proto=17, plen=5)]
    pkts.append(Pkt(C, S, status=Status.NON_IP))
    ft.process(*batch(pkts), keep=np.array([True, False, True]))
    c = ft.counters()
    assert (c.packets_counted, c.packets_not_ip, c.flows_active) == (1, 1, 1)


def _mixed_traffic(rng: random.Random) -> list[Pkt]:
    pkts: list[Pkt] = []
    for i in range(12):
        conn = handshake(cp=41000 + i, t=i * 0.003)
        if i % 3 == 0:
            conn.insert(4, Pkt(**{**conn[3].__dict__, "ts": conn[3].ts + 0.001}))
        if i % 4 == 1:
            conn.insert(
                6, Pkt(S, C, 80, 41000 + i, flags=ACK, seq=5101, win=0, ts=conn[5].ts + 1e-4)
            )
        pkts += conn
    pkts += [
        Pkt(C, S, 7000 + i % 3, 53, proto=17, plen=30, ts=rng.random() / 10) for i in range(20)
    ]
    for i in range(6):  # echo request/reply pairs and IPv6 in the same batches as TCP
        pkts.append(Pkt(C, "10.0.0.9", 8, 0, proto=1, plen=56, ts=rng.random() / 10))
        pkts.append(Pkt("10.0.0.9", C, 0, 0, proto=1, plen=56, ts=rng.random() / 10))
        pkts.append(
            Pkt("fd00::1", "fd00::2", 5000 + i, 443, proto=17, plen=9, ts=rng.random() / 10)
        )
    pkts.sort(key=lambda p: p.ts)
    return pkts


@pytest.mark.parametrize("seed", range(8))
def test_random_batch_boundaries_give_the_same_records(seed: int) -> None:
    """Splitting the same packets into batches anywhere changes nothing in the records."""
    rng = random.Random(seed)
    pkts = _mixed_traffic(rng)
    whole = run(pkts)
    splits = sorted(rng.sample(range(1, len(pkts)), rng.randint(1, 20)))
    parts = run(pkts, splits=splits)
    assert [r.as_conn_log() for r in parts] == [r.as_conn_log() for r in whole]
    assert {r.history for r in whole} >= {"ShADadFf", "ShADTadFf"}


def test_hash_clashes_never_merge_or_split_flows(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every flow forced onto one hash value, records are the same as with real hashes."""
    rng = random.Random(3)
    pkts = _mixed_traffic(rng)
    splits = sorted(rng.sample(range(1, len(pkts)), 5))
    want = run(pkts, splits=splits)

    def one_hash(dec: DecodedBatch, rows: npt.NDArray[np.int64]) -> FlowKeys:
        keys = flow_keys(dec, rows)
        return dataclasses.replace(keys, hash63=np.zeros_like(keys.hash63))

    monkeypatch.setattr(ft_module, "flow_keys", one_hash)
    # the slot map recomputes a stored flow's hash from its key: the same one value
    monkeypatch.setattr(slotmap_module, "HASH_MASK", 0)
    got = run(pkts, splits=splits)

    def strip(r: FlowRecord) -> dict[str, object]:
        return {k: v for k, v in r.as_conn_log().items() if k != "uid"}

    assert sorted(map(str, map(strip, got))) == sorted(map(str, map(strip, want)))
    assert len(got) == len(want) > 20


def test_flow_ending_inside_a_batch_of_clashing_hashes_keeps_its_later_packets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A flow that idles out and comes back inside one batch, beside another flow of the same
    hash, gives its two records with every packet, as with real hashes."""
    udp = [Pkt(C, S, 7000, 9000, proto=17, plen=10, ts=t) for t in (0.0, 0.1, 400.0, 400.1)]
    other = [Pkt(C, S, 7001, 9000, proto=17, plen=10, ts=t) for t in (0.05, 400.05)]
    pkts = sorted(udp + other, key=lambda p: p.ts)
    want = run(pkts)

    def one_hash(dec: DecodedBatch, rows: npt.NDArray[np.int64]) -> FlowKeys:
        keys = flow_keys(dec, rows)
        return dataclasses.replace(keys, hash63=np.zeros_like(keys.hash63))

    monkeypatch.setattr(ft_module, "flow_keys", one_hash)
    monkeypatch.setattr(slotmap_module, "HASH_MASK", 0)
    got = run(pkts)
    assert len(want) == 4  # each flow idles out once: two records each
    assert [(r.orig_p, r.orig_pkts) for r in got] == [(r.orig_p, r.orig_pkts) for r in want]
    assert sum(r.orig_pkts for r in got) == len(pkts)


def test_active_view_shows_in_flight_flows_per_direction() -> None:
    """active_view() copies in-flight counters with both endpoints; ended flows leave it."""
    ft, _ = table(identity=pod_identity())
    ft.process(*batch(handshake()[:6]))
    ft.process(*batch([Pkt(C, "10.0.0.3", 5, 6, proto=17, plen=10)]))
    view = ft.active_view()
    assert len(view) == 2
    i = int(np.flatnonzero(view.proto == 6)[0])
    assert (view.orig_pkts[i], view.resp_pkts[i]) == (3, 3)
    assert view.orig_l2_bytes[i] == 2 * 54 + 154
    assert (view.orig[i].pod, view.resp[i].pod) == ("client", "server")
    ft.flush()
    assert len(ft.active_view()) == 0
    c = ft.counters()
    assert (c.flows_created, c.flows_ended["flush"], c.packets_counted) == (2, 2, 7)


def test_batch_with_more_new_flows_than_max_flows() -> None:
    """One batch bringing more flows than max_flows evicts older ones and loses no packet."""
    ft, sink = table(max_flows=10)
    ft.process(*batch([Pkt(C, S, 7000 + i, 53, proto=17, plen=1, ts=i * 1e-3) for i in range(37)]))
    ft.flush()
    assert len(sink.records) == 37
    assert sum(r.orig_pkts for r in sink.records) == 37
    assert ft.counters().flows_evicted >= 27


def test_eviction_spares_flows_of_the_current_batch() -> None:
    """A flow seen in the batch that forces evictions keeps its slot and its counts."""
    ft, sink = table(max_flows=4)
    ft.process(*batch([Pkt(C, S, 1, 2, proto=17, plen=1, ts=0.0)]))  # oldest flow
    ft.process(*batch([Pkt(C, S, 10 + i, 2, proto=17, plen=1, ts=1.0 + i) for i in range(3)]))
    ft.process(
        *batch(
            [
                Pkt(C, S, 1, 2, proto=17, plen=1, ts=5.0),  # the oldest flow is seen again...
                Pkt(C, S, 99, 2, proto=17, plen=1, ts=5.1),  # ...while a new one needs a slot
            ]
        )
    )
    ft.flush()
    oldest = [r for r in sink.records if r.orig_p == 1]
    assert [(r.orig_pkts, r.end_reason) for r in oldest] == [(2, "flush")]
    assert sum(r.orig_pkts for r in sink.records) == 6
