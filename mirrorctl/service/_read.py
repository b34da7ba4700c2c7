"""`capture read`: pcap/pcapng files analysed offline into flow records on stdout."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import IO

from analyzers import Endpoint, EndpointKind, IdentityMap, NoticeOptions, PipelineCounters
from capture import CaptureError, compile_filter
from mirrorctl import ovs
from mirrorctl.ovs import UsageError
from mirrorctl.service._assemble import Outputs, assemble
from mirrorctl.service._config import ipfix_options, notice_options, pipeline_options
from mirrorctl.service._identity import endpoint_named
from mirrorctl.service._readshares import read_shares


def _identity_file(path: Path, identity: IdentityMap) -> None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"cannot read --identity {path}: {e.strerror}") from e
    except json.JSONDecodeError as e:
        raise UsageError(f"--identity {path} is not JSON: {e}") from e
    entries: list[tuple[str, Endpoint]] = []
    try:
        if isinstance(doc, dict) and "pods" in doc and "node_port" in doc:  # a lab state file
            node = str(doc["node_port"]["node_name"])
            for p in doc["pods"]:
                ep = Endpoint(EndpointKind.POD, str(p["namespace"]), str(p["name"]), node)
                entries += [(str(p["ipv4"]), ep), (str(p["ipv6"]), ep)]
            entries.append((str(doc["node_port"]["ipv4"]), Endpoint(EndpointKind.NODE, node=node)))
        elif isinstance(doc, dict):
            for addr, name in doc.items():
                entries.append((addr, endpoint_named(str(name))))
        else:
            raise TypeError("not an object")
        identity.replace("file", entries)
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(
            f"--identity {path}: expected {{ip: 'ns/pod' | 'node/NAME'}} or a lab state file ({e})"
        ) from e


def _summary(files: int, c: PipelineCounters) -> str:
    protos = ", ".join(f"{p} {n}" for p, n in sorted(c.records_by_proto.items())) or "none"
    bad = sum(c.malformed.values())
    reasons = ", ".join(f"{r} {n}" for r, n in sorted(c.malformed.items()))
    return (
        f"read {files} file(s): {c.packets} packets, {c.flows_ended} flows ({protos}), "
        f"malformed {bad}{f' ({reasons})' if reasons else ''}, duplicates suppressed "
        f"{c.duplicates}"
    )


def identity_from_args(args: argparse.Namespace) -> tuple[IdentityMap, str]:
    """Identity and node name of an offline analysis: ``--identity``, ``--ovsdb``, ``--node``.

    ``capture read`` and ``report --pcap`` both name addresses this way.
    """
    identity = IdentityMap()
    node = args.node or ""
    if args.identity is not None:
        _identity_file(args.identity, identity)
    if args.ovsdb:
        # Only here does an offline command pay for ovsdbapp: the ovs names resolve on first use.
        endpoint = ovs.resolve_endpoint(args.ovsdb, os.environ)
        with ovs.connect(endpoint) as session:
            snap = session.snapshot()
        node = node or ovs.node_name(snap) or ""
        identity.replace("ovsdb", ovs.identity_entries(snap, node or None))
    return identity, node


def read_files(args: argparse.Namespace) -> int:
    identity, node = identity_from_args(args)
    if args.filter:
        compile_filter(args.filter)  # a bad expression is one error line before any output
    notices = notice_options(args) if args.notices is not None else None
    notices_out = _open_notices(args.notices)
    try:
        return _read(args, identity, node, notices, notices_out)
    finally:
        if notices_out is not None:
            notices_out.close()


def _open_notices(path: Path | None) -> IO[str] | None:
    if path is None:
        return None
    try:
        return path.open("w", encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write --notices {path}: {e.strerror}") from e


def _read(
    args: argparse.Namespace,
    identity: IdentityMap,
    node: str,
    notices: NoticeOptions | None,
    notices_out: IO[str] | None,
) -> int:
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, not {args.workers}")
    if args.workers > 1:
        counters, messages = read_shares(args, identity, node, args.workers)
        if not args.no_summary:
            print(f"mirrorctl: {_summary(len(args.files), counters)}", file=sys.stderr)
        if len(messages) == 1:
            raise CaptureError(messages[0], source="read")
        if messages:
            raise CaptureError(
                f"{len(messages)} of {len(args.files)} files could not be read to the end; "
                f"first: {messages[0]}",
                source="read",
            )
        return 0
    outputs = Outputs(
        records_stream=sys.stdout,
        ipfix=ipfix_options(args),
        notices=notices,
        notices_stream=notices_out,
    )
    assembly = assemble(identity, outputs, node=node, options=pipeline_options(args))
    errors = assembly.read_files(args.files, args.filter)
    assembly.close()
    if not args.no_summary:
        counters = assembly.pipeline.counters()
        print(f"mirrorctl: {_summary(len(args.files), counters)}", file=sys.stderr)
        if assembly.detectors is not None:
            print(f"mirrorctl: {assembly.detectors.raised} notice(s)", file=sys.stderr)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise CaptureError(
            f"{len(errors)} of {len(args.files)} files could not be read to the end; first: "
            f"{errors[0]}",
            source=errors[0].source,
        )
    return 0
