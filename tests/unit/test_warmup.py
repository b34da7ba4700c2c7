"""The service's warm-up loads every kernel a live ring's traffic then needs.

In a fresh interpreter (nothing loaded yet): the frames of four zeek-dev traces (HTTP, DHCP,
POP3, an FTP transfer: TCP connections, UDP, DNS-less and DNS-port datagrams) are read, then
``warm_up`` runs, then the frames go through a new pipeline as ring blocks, the way the service
gets them. No compiled kernel may gain a signature after the warm-up: each one would be a load
(or, after an install, a compile) stalling the first packets.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TRACES = REPO.parent / "shared" / "corpus" / "zeek-dev" / "traces"
NAMES = ("http__get.pcap", "dhcp__dhcp.pcap", "pop3__pop3.pcap", "ftp__bigtransfer.pcap")

_SCRIPT = """
import json, sys
import numba
import numpy as np
from analyzers import AnalysisPipeline, IdentityMap, PipelineOptions, warm_up
from capture import LINKTYPE_ETHERNET, block_to_batch, lay_out_block, open_capture_file

def signatures():
    out = {}
    for name, mod in list(sys.modules.items()):
        if name.split(".")[0] in ("analyzers", "capture"):
            for attr, obj in list(vars(mod).items()):
                if isinstance(obj, numba.core.registry.CPUDispatcher):
                    out[f"{name}.{attr}"] = len(obj.signatures)
    return out

frames = []
for path in sys.argv[1:]:
    with open_capture_file(path) as src:
        for batch in src.batches():
            assert batch.linktype == LINKTYPE_ETHERNET
            frames += [
                (batch.frame(i), int(batch.wirelens[i]), int(batch.ts_ns[i]), 0, 0, 0)
                for i in range(len(batch))
            ]
read = signatures()
took = warm_up(PipelineOptions())
before = signatures()
pipe = AnalysisPipeline(IdentityMap())
for a in range(0, len(frames), 300):
    part = frames[a : a + 300]
    block, first = lay_out_block(part)
    data = np.frombuffer(block, np.uint8)
    pipe.on_batch(block_to_batch(data, len(part), first, pipe.walker.walk_block))
pipe.flush()
after = signatures()
print(json.dumps({
    "frames": len(frames),
    "records": pipe.counters().flows_ended,
    "warmed": sorted(k for k, v in before.items() if v > read.get(k, 0)),
    "new": {k: v - before.get(k, 0) for k, v in after.items() if v > before.get(k, 0)},
}))
"""


def test_after_the_warm_up_live_traffic_loads_no_kernel() -> None:
    paths = [TRACES / name for name in NAMES]
    if not all(p.is_file() for p in paths):
        pytest.fail(f"the zeek-dev traces are missing under {TRACES}")
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        timeout=300,
    ).stdout
    got = json.loads(out.splitlines()[-1])
    assert got["frames"] > 200
    assert got["records"] > 10
    # the per-packet path's kernels are what the warm-up loaded
    for kernel in ("_decode.decode_rows", "_knownflows._account_known", "_dedupkernel.find_copies"):
        assert any(name.endswith(kernel) for name in got["warmed"]), (kernel, got["warmed"])
    assert got["new"] == {}
