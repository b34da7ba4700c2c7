"""Synthetic flow records for the report benchmark: a day at 100 new flows/s, made with numpy.

The records have the columns and types of the service's files (``exporters._recordschema``): a
few hundred pods in a dozen namespaces, a node, external peers; TCP (some reset, refused, half
open, with retransmissions and handshake RTTs), DNS over UDP (some NXDOMAIN/SERVFAIL) and ICMP.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from exporters import range_path, record_schema, store_summary

DAY = 86_400
RATE = 100  # new flows per second
T0 = 1_795_651_200.0  # 2026-11-26T00:00:00Z


def generate(n: int, *, start: float = T0, span: float = DAY, seed: int = 1) -> pa.Table:
    """``n`` records ending in ``[start, start + span)``, ordered by end time."""
    rng = np.random.default_rng(seed)
    pods = np.array([f"app-{i:03d}" for i in range(300)])
    spaces = np.array([f"ns-{i:02d}" for i in range(12)])
    end = np.sort(rng.uniform(start, start + span, n))
    duration = np.round(rng.exponential(2.0, n), 6)
    proto_pick = rng.choice(3, n, p=[0.7, 0.27, 0.03])
    proto = np.array(["tcp", "udp", "icmp"])[proto_pick]
    tcp = proto_pick == 0
    udp = proto_pick == 1

    def side(kind_p: list[float]) -> dict[str, np.ndarray]:
        kind = np.array(["pod", "node", "external"])[rng.choice(3, n, p=kind_p)]
        index = rng.zipf(1.3, n) % len(pods)  # a few pods carry most traffic
        is_pod = kind == "pod"
        return {
            "kind": kind,
            "namespace": np.where(is_pod, spaces[index % len(spaces)], ""),
            "pod": np.where(is_pod, pods[index], ""),
            "node": np.where(kind == "external", "", "node-1"),
        }

    orig, resp = side([0.9, 0.02, 0.08]), side([0.8, 0.05, 0.15])
    orig_pkts = rng.integers(1, 200, n)
    resp_pkts = rng.integers(0, 200, n)
    state = np.where(
        tcp,
        np.array(["SF", "S0", "REJ", "RSTO"])[rng.choice(4, n, p=[0.9, 0.04, 0.03, 0.03])],
        "SF",
    )
    rcode = rng.choice([0, 2, 3], n, p=[0.9, 0.02, 0.08])
    dns = udp & (rng.random(n) < 0.5)
    cols: dict[str, object] = {
        "ts": np.round(end - duration, 6),
        "duration": duration,
        "proto": proto,
        "id.orig_p": rng.integers(1024, 65535, n),
        "id.resp_p": np.where(dns, 53, rng.choice([80, 443, 8080, 5432, 6379], n)),
        "conn_state": state,
        "orig_pkts": orig_pkts,
        "resp_pkts": resp_pkts,
        "orig_l2_bytes": orig_pkts * rng.integers(60, 1514, n),
        "resp_l2_bytes": resp_pkts * rng.integers(60, 1514, n),
        "tcp_retrans_orig": np.where(tcp, rng.poisson(0.2, n), 0),
        "tcp_retrans_resp": np.where(tcp, rng.poisson(0.2, n), 0),
        "tcp_rst": np.where(state == "RSTO", 1, 0),
        "tcp_rtt_client": rng.lognormal(-7.0, 0.7, n),
        "dns_queries": np.where(dns, 1, 0),
        "dns_rcode": rcode,
        "dns_latency": rng.lognormal(-6.5, 0.8, n),
    }
    for prefix, s in (("orig", orig), ("resp", resp)):
        for key, value in s.items():
            cols[f"{prefix}_{key}"] = value
    schema = record_schema()
    arrays: dict[str, pa.Array] = {}
    tcp_mask = pa.array(~tcp)
    dns_mask = pa.array(~dns)
    for name, values in cols.items():
        arr = pa.array(values, type=schema.field(name).type)
        if name.startswith("tcp_"):
            arr = pa.compute.if_else(tcp_mask, pa.nulls(n, arr.type), arr)
        elif name.startswith("dns_"):
            arr = pa.compute.if_else(dns_mask, pa.nulls(n, arr.type), arr)
        arrays[name] = arr
    return pa.table(arrays)


def write_hourly(table: pa.Table, directory: Path, prefix: str = "flows-node-1-w0") -> list[Path]:
    """``table`` as the service stores it: one Parquet file per hour, named by its end range, with
    its summary beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    end = pa.compute.add(table.column("ts"), table.column("duration")).to_numpy()
    hours = (end // 3600).astype(np.int64)
    paths = []
    for hour in np.unique(hours):
        rows = np.flatnonzero(hours == hour)
        part = table.take(pa.array(rows))
        path = range_path(directory, prefix, float(end[rows[0]]), float(end[rows[-1]]), ".parquet")
        pq.write_table(part, path, compression="zstd")
        store_summary(path, part)
        paths.append(path)
    return paths
