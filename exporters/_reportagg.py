"""A report's figures from a DataFrame of records: pandas group-bys, no loop over records.

Each side of a flow is first aggregated by its endpoint columns (kind, namespace, pod, node:
categoricals, so the group-by works on integer codes); names are given to the few hundred
resulting endpoints, not to millions of rows. A pod's ``tx`` is what it sent: the originator's
bytes when it opened the flow, the responder's when it answered. Bytes are wire bytes (layer 2,
what tshark calls ``frame.len``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from exporters._reportwindow import Window

#: The first columns of the per-pod table, in this order (CSV's contract).
POD_COLUMNS = ("namespace", "pod", "tx_bytes", "rx_bytes", "tx_packets", "rx_packets", "flows")
EXTERNAL = "external"
BY = ("pod", "namespace", "pair", "protocol", "port")
_INTERVALS = (10.0, 60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 86400.0)
_MAX_BUCKETS = 120
_SIDE_COLS = ("kind", "namespace", "pod", "node")
_QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class Report:
    """Everything one report says; ``exporters._reportrender`` turns it into a format."""

    window: Window  # as asked, its open sides closed by the first/last record end
    source: str
    records: int
    interval_s: float
    pods: pd.DataFrame  # POD_COLUMNS, then tcp_retrans, tcp_resets; by bytes, descending
    namespaces: pd.DataFrame
    pairs: pd.DataFrame  # src, dst (namespace/pod), flows, bytes, packets
    protocols: pd.DataFrame
    ports: pd.DataFrame
    tcp: dict[str, Any]
    dns: dict[str, Any]
    series: pd.DataFrame  # time, endpoint, bytes, packets, flows: the top pods per interval
    rtt_ms: pd.Series  # handshake RTT of every TCP flow with one, for the distribution
    apps: pd.DataFrame | None = None  # --dissect: tshark's application protocols
    #: The security notices of the window (``exporters._noticeread.NOTICE_COLUMNS``, newest
    #: first) and their counts by note and source; None where the source keeps none.
    notices: pd.DataFrame | None = None
    notice_counts: pd.DataFrame | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def table(self, by: str) -> pd.DataFrame:
        """The table ``--by`` names."""
        tables = {
            "pod": self.pods,
            "namespace": self.namespaces,
            "pair": self.pairs,
            "protocol": self.protocols,
            "port": self.ports,
        }
        return tables[by]


_DENSE_LIMIT = 1 << 26  # key spaces up to this size are compacted by a bincount, not a hash


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


class _Columns:
    """The frame's numeric columns as float64 arrays (nulls 0), each converted once.

    Every figure reads the same few columns; converting (and null-filling) a column of 8.6 M
    rows once instead of per figure is most of what a day's report costs after reading.
    """

    def __init__(self, df: pd.DataFrame) -> None:
        self.df = df
        self._f64: dict[str, npt.NDArray[np.float64]] = {}

    def f64(self, name: str) -> npt.NDArray[np.float64]:
        values = self._f64.get(name)
        if values is None:
            values = np.asarray(self.df[name].to_numpy(np.float64, na_value=0.0), np.float64)
            self._f64[name] = values
        return values

    def wire(self) -> npt.NDArray[np.float64]:
        """Both directions' wire bytes per row."""
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


def _endpoint_labels(df: pd.DataFrame, side: str) -> tuple[npt.NDArray[np.int64], pd.DataFrame]:
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


@dataclass(frozen=True)
class _Labels:
    """Both sides of every row as ids into one table of (namespace, pod)."""

    orig: npt.NDArray[np.int64]
    resp: npt.NDArray[np.int64]
    names: pd.DataFrame  # namespace, pod, label by id

    @classmethod
    def of(cls, df: pd.DataFrame) -> _Labels:
        o_codes, o_eps = _endpoint_labels(df, "orig")
        r_codes, r_eps = _endpoint_labels(df, "resp")
        both = pd.concat([o_eps, r_eps], ignore_index=True)
        label = both["namespace"].where(both["namespace"] == "", both["namespace"] + "/")
        label = label + both["pod"]
        ids, uniques = pd.factorize(label)
        names = both.groupby(ids, sort=True).first().reset_index(drop=True)
        names["label"] = np.asarray(uniques, dtype=object)
        o_ids, r_ids = ids[: len(o_eps)], ids[len(o_eps) :]
        return cls(o_ids[o_codes], r_ids[r_codes], names)


def _sum(
    ids: npt.NDArray[np.int64], weights: npt.NDArray[Any] | None, n: int
) -> npt.NDArray[np.int64]:
    # float64 sums are exact up to 2**53: 9 PB of bytes in one report
    return np.rint(np.bincount(ids, weights=weights, minlength=n)).astype(np.int64)


def _pods(cols: _Columns, labels: _Labels) -> pd.DataFrame:
    n = len(labels.names)
    o, r = labels.orig, labels.resp
    _f64 = cols.f64
    ob, rb, op, rp = (_f64(c) for c in ("orig_l2_bytes", "resp_l2_bytes", "orig_pkts", "resp_pkts"))
    resets = (_f64("tcp_rst") > 0).astype(np.float64)
    other = r != o  # a flow between two addresses of one pod is one of its flows, not two
    pods = labels.names[["namespace", "pod"]].copy()
    pods["tx_bytes"] = _sum(o, ob, n) + _sum(r, rb, n)
    pods["rx_bytes"] = _sum(o, rb, n) + _sum(r, ob, n)
    pods["tx_packets"] = _sum(o, op, n) + _sum(r, rp, n)
    pods["rx_packets"] = _sum(o, rp, n) + _sum(r, op, n)
    pods["flows"] = _sum(o, None, n) + _sum(r[other], None, n)
    pods["tcp_retrans"] = _sum(o, _f64("tcp_retrans_orig"), n) + _sum(
        r, _f64("tcp_retrans_resp"), n
    )
    pods["tcp_resets"] = _sum(o, resets, n) + _sum(r[other], resets[other], n)
    order = (pods["tx_bytes"] + pods["rx_bytes"]).sort_values(ascending=False, kind="stable")
    return pods.loc[order.index].reset_index(drop=True)


def _namespaces(pods: pd.DataFrame) -> pd.DataFrame:
    ns = pods.assign(namespace=pods["namespace"].where(pods["namespace"] != "", pods["pod"]))
    out = ns.drop(columns=["pod"]).groupby("namespace", as_index=False).sum()
    out.insert(1, "pods", ns.groupby("namespace")["pod"].nunique().to_numpy())
    return out.sort_values("tx_bytes", ascending=False, kind="stable").reset_index(drop=True)


def _pairs(cols: _Columns, labels: _Labels) -> pd.DataFrame:
    n_labels = len(labels.names)
    pair, keys = _dense(labels.orig * n_labels + labels.resp)
    n = len(keys)
    names = labels.names["label"].to_numpy()
    out = pd.DataFrame({"src": names[keys // n_labels], "dst": names[keys % n_labels]})
    out["flows"] = _sum(pair, None, n)
    out["bytes_to_dst"] = _sum(pair, cols.f64("orig_l2_bytes"), n)
    out["bytes_to_src"] = _sum(pair, cols.f64("resp_l2_bytes"), n)
    out.insert(3, "bytes", out["bytes_to_dst"] + out["bytes_to_src"])
    out["packets"] = _sum(pair, cols.packets(), n)
    return out.sort_values("bytes", ascending=False, kind="stable").reset_index(drop=True)


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
    return out.sort_values("bytes", ascending=False, kind="stable").reset_index(drop=True)


def _quantiles(values: pd.Series, scale: float) -> dict[str, float | None]:
    clean = values.dropna()
    names = ("p50", "p95", "p99")
    if clean.empty:
        return dict.fromkeys(names)
    qs = clean.quantile(list(_QUANTILES)).to_numpy() * scale
    return {n: round(float(q), 3) for n, q in zip(names, qs, strict=True)}


def _tcp(cols: _Columns) -> tuple[dict[str, Any], pd.Series]:
    # sums over the TCP rows with where=: filtering would copy each column first
    df = cols.df
    proto, proto_names = _codes(df["proto"])
    tcp_code = next((i for i, n in enumerate(proto_names) if n == "tcp"), -2)
    tcp = proto == tcp_code

    def total(name: str) -> float:
        return float(np.sum(cols.f64(name), where=tcp))

    retrans = int(total("tcp_retrans_orig") + total("tcp_retrans_resp"))
    packets = int(np.sum(cols.packets(), where=tcp))
    rst = cols.f64("tcp_rst")
    codes, names = _codes(df["conn_state"])
    found = {str(n): i for i, n in enumerate(names)}
    rtt = df["tcp_rtt_client"].to_numpy(np.float64, na_value=np.nan)[tcp]
    rtt_ms = pd.Series(rtt[~np.isnan(rtt)] * 1000.0)
    out: dict[str, Any] = {
        "flows": int(tcp.sum()),
        "packets": packets,
        "retransmissions": retrans,
        "retransmission_rate": round(retrans / packets, 6) if packets else 0.0,
        "resets": int(np.sum(rst, where=tcp)),
        "flows_reset": int(np.count_nonzero((rst > 0) & tcp)),
        "rej": int(np.count_nonzero((codes == found.get("REJ", -2)) & tcp)),
        "s0": int(np.count_nonzero((codes == found.get("S0", -2)) & tcp)),
    }
    out.update({f"rtt_{k}_ms": v for k, v in _quantiles(rtt_ms, 1.0).items()})
    return out, rtt_ms


def _dns(df: pd.DataFrame) -> dict[str, Any]:
    rcode = df["dns_rcode"]
    out: dict[str, Any] = {
        "queries": int(df["dns_queries"].fillna(0).sum()),
        "flows": int(df["dns_queries"].notna().sum()),
        "nxdomain": int((rcode == 3).sum()),
        "servfail": int((rcode == 2).sum()),
    }
    out.update({f"latency_{k}_ms": v for k, v in _quantiles(df["dns_latency"], 1000.0).items()})
    return out


def _interval(window: Window) -> float:
    span = (window.end or 0.0) - (window.start or 0.0)
    for step in _INTERVALS:
        if span / step <= _MAX_BUCKETS:
            return step
    return _INTERVALS[-1]


def _series(cols: _Columns, labels: _Labels, interval: float, top: list[str]) -> pd.DataFrame:
    end = cols.f64("ts") + cols.f64("duration")
    bucket = (end // interval).astype(np.int64)
    first = int(bucket.min()) if len(bucket) else 0
    bucket -= first
    n_buckets = int(bucket.max()) + 1 if len(bucket) else 0
    # only the top endpoints get a series: the others share one slot, dropped below
    chosen = labels.names["label"].isin(top).to_numpy()
    slot = np.full(len(labels.names), len(top), np.int64)
    slot[chosen] = np.arange(int(chosen.sum()))
    width = len(top) + 1
    size = n_buckets * width
    nbytes, npkts = cols.wire(), cols.packets()
    o_key = bucket * width + slot[labels.orig]
    own = labels.resp != labels.orig  # a flow within one endpoint counts once for it
    r_key = bucket[own] * width + slot[labels.resp[own]]

    def both(weights: npt.NDArray[np.float64] | None) -> npt.NDArray[np.float64]:
        rw = None if weights is None else weights[own]
        totals = np.bincount(o_key, weights, size) + np.bincount(r_key, rw, size)
        return np.asarray(totals, np.float64)

    flows, nb, npk = both(None), both(nbytes), both(npkts)
    k = np.flatnonzero((flows > 0) & (np.arange(size) % width < len(top)))
    names = labels.names["label"].to_numpy()[np.flatnonzero(chosen)]
    out = pd.DataFrame(
        {
            "time": pd.to_datetime((k // width + first) * interval, unit="s", utc=True),
            "endpoint": names[k % width] if len(names) else np.array([], object),
            "bytes": np.rint(nb[k]).astype(np.int64),
            "packets": np.rint(npk[k]).astype(np.int64),
            "flows": flows[k].astype(np.int64),
        }
    )
    return out.sort_values(["time", "endpoint"]).reset_index(drop=True)


def build_report(
    df: pd.DataFrame,
    window: Window,
    source: str,
    *,
    top: int = 10,
    interval_s: float | None = None,
) -> Report:
    """The report of records ``df`` (already cut to ``window``) from ``source``."""
    if not df.empty:
        end = df["ts"] + df["duration"]
        window = Window(
            window.start if window.start is not None else float(end.min()),
            window.end if window.end is not None else float(end.max()) + 1e-6,
        )
    interval = interval_s or _interval(window)
    labels = _Labels.of(df)
    cols = _Columns(df)
    pods = _pods(cols, labels)
    names = pods["namespace"].where(pods["namespace"] == "", pods["namespace"] + "/")
    top_names = (names + pods["pod"]).head(top).tolist()
    tcp, rtt_ms = _tcp(cols)
    return Report(
        window=window,
        source=source,
        records=len(df),
        interval_s=interval,
        pods=pods,
        namespaces=_namespaces(pods),
        pairs=_pairs(cols, labels),
        protocols=_mix(cols),
        ports=_mix(cols, port=True),
        tcp=tcp,
        dns=_dns(df),
        series=_series(cols, labels, interval, top_names),
        rtt_ms=rtt_ms,
    )
