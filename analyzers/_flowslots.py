"""A new flow's slot: its columns set from the first packet of the flow in the batch.

Keys, roles (the first packet's sender originates unless Zeek's port heuristic flips it),
protocol, fresh ids and counters, endpoints from the identity map, and what the tunnel and
ICMP side tables keep of that packet. The flow table finds and allocates the slots.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from analyzers._decoded import DecodedBatch
from analyzers._flowcolumns import FlowColumns
from analyzers._flowemit import FlowEventEmitter
from analyzers._flowicmp import IcmpFirstTypes
from analyzers._flowkey import PROTO_TCP, FlowKeys
from analyzers._flowrecords import address_keys
from analyzers._flowtunnels import FlowTunnels
from analyzers._identity import IdentityMap
from analyzers._serverports import flip_roles
from analyzers._tcpstate import ACK, RST, SYN

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]


def init_slots(
    cols: FlowColumns,
    keys: FlowKeys,
    r: I64,
    s: I64,
    dec: DecodedBatch,
    *,
    canon: U64,
    identity: IdentityMap,
    emit: FlowEventEmitter,
    tunnels: FlowTunnels,
    icmp_first: IcmpFirstTypes,
) -> None:
    """Set up slots *s* for the new flows whose first packets are *keys* positions *r* and
    whose canonical keys are *canon*'s rows (grouping's ``Groups.keys``)."""
    a_hi_c, a_lo_c, b_hi_c, b_lo_c, ports, meta = canon.T
    cols.set_keys(s, a_hi_c, a_lo_c, b_hi_c, b_lo_c, ports, meta)
    rows = keys.rows[r]
    proto = dec.proto[rows]
    flags = dec.tcp_flags[rows]
    # the first packet's sender originates unless Zeek's port heuristic flips it ("^")
    flip = flip_roles(proto, keys.sport[r], keys.dport[r], flags, keys.dst_hi[r], keys.dst_lo[r])
    cols.orig_a[s] = keys.src_is_a[r] != flip
    cols.ipver[s] = dec.ipver[rows]
    cols.proto[s] = proto
    cols.active[s] = True
    cols.new_ids(s)
    cols.reset_counters(s)
    cols.reset_tcp(s)
    cols.hist[s] = np.where(flip, b"^", b"")
    # an attempt: any new flow but TCP's, which needs a SYN (not a SYN-ACK, not mid-stream)
    emit.started(s, (proto != PROTO_TCP) | ((flags & (SYN | ACK | RST)) == SYN))
    cols.ep.set_roles(
        s,
        identity.lookup_keys(address_keys(a_hi_c, a_lo_c)),
        identity.lookup_keys(address_keys(b_hi_c, b_lo_c)),
        cols.orig_a[s],
    )
    tunnels.remember(s, dec, rows)
    icmp_first.remember(s, dec, rows)
