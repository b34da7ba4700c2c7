"""``report --dissect``: packets and bytes by application protocol, named by tshark's dissectors.

pyshark drives one tshark over each file and hands back its summary lines (protocol column and
frame length): the only place a report looks at packets one by one, and only offline.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd


def app_protocols(paths: list[Path], bpf: str | None = None) -> pd.DataFrame:
    """protocol, packets, bytes: the highest layer tshark names in each packet."""
    import pyshark  # noqa: PLC0415 - needs tshark; only --dissect pays for it

    packets: Counter[str] = Counter()
    nbytes: Counter[str] = Counter()
    for path in paths:
        cap = pyshark.FileCapture(
            str(path), only_summaries=True, keep_packets=False, bpf_filter=bpf
        )
        try:
            for pkt in cap:
                proto = str(pkt.protocol)
                packets[proto] += 1
                nbytes[proto] += int(pkt.length)
        finally:
            cap.close()
    out = pd.DataFrame(
        {"protocol": list(packets), "packets": list(packets.values())},
    )
    out["bytes"] = [nbytes[p] for p in out["protocol"]]
    return out.sort_values("bytes", ascending=False, kind="stable").reset_index(drop=True)
