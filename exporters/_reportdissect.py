"""``report --dissect``: packets and bytes by application protocol, named by tshark's dissectors.

pyshark drives one tshark over each file and hands back each dissected packet's highest layer and
frame length: the only place a report looks at packets one by one, and only offline. (pyshark's
``only_summaries`` mode would be lighter but loses the first packet of a file.)
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)


def app_protocols(paths: list[Path]) -> pd.DataFrame:
    """protocol, packets, bytes: the highest layer tshark names in each packet of ``paths``.

    Every packet of the files: tshark takes no tcpdump filter when it reads a file.
    """
    import pyshark  # noqa: PLC0415 - needs tshark; only --dissect pays for it
    from pyshark.capture.capture import TSharkCrashException  # noqa: PLC0415

    packets: Counter[str] = Counter()
    nbytes: Counter[str] = Counter()
    try:
        for path in paths:
            cap = pyshark.FileCapture(str(path), keep_packets=False)
            read_all = False
            try:
                for pkt in cap:
                    proto = str(pkt.highest_layer)
                    packets[proto] += 1
                    nbytes[proto] += int(pkt.length)
                read_all = True
            finally:
                try:
                    cap.close()
                except TSharkCrashException as e:
                    if not read_all:
                        raise
                    # every packet was read: only tshark's exit status is lost (asyncio reports
                    # 255 for a child another waiter reaped first, "Unknown child process")
                    log.warning(
                        "tshark's exit status on %s was lost after all its packets (%s)", path, e
                    )
    finally:
        _detach_child_watcher()
    out = pd.DataFrame(
        {"protocol": list(packets), "packets": list(packets.values())},
    )
    out["bytes"] = [nbytes[p] for p in out["protocol"]]
    return out.sort_values("bytes", ascending=False, kind="stable").reset_index(drop=True)


def _detach_child_watcher() -> None:
    """Undo what pyshark leaves behind in the main thread: a SafeChildWatcher on the event loop.

    Its SIGCHLD handler writes every later child exit of this process to the loop's wakeup
    socket, which nobody reads once pyshark is done; when that socket is full, Python prints
    "Exception ignored ... BlockingIOError" for each child that exits (a service or test that
    dissected once and starts subprocesses afterwards).
    """
    if threading.current_thread() is not threading.main_thread():
        return  # pyshark attaches a watcher only in the main thread
    watcher = asyncio.get_child_watcher()
    if isinstance(watcher, asyncio.SafeChildWatcher):
        watcher.close()  # removes the SIGCHLD handler and, with it, the wakeup fd
        asyncio.set_child_watcher(asyncio.ThreadedChildWatcher())  # asyncio's own default
