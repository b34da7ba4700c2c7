"""Flow records: conn.log field names, JSON lines, uids."""

from __future__ import annotations

import json

from analyzers import Endpoint, EndpointKind, json_lines
from analyzers._records import DnsStats, TcpStats
from analyzers._uids import make_uid
from tests.unit.flowkit import handshake, run

ZEEK_FIELDS = [
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "proto",
    "service",
    "duration",
    "orig_bytes",
    "resp_bytes",
    "conn_state",
    "missed_bytes",
    "history",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
]


def test_json_line_has_zeek_fields_in_order() -> None:
    """A TCP record's JSON line starts with Zeek's conn.log fields, in conn.log order."""
    line = run(handshake())[0].to_json_line()
    assert "\n" not in line
    obj = json.loads(line)
    assert list(obj)[: len(ZEEK_FIELDS)] == ZEEK_FIELDS
    for extra in ("orig_kind", "resp_pod", "tcp_retrans_orig", "tcp_rtt_client", "end_reason"):
        assert extra in obj


def test_uid_looks_like_zeek_and_is_unique() -> None:
    """Uids are 'C' + 17 base62 characters and differ per sequence number."""
    uids = {make_uid(b"seed", i) for i in range(1000)}
    assert len(uids) == 1000
    assert all(u[0] == "C" and len(u) == 18 and u.isalnum() for u in uids)


def test_json_line_is_exactly_json_dumps_of_conn_log() -> None:
    """The formatted lines equal json.dumps(as_conn_log()), escapes, optionals and tunnels too,
    one record or a whole delivery at a time."""
    base = run(handshake())[0]
    odd = Endpoint(EndpointKind.POD, 'ns"\\x', "p\u00e9d\n", "n\x01")
    variants = [
        base,
        base._replace(orig=odd, history='Sh"A', service=None, node="n\u2603"),
        base._replace(history="", tcp=TcpStats(1, 2, 3, 4, 5, 6, None, 1e-12)),
        base._replace(proto="udp", tcp=None, dns=DnsStats('q\u2603"\\', 1, 3, 0.5)),
        base._replace(ts=0, duration=1e-7, dns=DnsStats(None, 99, None, None, 2, 0)),
        base._replace(orig_h="fe80::1", uid="C\\x", end_reason="flush"),
        base._replace(tunnel="vxlan", tunnel_id=7, outer_src="192.0.2.1", outer_dst="fe80::2"),
        base._replace(tunnel="erspan2", tunnel_id=3, tunnel_dir="egress", outer_src="1.2.3.4"),
        base._replace(tunnel="teredo", outer_src="2001:db8::1", outer_dst="192.0.2.9"),
    ]
    for r in variants:
        assert r.to_json_line() == json.dumps(r.as_conn_log(), separators=(",", ":"))
    # a delivery at once: all plain (one template), and with a record that needs escaping
    for delivery in ([variants[0], *variants[2:5], *variants[6:]], variants):
        assert json_lines(delivery) == "".join(r.to_json_line() + "\n" for r in delivery)
