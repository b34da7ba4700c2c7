# ruff: noqa: C408, S101 - a measuring script: dicts of named arrays, asserts as checks
"""The issue-15 spike: the record walk and the TCP event path in Python, numba and Cython.

Run with a venv holding the project, numba and Cython (README "Compiled hot path"):
``PYTHONPATH=. python scripts/jit_spike/run.py PCAP``. Prints ns per record / event for each,
numba's compile (first call, cache cleared) and cache-load (first call in a new process) costs,
and Cython's build time; the event stream is the TCP rows of PCAP's first 64 k-frame batch.
"""

from __future__ import annotations

import functools
import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _best(fn, repeat=5):
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def build_cython() -> float:
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cython", "-3", "walk_cy.pyx", "tcp_cy.pyx"],
        cwd=HERE,
        check=True,
    )
    inc = subprocess.run(
        [sys.executable, "-c", "import sysconfig;print(sysconfig.get_paths()['include'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    suffix = subprocess.run(
        [sys.executable, "-c", "import sysconfig;print(sysconfig.get_config_var('EXT_SUFFIX'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    for name in ("walk_cy", "tcp_cy"):
        subprocess.run(
            ["gcc", "-O3", "-shared", "-fPIC", f"-I{inc}", f"{name}.c", "-o", f"{name}{suffix}"],
            cwd=HERE,
            check=True,
        )
    return time.perf_counter() - t


def events(pcap: str):
    """A realistic event stream: every TCP row of the first batch, per flow in arrival order."""
    from analyzers import decode  # noqa: PLC0415
    from capture import open_capture_file  # noqa: PLC0415

    with open_capture_file(pcap) as src:
        batch = next(iter(src.batches()))
        dec = decode(batch)
    tcp = np.flatnonzero(dec.proto == 6)
    a = dec.sport[tcp].astype(np.int64) * 65536 + dec.dport[tcp]
    b = dec.dport[tcp].astype(np.int64) * 65536 + dec.sport[tcp]
    key = np.minimum(a, b)
    _, slot = np.unique(key, return_inverse=True)
    d = (a != key).astype(np.int64)
    order = np.argsort(slot, kind="stable")
    rows = tcp[order]
    return dict(
        ev_slot=slot[order].astype(np.int64),
        ev_dir=d[order],
        ev_flags=dec.tcp_flags[rows].astype(np.int64),
        ev_seq=dec.tcp_seq[rows].astype(np.int64),
        ev_plen=dec.l4_len[rows].astype(np.int64),
        ev_win=dec.tcp_win[rows].astype(np.int64),
        ev_ts=batch.ts_ns[rows].astype(np.int64),
        ev_t=np.zeros(rows.size, np.bool_),
    ), int(slot.max()) + 1


def columns(n: int) -> dict[str, np.ndarray]:
    u8 = lambda: np.zeros((n, 2), np.uint8)  # noqa: E731
    u32 = lambda: np.zeros((n, 2), np.uint32)  # noqa: E731
    return dict(
        state=u8(),
        prev=u8(),
        seen=u8(),
        syn_mark=u32(),
        fin_mark=u32(),
        rst_mark=u32(),
        zero_win=u32(),
        rst_count=u32(),
        syn_ts=np.zeros(n, np.int64),
        synack_ts=np.zeros(n, np.int64),
        ack_ts=np.zeros(n, np.int64),
        did_close=u8(),
        close_ts=np.zeros(n, np.int64),
        hist=np.zeros((n, 16), np.uint8),
    )


def _layout_first(walk, layout, data, pos, _hdrlen, _big, _mult, _max, *cols):  # type: ignore[no-untyped-def]
    """Today's walk, called as the spike's (which passed the file's layout field by field)."""
    return walk(data, pos, layout, *cols)


def main() -> None:
    pcap = sys.argv[1]
    mode = sys.argv[2] if len(sys.argv) > 2 else "all"
    sys.path.insert(0, str(HERE))
    data = np.fromfile(pcap, np.uint8)
    if mode == "numba-first":  # a new process: import + first call (compile or cache load)
        t = time.perf_counter()
        from analyzers._tcpkernel import tcp_events  # noqa: PLC0415
        from capture._pcapfile import PcapLayout  # noqa: PLC0415
        from capture._recwalk import walk_records  # noqa: PLC0415

        t_imp = time.perf_counter() - t
        cols = [np.empty(16, np.int64) for _ in range(4)]
        t = time.perf_counter()
        walk_records(data, 24, PcapLayout(16, False, 1000, 1 << 20, 1), *cols)
        t_walk = time.perf_counter() - t
        ev, n = events(pcap)
        t = time.perf_counter()
        tcp_events(
            *ev.values(), *columns(n).values(), np.zeros((3 * len(ev["ev_slot"]), 2), np.int64)
        )
        t_tcp = time.perf_counter() - t
        print(
            f"numba import {t_imp * 1e3:.0f} ms, first walk {t_walk * 1e3:.0f} ms, "
            f"first tcp {t_tcp * 1e3:.0f} ms"
        )
        return
    if mode == "cython-first":
        t = time.perf_counter()
        import tcp_cy  # noqa: PLC0415
        import walk_cy  # noqa: PLC0415

        print(f"cython import {(time.perf_counter() - t) * 1e3:.1f} ms")
        return
    # cold costs, each in a fresh process
    for d in (ROOT / "capture" / "__pycache__", ROOT / "analyzers" / "__pycache__"):
        for f in d.glob("_recwalk*.nb*"):
            f.unlink()
        for f in d.glob("_tcpkernel*.nb*"):
            f.unlink()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for label in ("compile (cache empty)", "cache load (later run)"):
        out = subprocess.run(
            [sys.executable, __file__, pcap, "numba-first"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        print(f"numba {label}: {out}")
    print(f"cython build (cythonize + gcc -O3, 2 modules): {build_cython():.1f} s")
    out = subprocess.run(
        [sys.executable, __file__, pcap, "cython-first"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(out)
    walk_cy = importlib.import_module("walk_cy")
    tcp_cy = importlib.import_module("tcp_cy")
    from analyzers._tcpkernel import tcp_events  # noqa: PLC0415
    from analyzers._tcpstate import TcpScratch  # noqa: PLC0415
    from capture._pcapfile import PcapFileSource, PcapLayout  # noqa: PLC0415
    from capture._recwalk import walk_records  # noqa: PLC0415

    layout = PcapLayout(16, False, 1000, 1 << 20, 1)

    nrec = 0
    with PcapFileSource(pcap) as src:
        for b in src.batches():
            nrec += len(b)

    def py_walk() -> None:
        with PcapFileSource(pcap) as src:
            for _ in src.batches():
                pass

    cap = 1 << 16
    cols = [np.empty(cap, np.int64) for _ in range(4)]

    def kernel_walk(fn) -> None:
        pos = 24
        while True:
            n, pos, _ = fn(data, pos, 16, False, 1000, 1 << 20, *cols)
            if n < cap:
                break

    print(f"walk ({nrec} records): ns/record")
    print(f"  python (today's _walk_pcap + gather): {_best(py_walk) / nrec * 1e9:.1f}")
    numba_walk = functools.partial(_layout_first, walk_records, layout)
    print(f"  numba:  {_best(lambda: kernel_walk(numba_walk)) / nrec * 1e9:.1f}")
    print(f"  cython: {_best(lambda: kernel_walk(walk_cy.walk_records)) / nrec * 1e9:.1f}")
    ev, n = events(pcap)
    m = len(ev["ev_slot"])
    spill = np.zeros((3 * m, 2), np.int64)

    def numba_tcp() -> None:
        tcp_events(*ev.values(), *columns(n).values(), spill)

    def cy_tcp() -> None:
        e = dict(ev, ev_t=ev["ev_t"].view(np.uint8))
        tcp_cy.tcp_events(*e.values(), *columns(n).values(), spill)

    def py_tcp() -> None:
        objs = [
            TcpScratch(
                "",
                [0, 0],
                [0, 0],
                [0, 0],
                [0, 0],
                [0, 0],
                [0, 0],
                [0, 0],
                [0, 0],
                0,
                0,
                0,
                [0, 0],
                0,
            )
            for _ in range(n)
        ]
        for s, e, fl, sq, pl, wn, t, tl in zip(*(v.tolist() for v in ev.values()), strict=True):
            objs[s].event(e, fl, sq, pl, wn, t, tl)

    t_cols = _best(lambda: columns(n))
    print(
        f"tcp events ({m} segments, {n} flows; every segment, not only the screened ones): ns/event"
    )
    print(f"  python (TcpScratch.event): {_best(py_tcp) / m * 1e9:.1f}")
    print(f"  numba:  {(_best(numba_tcp) - t_cols) / m * 1e9:.1f}")
    print(f"  cython: {(_best(cy_tcp) - t_cols) / m * 1e9:.1f}")
    a = columns(n)
    b = columns(n)
    tcp_events(*ev.values(), *a.values(), spill)
    tcp_cy.tcp_events(*dict(ev, ev_t=ev["ev_t"].view(np.uint8)).values(), *b.values(), spill)
    assert all((a[k] == b[k]).all() for k in a), "numba and Cython disagree"


if __name__ == "__main__":
    main()
