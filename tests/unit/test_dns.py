"""DNS: header/question parsing and per-flow query/response matching in the flow table."""

from __future__ import annotations

import struct

import pytest

from analyzers._dns import parse_dns
from tests.unit.flowkit import Pkt, run


def _msg(
    txid: int, *, response: bool = False, rcode: int = 0, name: str = "example.com", qtype: int = 1
) -> bytes:
    flags = (0x8000 if response else 0) | 0x0100 | rcode
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack(">HHHHHH", txid, flags, 1, 0, 0, 0) + q + struct.pack(">HH", qtype, 1)


def test_parse_query_and_response_fields() -> None:
    """Transaction id, QR, RCODE, QNAME and QTYPE come out of the header and first question."""
    m = parse_dns(_msg(0x1234, response=True, rcode=3, name="nope.svc.cluster.local", qtype=28))
    assert m is not None
    assert (m.txid, m.is_response, m.rcode, m.qname, m.qtype) == (
        0x1234,
        True,
        3,
        "nope.svc.cluster.local",
        28,
    )


@pytest.mark.parametrize("junk", [b"", b"\x00" * 11, _msg(1)[:-3], _msg(1)[:12] + b"\x3f"])
def test_truncated_messages_return_none(junk: bytes) -> None:
    """Short or truncated messages never raise: they return None."""
    assert parse_dns(junk) is None


def test_compression_loop_is_bounded() -> None:
    """A question name that points at itself is rejected, not followed forever."""
    assert parse_dns(struct.pack(">HHHHHH", 1, 0, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01") is None


def test_flow_reports_nxdomain_and_latency() -> None:
    """Query and NXDOMAIN response on one flow: name, type, rcode 3/NXDOMAIN, latency, counts."""
    r = run(
        [
            Pkt("10.0.0.1", "10.96.0.10", 5353, 53, proto=17, payload=_msg(7, name="x.example")),
            Pkt(
                "10.96.0.10",
                "10.0.0.1",
                53,
                5353,
                proto=17,
                payload=_msg(7, response=True, rcode=3, name="x.example"),
                ts=0.0042,
            ),
        ]
    )[0]
    assert (r.dns_query, r.dns_qtype, r.dns_qtype_name) == ("x.example", 1, "A")
    assert (r.dns_rcode, r.dns_rcode_name) == (3, "NXDOMAIN")
    assert r.dns_latency == pytest.approx(0.0042)
    assert (r.dns_queries, r.dns_responses, r.service, r.conn_state) == (1, 1, "dns", "SF")


def test_unmatched_response_gives_no_latency() -> None:
    """A response whose transaction id was never asked on the flow has no latency."""
    r = run(
        [
            Pkt("10.0.0.1", "10.96.0.10", 5353, 53, proto=17, payload=_msg(1)),
            Pkt(
                "10.96.0.10",
                "10.0.0.1",
                53,
                5353,
                proto=17,
                payload=_msg(2, response=True),
                ts=0.01,
            ),
        ]
    )[0]
    assert (r.dns_latency, r.dns_rcode_name) == (None, "NOERROR")


def test_dns_over_tcp_skips_the_length_prefix() -> None:
    """DNS on TCP port 53 is parsed after the 2-byte length prefix."""
    q = _msg(9, name="tcp.example")
    r = run(
        [
            Pkt(
                "10.0.0.1",
                "10.96.0.10",
                40000,
                53,
                flags=0x18,
                seq=1,
                payload=len(q).to_bytes(2, "big") + q,
            ),
        ]
    )[0]
    assert (r.dns_query, r.dns_queries) == ("tcp.example", 1)
