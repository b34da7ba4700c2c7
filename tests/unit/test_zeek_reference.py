"""Our records against the conn.log Zeek's own tests expect, trace by trace (the zeek-dev set).

The floors are what the code achieved when they were set: a change that loses agreement fails
here; one that gains it raises the floors in the same commit. ``pytest -s`` prints the table.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from tests.unit import _zeekref

CORPUS = _zeekref.corpus_dir()
pytestmark = pytest.mark.skipif(
    not (CORPUS / "pairs.json").is_file(), reason=f"no zeek-dev corpus at {CORPUS}"
)

# Per trace, at least this many pairs matched / equal in conn_state, history, packets, payload
# bytes, IP bytes (both directions); and at most this many of our records without a Zeek match.
FLOORS = {
    # Each probe is in the trace twice, plain and 0.6-0.9 ms later inside FabricPath: Zeek counts
    # both packets, duplicate suppression the first (the next probes, alike but for their source,
    # are kept: a copy at another address must come within 100 us).
    "cisco-fabric-path.pcap": (64, 64, 64, 16, 64, 16, 0),
    "mpls-in-vlan.pcap": (3, 3, 3, 3, 3, 3, 0),
    # Zeek counts 2 retransmitted segments our duplicate suppression takes for mirror copies.
    "pppoe-over-qinq.pcap": (1, 1, 1, 0, 1, 0, 0),
    "pppoe.pcap": (7, 7, 7, 7, 7, 7, 0),
    "ftp__bigtransfer.pcap": (3, 3, 3, 3, 3, 3, 0),
    "http__get.pcap": (1, 1, 1, 1, 1, 1, 0),
    # Of an A-MSDU (two subframes) only the first is decoded: a frame is one row.
    "tunnels__gre-aruba-amsdu.pcap": (1, 1, 0, 0, 1, 0, 0),
    "tunnels__gre-within-gre.pcap": (3, 3, 3, 3, 3, 3, 0),
    # The 4 outer UDP 4754 connections are carriers Zeek logs as connections: so do we.
    "tunnels__gre-over-udp-4754.pcap": (6, 6, 6, 6, 6, 6, 0),
    "tunnels__gre-pptp.pcap": (1, 1, 1, 1, 1, 1, 0),
    "tunnels__gre-sample.pcap": (7, 7, 7, 7, 7, 7, 0),
    # Carriers included. A bubble (an IPv6 header, no payload) is not followed, so the carrier's
    # history lacks a letter Zeek gives it for the bubble's direction.
    "tunnels__Teredo.pcap": (21, 21, 20, 21, 21, 21, 0),
    "tunnels__teredo_bubble_with_payload.pcap": (7, 7, 6, 7, 7, 7, 0),
    "dhcp__dhcp.pcap": (4, 4, 4, 4, 4, 4, 0),
    # One TSO frame (IPv4 total length 0): Zeek adds 0 to orig_ip_bytes for it, we its length.
    "ldap__missing_krbtgt_ldap_request.pcapng": (1, 1, 1, 1, 1, 0, 0),
    "modbus__modbus-and-non-modbus-p502.pcap": (8, 8, 8, 8, 8, 8, 0),
    "pop3__pop3.pcap": (11, 11, 11, 11, 11, 11, 0),
    "ssh__ssh.pcap.gz": (25, 25, 25, 25, 25, 25, 0),
}
_FIELDS = ("matched", "conn_state", "history", "pkts", "bytes", "ip_bytes")


@pytest.fixture(scope="module")
def results() -> dict[str, _zeekref.Agreement]:
    out = {}
    for pair in _zeekref.pairs(CORPUS):
        agreement = _zeekref.compare_pair(CORPUS, pair)
        out[agreement.trace] = agreement
    return out


def test_every_pair_has_a_floor(results: dict[str, _zeekref.Agreement]) -> None:
    """Each pair the corpus lists is checked here (a new pair needs its floor set)."""
    assert set(results) == set(FLOORS)


@pytest.mark.parametrize("trace", sorted(FLOORS))
def test_agreement_with_zeek_does_not_regress(
    trace: str, results: dict[str, _zeekref.Agreement]
) -> None:
    """On every trace, at least as many connections found and equal, no more extra records."""
    got = results[trace]
    *floors, extra = FLOORS[trace]
    counts = {name: getattr(got, name) for name in _FIELDS}
    assert counts == {n: max(c, f) for (n, c), f in zip(counts.items(), floors, strict=True)}, (
        f"below the floors {dict(zip(_FIELDS, floors, strict=True))}"
    )
    assert got.ours - got.matched <= extra


def test_agreement_table(results: dict[str, _zeekref.Agreement]) -> None:
    """The table the script prints; where we decode the link layer, every record matches one."""
    print("\n" + _zeekref.table([results[t] for t in FLOORS]))
    decoded = [a for a in results.values() if not a.later]
    assert sum(a.ours for a in decoded) == sum(a.matched for a in decoded)


def test_gzip_traces_are_read_through_a_temporary_copy(tmp_path: Path) -> None:
    """A .gz trace gives the same records as the same trace uncompressed."""
    plain = CORPUS / "traces" / "http__get.pcap"
    packed = tmp_path / "http__get.pcap.gz"
    with plain.open("rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert _zeekref.analyse(packed) == _zeekref.analyse(plain)
