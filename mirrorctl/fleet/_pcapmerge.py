"""Several agents' pcapng downloads merged, in time order, into one pcapng with an interface per
node.

Each agent's download is already in time order, so a k-way merge (``heapq.merge``) over the
streams, parsed one block at a time as they arrive, keeps memory at one packet per agent. A
packet keeps its node (the interface it came on, declared again in the output) and its comment
(the pods). An agent that gave no answer is named in the section's comment, written before any
packet; one that fails mid-way gets an Interface Statistics Block with the reason (pcapng's place
for the end of an interface's capture) and the merge goes on with the others.
"""

from __future__ import annotations

import heapq
import http.client
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from capture import CaptureError, PcapngWriter, StreamPacket, read_pcapng_stream
from mirrorctl.fleet._fetch import Answer, Unanswered
from mirrorctl.fleet._targets import Target

__all__ = ["MergeReport", "MergedPcapng", "merge_downloads", "packets_of"]

Say = Callable[[str], None]
#: Answers that mean "nothing here", not a failure: no packets in the window, or the pod has no
#: address on that node (it runs elsewhere), which most nodes answer for any one pod.
NOTHING = frozenset({204, 404})


@dataclass(slots=True)
class MergeReport:
    """What each agent gave: packets per target name, the ones with nothing, the failures."""

    packets: dict[str, int] = field(default_factory=dict)
    nothing: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.packets.values())


class MergedPcapng:
    """The output section: an interface per (agent, node, link type), declared on first use."""

    def __init__(self, out: BinaryIO, comment: str) -> None:
        self._writer = PcapngWriter(out, application="mirrorctl (merged)", comment=comment)
        self._out = out
        self._interfaces: dict[tuple[int, str, int], int] = {}

    def write(self, origin: int, target: Target, pkt: StreamPacket) -> None:
        key = (origin, pkt.interface.name, pkt.interface.linktype)
        iface = self._interfaces.get(key)
        if iface is None:
            described = pkt.interface.description or f"node {pkt.interface.name}"
            iface = self._interfaces[key] = self._writer.add_interface(
                pkt.interface.name or target.name,
                f"{described}, from {target.name}",
                linktype=pkt.interface.linktype,
            )
        self._writer.write_packet(
            iface, pkt.ts_ns, pkt.data, wirelen=pkt.wirelen, comment=pkt.comment
        )

    def failed(self, origin: int, target: Target, reason: str, ts_ns: int) -> None:
        """Close ``origin``'s interfaces with the reason (one named after the agent if it had
        none yet, so the reason is in the file either way)."""
        ifaces = [i for (o, _, _), i in self._interfaces.items() if o == origin]
        if not ifaces:
            ifaces = [self._writer.add_interface(target.name, f"agent {target.name}")]
            self._interfaces[(origin, target.name, -1)] = ifaces[0]
        for iface in ifaces:
            self._writer.write_statistics(iface, ts_ns, f"{target.name} failed: {reason}")

    def flush(self) -> None:
        self._out.flush()


def packets_of(
    answer: Answer, origin: int, on_failure: Callable[[int, str], None]
) -> Iterator[tuple[int, int, StreamPacket]]:
    """``(ts_ns, origin, packet)`` of one answer's body; a failure mid-way ends it (reported)."""
    try:
        for pkt in read_pcapng_stream(answer.response.read, source=answer.target.name):
            yield pkt.ts_ns, origin, pkt
    except (CaptureError, OSError, http.client.HTTPException) as e:
        on_failure(origin, _why(e))
    finally:
        answer.close()


def _why(e: Exception) -> str:
    if isinstance(e, http.client.IncompleteRead):
        return "the connection closed mid-way (the agent stopped?)"
    if isinstance(e, TimeoutError):
        return "it stopped sending (timed out)"
    return str(e) or type(e).__name__


def header_comment(answers: Sequence[Answer | Unanswered], report: MergeReport) -> str:
    lines = [f"merged by mirrorctl from {len(answers)} agents"]
    for a in answers:
        name = a.target.name
        if name in report.failed:
            lines.append(f"{name}: FAILED: {report.failed[name]}")
        elif name in report.nothing:
            lines.append(f"{name}: nothing: {report.nothing[name]}")
        else:
            lines.append(f"{name}: answered")
    return "\n".join(lines)


def merge_downloads(
    answers: Sequence[Answer | Unanswered],
    out: BinaryIO,
    *,
    say: Say,
    clock_ns: Callable[[], int] = time.time_ns,
) -> MergeReport:
    """Merge the 200 answers' pcapng bodies into ``out``; name the others through ``say``.

    Writes nothing when no agent has a packet to send (the caller says so)."""
    report = MergeReport()
    streams: list[tuple[int, Answer]] = []
    for i, a in enumerate(answers):
        name = a.target.name
        if isinstance(a, Unanswered):
            if a.status in NOTHING:
                report.nothing[name] = a.reason
            else:
                report.failed[name] = a.reason
                say(f"{name}: {a.reason}")
        elif a.status != 200:
            report.nothing[name] = f"{a.status} (no packets in the window)"
            a.close()
        else:
            report.packets[name] = 0
            streams.append((i, a))
    if not streams:
        return report
    merged = MergedPcapng(out, header_comment(answers, report))
    failures: list[tuple[int, str]] = []

    def on_failure(origin: int, reason: str) -> None:
        failures.append((origin, reason))

    def close_failed(ts_ns: int) -> None:
        while failures:
            origin, reason = failures.pop(0)
            target = answers[origin].target
            report.failed[target.name] = reason
            say(f"{target.name}: {reason}; the merge goes on without it")
            merged.failed(origin, target, reason, ts_ns)

    iters = [packets_of(a, i, on_failure) for i, a in streams]
    last_ts = 0
    for ts_ns, origin, pkt in heapq.merge(*iters, key=lambda item: item[0]):
        target = answers[origin].target
        merged.write(origin, target, pkt)
        report.packets[target.name] += 1
        last_ts = ts_ns
        close_failed(last_ts)
    close_failed(last_ts or clock_ns())
    merged.flush()
    return report
