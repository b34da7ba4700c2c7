"""Flow records: one ended flow, in Zeek conn.log vocabulary plus pod and TCP/DNS health columns."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Protocol

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def make_uid(seed: bytes, seq: int) -> str:
    """A Zeek-like connection uid: ``C`` + 17 base62 characters, unique per (seed, seq).

    Hashing a per-table random seed with a sequence number gives ids that do not collide across
    restarts or workers yet cost no global state.
    """
    n = int.from_bytes(
        hashlib.blake2b(seq.to_bytes(8, "little"), key=seed, digest_size=12).digest(), "big"
    )
    out = []
    for _ in range(17):
        n, r = divmod(n, 62)
        out.append(_B62[r])
    return "C" + "".join(out)


@dataclass(frozen=True, slots=True)
class FlowRecord:
    """One ended flow (or one active-timeout slice of a long flow)."""

    ts: float  # first packet, seconds since the epoch
    uid: str
    orig_h: str
    orig_p: int
    resp_h: str
    resp_p: int
    proto: str  # "tcp", "udp", "icmp" (ICMPv6 too, as Zeek does), else the IP protocol number
    service: str | None
    duration: float
    orig_bytes: int
    resp_bytes: int
    conn_state: str
    missed_bytes: int
    history: str
    orig_pkts: int
    orig_ip_bytes: int
    resp_pkts: int
    resp_ip_bytes: int
    orig_l2_bytes: int
    resp_l2_bytes: int
    orig_kind: str
    orig_namespace: str
    orig_pod: str
    orig_node: str
    resp_kind: str
    resp_namespace: str
    resp_pod: str
    resp_node: str
    node: str
    vlan: int
    tunnel_vni: int
    ip_version: int
    tcp_retrans_orig: int = 0
    tcp_retrans_resp: int = 0
    tcp_rst: int = 0
    tcp_zero_win_orig: int = 0
    tcp_zero_win_resp: int = 0
    tcp_rtt_client: float | None = None
    tcp_rtt_server: float | None = None
    dns_query: str | None = None
    dns_qtype: int | None = None
    dns_qtype_name: str | None = None
    dns_rcode: int | None = None
    dns_rcode_name: str | None = None
    dns_latency: float | None = None
    dns_queries: int = 0
    dns_responses: int = 0
    end_reason: str = "end"

    def as_conn_log(self) -> dict[str, Any]:
        """Zeek conn.log field names first, then ours; unset optional fields are left out."""
        out: dict[str, Any] = {
            "ts": self.ts,
            "uid": self.uid,
            "id.orig_h": self.orig_h,
            "id.orig_p": self.orig_p,
            "id.resp_h": self.resp_h,
            "id.resp_p": self.resp_p,
            "proto": self.proto,
        }
        if self.service is not None:
            out["service"] = self.service
        out.update(
            {
                "duration": round(self.duration, 6),
                "orig_bytes": self.orig_bytes,
                "resp_bytes": self.resp_bytes,
                "conn_state": self.conn_state,
                "missed_bytes": self.missed_bytes,
            }
        )
        if self.history:
            out["history"] = self.history
        out.update(
            {
                "orig_pkts": self.orig_pkts,
                "orig_ip_bytes": self.orig_ip_bytes,
                "resp_pkts": self.resp_pkts,
                "resp_ip_bytes": self.resp_ip_bytes,
                "orig_l2_bytes": self.orig_l2_bytes,
                "resp_l2_bytes": self.resp_l2_bytes,
                "orig_kind": self.orig_kind,
                "orig_namespace": self.orig_namespace,
                "orig_pod": self.orig_pod,
                "orig_node": self.orig_node,
                "resp_kind": self.resp_kind,
                "resp_namespace": self.resp_namespace,
                "resp_pod": self.resp_pod,
                "resp_node": self.resp_node,
                "node": self.node,
                "vlan": self.vlan,
                "tunnel_vni": self.tunnel_vni,
                "ip_version": self.ip_version,
            }
        )
        if self.proto == "tcp":
            out.update(
                {
                    "tcp_retrans_orig": self.tcp_retrans_orig,
                    "tcp_retrans_resp": self.tcp_retrans_resp,
                    "tcp_rst": self.tcp_rst,
                    "tcp_zero_win_orig": self.tcp_zero_win_orig,
                    "tcp_zero_win_resp": self.tcp_zero_win_resp,
                }
            )
            if self.tcp_rtt_client is not None:
                out["tcp_rtt_client"] = round(self.tcp_rtt_client, 9)
            if self.tcp_rtt_server is not None:
                out["tcp_rtt_server"] = round(self.tcp_rtt_server, 9)
        if self.dns_queries or self.dns_responses:
            out["dns_queries"] = self.dns_queries
            out["dns_responses"] = self.dns_responses
            for name in ("dns_query", "dns_qtype", "dns_qtype_name", "dns_rcode", "dns_rcode_name"):
                value = getattr(self, name)
                if value is not None:
                    out[name] = value
            if self.dns_latency is not None:
                out["dns_latency"] = round(self.dns_latency, 9)
        out["end_reason"] = self.end_reason
        return out

    def to_json_line(self) -> str:
        """One JSON object, no newline: the writer joins records into JSON lines."""
        return json.dumps(self.as_conn_log(), separators=(",", ":"))


class FlowSink(Protocol):
    """Anything that takes ended flows: a record writer, the metrics exporter, IPFIX."""

    def on_flows_ended(self, records: list[FlowRecord]) -> None: ...
