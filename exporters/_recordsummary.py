"""A set of records reduced to the sums a report is made of; summaries of disjoint sets add up.

What a report says of some records is sums (per endpoint, per pair, per protocol and port, per
endpoint and time bucket, TCP and DNS counts) and percentiles; a ``Summary`` holds those sums and
a log histogram for each percentile (``exporters._recordsummaryhist``). Summaries of disjoint sets
of records merge into the summary of their union: a day's report adds 24 hourly summaries instead
of aggregating 8.6 M records (README, "Record storage").

Each side of a record is mapped once to an endpoint: its kind, namespace, pod and node columns are
categoricals, combined in a mixed radix into one integer per row, so names are given to the few
hundred distinct endpoints, not to millions of rows. A pod's ``tx`` is what it sent: the
originator's bytes when it opened the flow, the responder's when it answered. Bytes are wire bytes
(layer 2, what tshark calls ``frame.len``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from exporters._recordsummaryhist import LogHistogram

EXTERNAL = "external"
#: Sums per endpoint, after its namespace and pod.
ENDPOINT_SUMS = (
    "tx_bytes",
    "rx_bytes",
    "tx_packets",
    "rx_packets",
    "flows",
    "tcp_retrans",
    "tcp_resets",
)
PAIR_SUMS = ("flows", "bytes_to_dst", "bytes_to_src", "packets")
MIX_SUMS = ("flows", "bytes", "packets")
SERIES_SUMS = ("bytes", "packets", "flows")
COUNTS = (
    "tcp_flows",
    "tcp_packets",
    "tcp_retrans",
    "tcp_resets",
    "tcp_flows_reset",
    "tcp_rej",
    "tcp_s0",
    "dns_queries",
    "dns_flows",
    "dns_nxdomain",
    "dns_servfail",
)
_SIDE_COLS = ("kind", "namespace", "pod", "node")
_DENSE_LIMIT = 1 << 26  # key spaces up to this size are compacted by a bincount, not a hash


@dataclass(frozen=True)
class Summary:
    """The additive figures of a set of records; every frame's sums are int64."""

    step: float  # seconds per bucket of ``series``
    records: int
    first_end: float | None  # the earliest and latest end (ts + duration) of the records
    last_end: float | None
    endpoints: pd.DataFrame  # namespace, pod, ENDPOINT_SUMS; one row per endpoint
    pairs: pd.DataFrame  # src, dst (rows of endpoints: orig, resp), PAIR_SUMS
    protocols: pd.DataFrame  # proto, MIX_SUMS
    ports: pd.DataFrame  # proto, port, MIX_SUMS: TCP, UDP and SCTP
    series: pd.DataFrame  # bucket (end // step), endpoint (row of endpoints), SERIES_SUMS
    counts: dict[str, int]  # COUNTS
    rtt: LogHistogram  # TCP handshake RTT (client side), seconds
    dns_latency: LogHistogram  # seconds


def _dense(key: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Dense ids ``0..n-1`` for the distinct values of ``key`` (>= 0), and those values."""
    size = int(key.max()) + 1 if len(key) else 0
    if size > _DENSE_LIMIT:
        ids, uniques = pd.factorize(key)
        return ids.astype(np.int64), np.asarray(uniques, np.int64)
    present = np.bincount(key, minlength=size) > 0
    remap = np.cumsum(present) - 1
    return remap[key], np.flatnonzero(present)


def _codes(column: pd.Series) -> tuple[npt.NDArray[np.int64], pd.Index]:
    cat = column if isinstance(column.dtype, pd.CategoricalDtype) else column.astype("category")
    codes: npt.NDArray[np.int64] = np.asarray(cat.cat.codes, dtype=np.int64)
    return codes, cat.cat.categories


def _sum(
    ids: npt.NDArray[np.int64], weights: npt.NDArray[Any] | None, n: int
) -> npt.NDArray[np.int64]:
    # float64 sums are exact up to 2**53: 9 PB of bytes in one report
    return np.rint(np.bincount(ids, weights=weights, minlength=n)).astype(np.int64)


def _side(df: pd.DataFrame, side: str) -> tuple[npt.NDArray[np.int64], pd.DataFrame]:
    """Per row a dense endpoint code of one side, and the endpoints' names by code."""
    key = np.zeros(len(df), np.int64)
    parts = []
    for c in _SIDE_COLS:
        codes, categories = _codes(df[f"{side}_{c}"])
        key = key * (len(categories) + 1) + (codes + 1)  # mixed radix; -1 (null) becomes 0
        parts.append((c, categories))
    dense, rest = _dense(key)
    values: dict[str, npt.NDArray[Any]] = {}
    for c, categories in reversed(parts):  # undo the mixed radix on the few distinct keys
        radix = len(categories) + 1
        code = rest % radix
        rest = rest // radix
        names = np.array(["", *map(str, categories)], dtype=object)
        values[c] = names[code]
    kind, node = values["kind"], values["node"]
    pod = np.where(kind == "pod", values["pod"], np.where(kind == "node", "node/" + node, EXTERNAL))
    namespace = np.where(kind == "pod", values["namespace"], "")
    return dense, pd.DataFrame({"namespace": namespace, "pod": pod})


def _endpoints(
    df: pd.DataFrame,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], pd.DataFrame]:
    """Both sides of every row as rows of one table of (namespace, pod)."""
    o_codes, o_eps = _side(df, "orig")
    r_codes, r_eps = _side(df, "resp")
    both = pd.concat([o_eps, r_eps], ignore_index=True)
    ids, _ = pd.factorize(both["namespace"] + "\0" + both["pod"])
    names = both.groupby(ids, sort=True).first().reset_index(drop=True)
    o_ids, r_ids = ids[: len(o_eps)], ids[len(o_eps) :]
    return o_ids[o_codes].astype(np.int64), r_ids[r_codes].astype(np.int64), names


class _Columns:
    """The frame's numeric columns as float64 arrays (nulls 0), each converted once."""

    def __init__(self, df: pd.DataFrame) -> None:
        self.df = df
        self._f64: dict[str, npt.NDArray[np.float64]] = {}

    def f64(self, name: str) -> npt.NDArray[np.float64]:
        values = self._f64.get(name)
        if values is None:
            values = np.asarray(self.df[name].to_numpy(np.float64, na_value=0.0), np.float64)
            self._f64[name] = values
        return values

    def nan(self, name: str) -> npt.NDArray[np.float64]:
        """The column with nulls as NaN, for the histograms."""
        return np.asarray(self.df[name].to_numpy(np.float64, na_value=np.nan), np.float64)

    def wire(self) -> npt.NDArray[np.float64]:
        return self._sum2("orig_l2_bytes", "resp_l2_bytes")

    def packets(self) -> npt.NDArray[np.float64]:
        return self._sum2("orig_pkts", "resp_pkts")

    def _sum2(self, a: str, b: str) -> npt.NDArray[np.float64]:
        key = f"{a}+{b}"
        values = self._f64.get(key)
        if values is None:
            values = self.f64(a) + self.f64(b)
            self._f64[key] = values
        return values


def _endpoint_sums(
    cols: _Columns, o: npt.NDArray[np.int64], r: npt.NDArray[np.int64], names: pd.DataFrame
) -> pd.DataFrame:
    n = len(names)
    f = cols.f64
    ob, rb, op, rp = (f(c) for c in ("orig_l2_bytes", "resp_l2_bytes", "orig_pkts", "resp_pkts"))
    resets = (f("tcp_rst") > 0).astype(np.float64)
    other = r != o  # a flow between two addresses of one pod is one of its flows, not two
    out = names[["namespace", "pod"]].copy()
    out["tx_bytes"] = _sum(o, ob, n) + _sum(r, rb, n)
    out["rx_bytes"] = _sum(o, rb, n) + _sum(r, ob, n)
    out["tx_packets"] = _sum(o, op, n) + _sum(r, rp, n)
    out["rx_packets"] = _sum(o, rp, n) + _sum(r, op, n)
    out["flows"] = _sum(o, None, n) + _sum(r[other], None, n)
    out["tcp_retrans"] = _sum(o, f("tcp_retrans_orig"), n) + _sum(r, f("tcp_retrans_resp"), n)
    out["tcp_resets"] = _sum(o, resets, n) + _sum(r[other], resets[other], n)
    return out


def _pair_sums(
    cols: _Columns, o: npt.NDArray[np.int64], r: npt.NDArray[np.int64], n_eps: int
) -> pd.DataFrame:
    pair, keys = _dense(o * n_eps + r)
    n = len(keys)
    return pd.DataFrame(
        {
            "src": keys // n_eps,
            "dst": keys % n_eps,
            "flows": _sum(pair, None, n),
            "bytes_to_dst": _sum(pair, cols.f64("orig_l2_bytes"), n),
            "bytes_to_src": _sum(pair, cols.f64("resp_l2_bytes"), n),
            "packets": _sum(pair, cols.packets(), n),
        }
    )


def _mix(cols: _Columns, port: bool = False) -> pd.DataFrame:
    """Flows, bytes and packets by protocol, or by protocol and port for TCP, UDP and SCTP."""
    codes, names = _codes(cols.df["proto"])
    key = codes + 1
    nbytes, npkts = cols.wire(), cols.packets()
    if port:
        keep = np.isin(codes, [i for i, n in enumerate(names) if n in ("tcp", "udp", "sctp")])
        key = (key * 65536 + cols.f64("id.resp_p").astype(np.int64))[keep]
        nbytes, npkts = nbytes[keep], npkts[keep]
    ids, keys = _dense(key)
    n = len(keys)
    protos = np.array(["", *map(str, names)], dtype=object)[keys // 65536 if port else keys]
    out = pd.DataFrame({"proto": protos})
    if port:
        out["port"] = keys % 65536
    out["flows"] = _sum(ids, None, n)
    out["bytes"] = _sum(ids, nbytes, n)
    out["packets"] = _sum(ids, npkts, n)
    return out


def _series(
    cols: _Columns, o: npt.NDArray[np.int64], r: npt.NDArray[np.int64], n_eps: int, step: float
) -> pd.DataFrame:
    """Bytes, packets and flows per (end // step, endpoint) touched by the records."""
    bucket = ((cols.f64("ts") + cols.f64("duration")) // step).astype(np.int64)
    first = int(bucket.min()) if len(bucket) else 0
    rel = bucket - first
    own = r != o  # a flow within one endpoint counts once for it
    o_key = rel * n_eps + o
    r_key = rel[own] * n_eps + r[own]
    key, keys = _dense(np.concatenate([o_key, r_key]))
    n = len(keys)
    nbytes, npkts = cols.wire(), cols.packets()
    return pd.DataFrame(
        {
            "bucket": keys // max(n_eps, 1) + first,
            "endpoint": keys % max(n_eps, 1),
            "bytes": _sum(key, np.concatenate([nbytes, nbytes[own]]), n),
            "packets": _sum(key, np.concatenate([npkts, npkts[own]]), n),
            "flows": _sum(key, None, n),
        }
    )


def _counts(cols: _Columns) -> tuple[dict[str, int], npt.NDArray[np.bool_]]:
    # sums over the TCP rows with where=: filtering would copy each column first
    df = cols.df
    proto, proto_names = _codes(df["proto"])
    tcp = proto == next((i for i, n in enumerate(proto_names) if n == "tcp"), -2)

    def total(name: str) -> int:
        return int(np.rint(np.sum(cols.f64(name), where=tcp)))

    rst = cols.f64("tcp_rst")
    codes, names = _codes(df["conn_state"])
    found = {str(n): i for i, n in enumerate(names)}
    rcode = df["dns_rcode"]
    return {
        "tcp_flows": int(tcp.sum()),
        "tcp_packets": int(np.rint(np.sum(cols.packets(), where=tcp))),
        "tcp_retrans": total("tcp_retrans_orig") + total("tcp_retrans_resp"),
        "tcp_resets": total("tcp_rst"),
        "tcp_flows_reset": int(np.count_nonzero((rst > 0) & tcp)),
        "tcp_rej": int(np.count_nonzero((codes == found.get("REJ", -2)) & tcp)),
        "tcp_s0": int(np.count_nonzero((codes == found.get("S0", -2)) & tcp)),
        "dns_queries": int(df["dns_queries"].fillna(0).sum()),
        "dns_flows": int(df["dns_queries"].notna().sum()),
        "dns_nxdomain": int((rcode == 3).sum()),
        "dns_servfail": int((rcode == 2).sum()),
    }, tcp


def summarize(df: pd.DataFrame, step: float) -> Summary:
    """The summary of the records ``df`` (a report's DataFrame), its series by ``step`` seconds."""
    o, r, names = _endpoints(df)
    cols = _Columns(df)
    counts, tcp = _counts(cols)
    end = cols.f64("ts") + cols.f64("duration")
    return Summary(
        step=step,
        records=len(df),
        first_end=float(end.min()) if len(end) else None,
        last_end=float(end.max()) if len(end) else None,
        endpoints=_endpoint_sums(cols, o, r, names),
        pairs=_pair_sums(cols, o, r, len(names)),
        protocols=_mix(cols),
        ports=_mix(cols, port=True),
        series=_series(cols, o, r, len(names), step),
        counts=counts,
        rtt=LogHistogram.of(cols.nan("tcp_rtt_client")[tcp]),
        dns_latency=LogHistogram.of(cols.nan("dns_latency")),
    )


def empty(step: float) -> Summary:
    """The summary of no records."""

    def frame(*names: str) -> pd.DataFrame:
        return pd.DataFrame({n: np.zeros(0, object if n in _TEXT else np.int64) for n in names})

    none = LogHistogram.merge([])
    return Summary(
        step=step,
        records=0,
        first_end=None,
        last_end=None,
        endpoints=frame("namespace", "pod", *ENDPOINT_SUMS),
        pairs=frame("src", "dst", *PAIR_SUMS),
        protocols=frame("proto", *MIX_SUMS),
        ports=frame("proto", "port", *MIX_SUMS),
        series=frame("bucket", "endpoint", *SERIES_SUMS),
        counts=dict.fromkeys(COUNTS, 0),
        rtt=none,
        dns_latency=none,
    )


_TEXT = ("namespace", "pod", "proto")


def _sum_by(frame: pd.DataFrame, keys: list[str], sums: tuple[str, ...]) -> pd.DataFrame:
    if frame.empty:
        return frame[[*keys, *sums]].reset_index(drop=True)
    return frame.groupby(keys, as_index=False, sort=False)[list(sums)].sum()


def _add_up(
    key: npt.NDArray[np.int64], values: dict[str, npt.NDArray[np.int64]]
) -> tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[np.int64]]]:
    """The distinct ``key`` values (>= 0) and each of ``values`` summed by them."""
    ids, keys = _dense(key)
    return keys, {c: _sum(ids, v.astype(np.float64), len(keys)) for c, v in values.items()}


def merge(parts: list[Summary], step: float) -> Summary:
    """The summary of the union of the (disjoint) records of ``parts``, all by ``step``."""
    if any(p.step != step for p in parts):
        raise ValueError(f"summaries by {sorted({p.step for p in parts})} s, not {step} s")
    parts = [p for p in parts if p.records]  # an empty part's frames have no dtypes to keep
    if not parts:
        return empty(step)
    eps = pd.concat([p.endpoints for p in parts], ignore_index=True)
    ids, _ = pd.factorize(eps["namespace"] + "\0" + eps["pod"])
    ids = ids.astype(np.int64)
    n = int(ids.max()) + 1 if len(ids) else 0
    endpoints = eps[["namespace", "pod"]].groupby(ids, sort=True).first().reset_index(drop=True)
    for c in ENDPOINT_SUMS:
        endpoints[c] = _sum(ids, eps[c].to_numpy(np.float64), n)
    # each part's endpoint rows as rows of the merged table
    offsets = np.cumsum([0, *(len(p.endpoints) for p in parts)])
    maps = [ids[a:b] for a, b in itertools.pairwise(offsets)]

    def column(frames: list[pd.DataFrame], name: str) -> npt.NDArray[np.int64]:
        return np.concatenate([f[name].to_numpy(np.int64) for f in frames])

    def endpoint(frames: list[pd.DataFrame], name: str) -> npt.NDArray[np.int64]:
        return np.concatenate(
            [m[f[name].to_numpy(np.int64)] for f, m in zip(frames, maps, strict=True)]
        )

    pair_frames = [p.pairs for p in parts]
    src, dst = endpoint(pair_frames, "src"), endpoint(pair_frames, "dst")
    keys, sums = _add_up(src * n + dst, {c: column(pair_frames, c) for c in PAIR_SUMS})
    pairs = pd.DataFrame({"src": keys // n, "dst": keys % n, **sums})
    series_frames = [p.series for p in parts]
    bucket = column(series_frames, "bucket")
    first = int(bucket.min()) if len(bucket) else 0
    key = (bucket - first) * n + endpoint(series_frames, "endpoint")
    keys, sums = _add_up(key, {c: column(series_frames, c) for c in SERIES_SUMS})
    series = pd.DataFrame({"bucket": keys // n + first, "endpoint": keys % n, **sums})
    firsts = [p.first_end for p in parts if p.first_end is not None]
    lasts = [p.last_end for p in parts if p.last_end is not None]
    return Summary(
        step=step,
        records=sum(p.records for p in parts),
        first_end=min(firsts) if firsts else None,
        last_end=max(lasts) if lasts else None,
        endpoints=endpoints,
        pairs=pairs,
        protocols=_sum_by(pd.concat([p.protocols for p in parts]), ["proto"], MIX_SUMS),
        ports=_sum_by(pd.concat([p.ports for p in parts]), ["proto", "port"], MIX_SUMS),
        series=series,
        counts={c: sum(p.counts[c] for p in parts) for c in COUNTS},
        rtt=LogHistogram.merge([p.rtt for p in parts]),
        dns_latency=LogHistogram.merge([p.dns_latency for p in parts]),
    )
