"""Flow records: conn.log field names, JSON lines, uids."""

from __future__ import annotations

import json

from analyzers._records import make_uid
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
