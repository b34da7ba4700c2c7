"""Flow records against the generator's truth, as one benchmark figure: which totals differ."""

from __future__ import annotations

from bench._gen import Truth
from bench._report import Figure

__all__ = ["audit_figure"]


def audit_figure(section: str, name: str, audit: dict[str, int], truth: Truth) -> Figure:
    """How many of the truth's totals the flow records fail to reproduce, and which."""
    want = {
        "packets": truth.packets,
        "wire_bytes": truth.wire_bytes,
        "ipv6_flows": truth.ipv6_flows,
        "vlan_flows": truth.vlan_flows,
        "dns_flows": truth.dns_flows,
        "dns_nxdomain": truth.dns_nxdomain,
        "SF": truth.tcp_fin,
        "RSTO+RSTR": truth.tcp_rst,
        "REJ": truth.tcp_rej,
    }
    got = {k: audit.get(k, 0) for k in want if k.islower()}
    got["SF"] = audit.get("tcp conn_state SF", 0)
    got["RSTO+RSTR"] = audit.get("tcp conn_state RSTO", 0) + audit.get("tcp conn_state RSTR", 0)
    got["REJ"] = audit.get("tcp conn_state REJ", 0)
    wrong = [k for k in want if got[k] != want[k]]
    note = (
        "all of " + ", ".join(want)
        if not wrong
        else "; ".join(f"{k} {got[k]:,}/{want[k]:,}" for k in wrong) + " (records/truth)"
    )
    return Figure.value_of(
        section, name, len(wrong), "mismatches", target="= 0", ok=not wrong, note=note
    )
