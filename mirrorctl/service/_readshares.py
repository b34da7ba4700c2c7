"""`capture read --workers N`: N processes over the same files, each analysing a share of the flows.

Each worker reads every frame (the record walk and the decoder are cheap next to the flow table)
and keeps the flows of its share (``analyzers.PipelineOptions.share``: a hash of both endpoints,
so a flow's packets stay together, as PACKET_FANOUT_HASH keeps them live). Duplicate suppression
looks at all the frames in every worker, so the union of the shares' records is exactly what one
process writes, uids aside. The parent copies the workers' record lines to stdout whole (never a
line of one worker cut by another's) and sums their counters for the summary.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import selectors
import sys
from dataclasses import replace
from typing import IO, Any

from analyzers import IdentityMap, PipelineCounters
from capture import CaptureError
from mirrorctl.ovs import UsageError
from mirrorctl.service._assemble import Outputs, assemble
from mirrorctl.service._config import pipeline_options

__all__ = ["read_shares"]

_Report = tuple[PipelineCounters, list[str]]  # a worker's counters and its read errors


def _worker(  # noqa: PLR0917 - the body of a forked process, its arguments fixed by the fork
    args: argparse.Namespace,
    identity: IdentityMap,
    node: str,
    index: int,
    count: int,
    out_fd: int,
    conn: mpc.Connection,
) -> None:
    with os.fdopen(out_fd, "w", encoding="utf-8", buffering=1 << 16) as out:
        options = replace(pipeline_options(args), share=(index, count))
        assembly = assemble(identity, Outputs(records_stream=out), node=node, options=options)
        errors = [str(e) for e in assembly.read_files(args.files, args.filter)]
        assembly.close()
        counters = assembly.pipeline.counters()
    conn.send((counters, errors))
    conn.close()


def _copy_lines(fds: list[int], dest: IO[str]) -> None:
    """Copy whole lines from every fd to ``dest`` as they come, until every fd is at EOF."""
    sel = selectors.DefaultSelector()
    partial: dict[int, bytes] = {}
    for fd in fds:
        sel.register(fd, selectors.EVENT_READ)
        partial[fd] = b""
    out = dest.buffer if hasattr(dest, "buffer") else None
    while partial:
        for key, _ in sel.select():
            fd = int(key.fd)
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                sel.unregister(fd)
                os.close(fd)
                rest = partial.pop(fd)
                whole = rest
            else:
                data = partial[fd] + chunk
                cut = data.rfind(b"\n") + 1
                whole, partial[fd] = data[:cut], data[cut:]
            if whole:
                if out is not None:
                    out.write(whole)
                else:
                    dest.write(whole.decode("utf-8"))
    dest.flush()


def _merged(reports: list[_Report]) -> PipelineCounters:
    cs = [c for c, _ in reports]
    malformed: dict[str, int] = {}
    by_proto: dict[str, int] = {}
    for c in cs:
        for k, v in c.malformed.items():
            malformed[k] = malformed.get(k, 0) + v
        for k, v in c.records_by_proto.items():
            by_proto[k] = by_proto.get(k, 0) + v
    return PipelineCounters(
        packets=sum(c.packets for c in cs),
        malformed=malformed,
        duplicates=cs[0].duplicates,  # every share finds the same copies among all the frames
        flows_created=sum(c.flows_created for c in cs),
        flows_active=sum(c.flows_active for c in cs),
        flows_ended=sum(c.flows_ended for c in cs),
        records_by_proto=by_proto,
    )


def read_shares(
    args: argparse.Namespace, identity: IdentityMap, node: str, count: int
) -> tuple[PipelineCounters, list[str]]:
    """Run ``count`` workers over ``args.files``; their merged counters and read errors."""
    if args.notices is not None or args.ipfix:
        raise UsageError(
            "--workers > 1 writes flow records only: --notices and --ipfix need one process "
            "that sees every flow (drop --workers)"
        )
    ctx = mp.get_context("fork")
    sys.stdout.flush()
    procs: list[tuple[Any, mpc.Connection]] = []
    fds: list[int] = []
    for index in range(count):
        r, w = os.pipe()
        parent_end, child_end = ctx.Pipe(duplex=False)
        p = ctx.Process(
            target=_worker,
            args=(args, identity, node, index, count, w, child_end),
            name=f"mirrorscope-read-{index}",
            daemon=True,
        )
        p.start()
        os.close(w)
        child_end.close()
        procs.append((p, parent_end))
        fds.append(r)
    _copy_lines(fds, sys.stdout)
    reports: list[_Report] = []
    failed: list[str] = []
    for p, conn in procs:
        try:
            reports.append(conn.recv())
        except EOFError:
            failed.append(str(p.name))
        p.join()
    if failed:
        raise CaptureError(f"worker(s) {', '.join(failed)} died before reporting", source="read")
    # every worker reads every frame, so each meets the same damage: worker 0 says it once
    return _merged(reports), reports[0][1]
