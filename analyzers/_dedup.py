"""Suppress the second copy of a packet that Open vSwitch mirrored twice.

OVS resets its mirror de-duplication after an action that modifies a packet (routing with
dec_ttl, NAT, VLAN push/pop), so a routed or NATed packet reaches mirror0 twice within
microseconds: once before the change and once after. Routing rewrites MACs, TTL and the IP
checksum; NAT also rewrites one side's address and port and the transport checksum.

A copy is recognised by a 64-bit fingerprint of what neither changes — IP version, protocol,
IP length, IPv4 identification (IPv6: fragment id), fragment state, TCP seq/ack/flags/window, ICMP
type/code, and except for TCP over IPv4 (whose IP id already tells retransmissions apart) the
last 8 bytes of TCP options and the first 8 bytes of payload — plus one untouched
endpoint: a duplicate has the same fingerprint as the previous packet with that fingerprint, at
most ``window_ns`` apart, and the same source address and port (routing, DNAT) or the same
destination address and port (routing, SNAT), the other side either equal (routing) or at another
address (NAT rewrites an address; a change of port alone at the same address is a distinct packet,
e.g. a victim's answers to a scanner's probes, which differ only in their source port). A copy
at another address must also come within ``nat_window_ns`` (100 µs, or ``window_ns`` if smaller):
OVS emits both copies of a NATed packet in one pass through its pipeline, microseconds apart,
while a sender's probes to many hosts alike but for their address (sweeps, crafted traces) come
further apart than that unless it sends above ~10 k probes a second. Tunnel and VLAN columns are
left out on purpose: a packet seen once inside Geneve and once bare is the same packet.

The search is compiled (``_dedupkernel``): a small hash table of the packets of the last
``window_ns`` before the newest one seen, carried from batch to batch, so the result does not
depend on batch boundaries. A capture whose clock jumps back by more than the window (damaged or
spliced files) starts that search afresh: copies straddling the jump are kept.

Residual risk. False positives (a distinct packet dropped) need two packets inside the window with
equal fingerprints and one equal endpoint: for TCP that is a retransmission faster than the window
that also repeats the IP id (Linux increments it per packet of a connected socket; a stack that
sends id 0 on DF packets, as RFC 6864 allows, loses that distinction for IPv4 TCP) or, over IPv6,
the option tail (timestamps tick every millisecond, SACK blocks move), i.e. a sub-millisecond fast
retransmit without timestamps; for UDP two datagrams of the same length whose first 8
payload bytes match, sharing an endpoint within the window (two DNS queries to the same server
with the same 16-bit id and length: about 1e-6 per query pair that close). False negatives (a
copy counted twice): packets whose both endpoints are rewritten in one pass (SNAT and DNAT
together, e.g. hairpin service traffic), copies further apart than the window, an IPv4 header
with options or an IPv6 extension header in front of TCP options (the option tail is then
located wrongly and includes the checksum), and a 2^-44-ish fingerprint collision with an
unrelated packet in between.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from analyzers._decoded import DecodedBatch
from analyzers._dedupkernel import find_copies
from capture import FrameBatch

U64 = npt.NDArray[np.uint64]

DEFAULT_WINDOW_NS = 1_000_000
DEFAULT_NAT_WINDOW_NS = 100_000


class Deduplicator:
    """Marks the mirrored copies of a packet, across consecutive batches of one capture."""

    def __init__(
        self, window_ns: int = DEFAULT_WINDOW_NS, nat_window_ns: int = DEFAULT_NAT_WINDOW_NS
    ) -> None:
        if window_ns < 0 or nat_window_ns < 0:
            raise ValueError(
                f"window_ns and nat_window_ns must be >= 0: {window_ns}, {nat_window_ns}"
            )
        self.window_ns = window_ns
        self.nat_window_ns = min(nat_window_ns, window_ns)
        self._suppressed = 0
        # the packets of the last window_ns, as the compiled search keeps them (_dedupkernel)
        self._table: tuple[U64, U64] = (np.zeros((16, 2), np.uint64), np.zeros((16, 6), np.uint64))
        self._fill = 0

    @property
    def suppressed(self) -> int:
        """Copies suppressed so far (rows ``mask`` returned False for)."""
        return self._suppressed

    def mask(self, batch: FrameBatch, decoded: DecodedBatch) -> npt.NDArray[np.bool_]:
        """True for every row to keep: all but the second and later copies of a packet."""
        keep = np.empty(len(decoded), dtype=np.bool_)
        self._table, self._fill, found = find_copies(
            self._table,
            self._fill,
            decoded.status,
            decoded.fp,
            batch.ts_ns,
            (
                decoded.src_hi,
                decoded.src_lo,
                decoded.sport,
                decoded.dst_hi,
                decoded.dst_lo,
                decoded.dport,
            ),
            self.window_ns,
            self.nat_window_ns,
            keep,
        )
        self._suppressed += found
        return keep
