"""``report --dissect``: packets and bytes by application protocol, named by tshark's dissectors.

pyshark drives one tshark over each file and hands back each dissected packet's highest layer and
frame length: the only place a report looks at packets one by one, and only offline. (pyshark's
``only_summaries`` mode would be lighter but loses the first packet of a file.)
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd


def app_protocols(paths: list[Path]) -> pd.DataFrame:
    """protocol, packets, bytes: the highest layer tshark names in each packet of ``paths``.

    Every packet of the files: tshark takes no tcpdump filter when it reads a file.
    """
    import pyshark  # noqa: PLC0415 - needs tshark; only --dissect pays for it

    packets: Counter[str] = Counter()
    nbytes: Counter[str] = Counter()
    for path in paths:
        cap = pyshark.FileCapture(str(path), keep_packets=False)
        try:
            for pkt in cap:
                proto = str(pkt.highest_layer)
                packets[proto] += 1
                nbytes[proto] += int(pkt.length)
        finally:
            cap.close()
    out = pd.DataFrame(
        {"protocol": list(packets), "packets": list(packets.values())},
    )
    out["bytes"] = [nbytes[p] for p in out["protocol"]]
    return out.sort_values("bytes", ascending=False, kind="stable").reset_index(drop=True)
