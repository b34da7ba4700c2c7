"""Hand-built decoded batches for flow-table tests: one ``Pkt`` per row, no decoder needed."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from analyzers import (
    DecodedBatch,
    Encap,
    Endpoint,
    EndpointKind,
    FlowTableOptions,
    IdentityMap,
    Status,
)
from analyzers._flowtable import FlowTable
from analyzers._records import FlowRecord
from capture._batch import FrameBatch

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
T0 = 1_700_000_000_000_000_000  # ns
# the VTEPs of a row with a VNI (IPv4-mapped, as the decoder writes them)
OUTER_SRC = int(ipaddress.ip_address("::ffff:192.0.2.1"))
OUTER_DST = int(ipaddress.ip_address("::ffff:192.0.2.2"))


@dataclass(frozen=True)
class Pkt:
    src: str
    dst: str
    sport: int = 0
    dport: int = 0
    proto: int = 6
    flags: int = 0
    seq: int = 0
    ack: int = 0
    win: int = 1000
    plen: int = 0
    ts: float = 0.0  # seconds after T0
    vlan: int = 0
    vni: int = 0
    payload: bytes = b""
    status: int = Status.L4
    wire: int = 0  # 0: IP length + 14


def _key(addr: str) -> tuple[int, int, int]:
    ip = ipaddress.ip_address(addr)
    if ip.version == 4:
        return 4, 0, 0xFFFF_0000_0000 | int(ip)
    v = int(ip)
    return 6, v >> 64, v & 0xFFFF_FFFF_FFFF_FFFF


def batch(pkts: list[Pkt]) -> tuple[FrameBatch, DecodedBatch]:
    """Frames whose data holds only the payloads; the decoded columns say everything else."""
    frames = [p.payload if p.payload else b"\0" * max(p.plen, 1) for p in pkts]
    n = len(pkts)
    fb = FrameBatch.from_frames(frames, [T0 + round(p.ts * 1e9) for p in pkts])
    keys = [(_key(p.src), _key(p.dst)) for p in pkts]
    plens = [len(p.payload) if p.payload else p.plen for p in pkts]
    hdr = [20 if p.proto == 6 else 8 for p in pkts]
    iplen = [
        (20 if k[0][0] == 4 else 40) + h + pl for k, h, pl in zip(keys, hdr, plens, strict=True)
    ]
    wire = [p.wire or ln + 14 for p, ln in zip(pkts, iplen, strict=True)]
    fb = FrameBatch(
        data=fb.data,
        offsets=fb.offsets,
        caplens=fb.caplens,
        wirelens=np.array(wire, np.int64),
        ts_ns=fb.ts_ns,
    )

    def col(values: list[int], dtype: type) -> np.ndarray:
        return np.array(values, dtype=dtype)

    dec = DecodedBatch(
        status=col([p.status for p in pkts], np.uint8),
        ipver=col(
            [k[0][0] if p.status <= 1 else 0 for k, p in zip(keys, pkts, strict=True)], np.uint8
        ),
        src_hi=col([k[0][1] for k in keys], np.uint64),
        src_lo=col([k[0][2] for k in keys], np.uint64),
        dst_hi=col([k[1][1] for k in keys], np.uint64),
        dst_lo=col([k[1][2] for k in keys], np.uint64),
        proto=col([p.proto for p in pkts], np.uint8),
        sport=col([p.sport for p in pkts], np.uint16),
        dport=col([p.dport for p in pkts], np.uint16),
        vlan=col([p.vlan for p in pkts], np.uint16),
        tun_type=col([1 if p.vni else 0 for p in pkts], np.uint8),
        tun_vni=col([p.vni for p in pkts], np.uint32),
        tun_dir=col([0] * len(pkts), np.uint8),
        outer_src_hi=col([0] * len(pkts), np.uint64),
        outer_src_lo=col([OUTER_SRC if p.vni else 0 for p in pkts], np.uint64),
        outer_dst_hi=col([0] * len(pkts), np.uint64),
        outer_dst_lo=col([OUTER_DST if p.vni else 0 for p in pkts], np.uint64),
        encap=col([Encap.VXLAN if p.vni else 0 for p in pkts], np.uint32),
        carrier_ports=col([0] * len(pkts), np.uint32),
        carrier_ip_len=col([0] * len(pkts), np.uint32),
        carrier_l4_len=col([0] * len(pkts), np.uint32),
        ip_len=col(iplen, np.uint32),
        l4_off=fb.offsets.copy(),
        l4_len=col(plens, np.uint32),
        tcp_flags=col([p.flags if p.proto == 6 else 0 for p in pkts], np.uint16),
        tcp_seq=col([p.seq & 0xFFFFFFFF for p in pkts], np.uint32),
        tcp_ack=col([p.ack & 0xFFFFFFFF for p in pkts], np.uint32),
        tcp_win=col([p.win for p in pkts], np.uint16),
        ip_id=col([0] * n, np.uint32),
        frag=col([0] * n, np.uint8),
        ttl=col([64] * n, np.uint8),
        fp=col(list(range(1, n + 1)), np.uint64),  # every packet its own: no copies
    )
    return fb, dec


class Collector:
    """A sink that keeps every record it is handed (a flow table's callable, a FlowSink)."""

    def __init__(self) -> None:
        self.records: list[FlowRecord] = []

    def __call__(self, records: list[FlowRecord]) -> None:
        self.records.extend(records)

    def on_flows_ended(self, records: list[FlowRecord]) -> None:
        """The same, as a ``FlowSink`` (a pipeline's sinks)."""
        self(records)


def table(identity: IdentityMap | None = None, **options: Any) -> tuple[FlowTable, Collector]:
    """A table whose records land in the returned sink; *options* are ``FlowTableOptions``."""
    sink = Collector()
    opts = FlowTableOptions(**options)
    ft = FlowTable(identity or IdentityMap(), options=opts, on_ended=sink, uid_seed=b"test")
    return ft, sink


def run(pkts: list[Pkt], *, splits: list[int] | None = None, **kw: object) -> list[FlowRecord]:
    """Feed *pkts* (split into batches at *splits*), flush, return the records sorted by ts."""
    ft, sink = table(**kw)  # type: ignore[arg-type]
    cuts = [0, *(splits or []), len(pkts)]
    for a, b in pairwise(cuts):
        if b > a:
            ft.process(*batch(pkts[a:b]))
    ft.flush()
    return sorted(sink.records, key=lambda r: (r.ts, r.orig_p))


def handshake(
    c: str = "10.0.0.1", s: str = "10.0.0.2", cp: int = 40000, sp: int = 80, t: float = 0.0
) -> list[Pkt]:
    """A normal connection: 3WHS, 100 bytes each way, FIN both ways, last ACK."""
    ci, si = 1000, 5000
    return [
        Pkt(c, s, cp, sp, flags=SYN, seq=ci, ts=t),
        Pkt(s, c, sp, cp, flags=SYN | ACK, seq=si, ack=ci + 1, ts=t + 0.010),
        Pkt(c, s, cp, sp, flags=ACK, seq=ci + 1, ack=si + 1, ts=t + 0.012),
        Pkt(c, s, cp, sp, flags=ACK | PSH, seq=ci + 1, ack=si + 1, plen=100, ts=t + 0.020),
        Pkt(s, c, sp, cp, flags=ACK, seq=si + 1, ack=ci + 101, ts=t + 0.030),
        Pkt(s, c, sp, cp, flags=ACK | PSH, seq=si + 1, ack=ci + 101, plen=100, ts=t + 0.040),
        Pkt(c, s, cp, sp, flags=ACK, seq=ci + 101, ack=si + 101, ts=t + 0.050),
        Pkt(c, s, cp, sp, flags=FIN | ACK, seq=ci + 101, ack=si + 101, ts=t + 0.060),
        Pkt(s, c, sp, cp, flags=FIN | ACK, seq=si + 101, ack=ci + 102, ts=t + 0.070),
        Pkt(c, s, cp, sp, flags=ACK, seq=ci + 102, ack=si + 102, ts=t + 0.080),
    ]


def pod_identity() -> IdentityMap:
    ident = IdentityMap()
    ident.replace(
        "test",
        [
            ("10.0.0.1", Endpoint(EndpointKind.POD, "default", "client", "node-a")),
            ("10.0.0.2", Endpoint(EndpointKind.POD, "web", "server", "node-b")),
            ("172.18.0.2", Endpoint(EndpointKind.NODE, node="node-a")),
        ],
    )
    return ident
