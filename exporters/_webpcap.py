"""``GET /api/v1/pcap``, ``/api/v1/pcap/files`` and ``/api/v1/pcap/stream``: the store over HTTP.

A download names whose packets (``pod``, ``namespace`` or ``ip``) and when (``since`` or
``start``/``end``), never a file: the store's own index picks the files. The query runs in a
worker thread (file reads and libpcap's filter block); the response streams pcapng (or classic
pcap) chunks as the merge produces them, so memory stays at one batch per worker whatever the
window. A live stream polls the store: every ``poll_s`` it reads the pod's frames of the last
``late_s`` and sends those it has not sent yet. A frame reaches the store a ring-block timeout or
more after its capture time (a loaded worker, another worker's file), so a cursor on capture time
alone would skip it for good; frames later than ``late_s`` are the only ones a stream can miss.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import chain
from typing import Annotated, Any, Literal

from fastapi import HTTPException, Query
from fastapi.responses import Response, StreamingResponse
from fastapi.routing import APIRouter
from starlette.background import BackgroundTask
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from analyzers import EndpointKind, IdentityMap
from capture import CaptureError
from exporters._pcapindex import address_key, mac_text
from exporters._pcapmetrics import DownloadCounts
from exporters._pcapngout import pcap_chunks, pcapng_chunks
from exporters._pcapquery import PcapArchive, PcapQuery, StoredFrame
from exporters._pcapselect import Selection, select
from exporters._pcapstoreconfig import StoreCounters
from exporters._pcapwindow import window
from exporters._weblimit import ConcurrencyLimit

__all__ = ["PcapSources", "pcap_router"]

log = logging.getLogger(__name__)

_PCAPNG = "application/x-pcapng"
_PCAP = "application/vnd.tcpdump.pcap"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_ETHERNET = 1


@dataclass(frozen=True, slots=True)
class PcapSources:
    """What the pcap endpoints read: the store, who is who, limits and counters."""

    archive: PcapArchive  # queries
    identity: IdentityMap
    macs: Callable[[], Mapping[int, int]]  # address key -> MAC (learned by the workers)
    stores: Callable[[], Sequence[StoreCounters]]  # each worker's store counters
    downloads: DownloadCounts
    limit: ConcurrencyLimit
    max_bytes: int
    listing: PcapArchive | None = None  # the listing's view (open files from reports)
    clock_ns: Callable[[], int] = time.time_ns
    #: Set when the service stops: live streams end (cleanly) instead of waiting to be cut.
    closing: threading.Event = field(default_factory=threading.Event)
    poll_s: float = 0.2
    late_s: float = 3.0

    def selection(self, pod: str | None, namespace: str | None, ip: str | None) -> Selection:
        given = [n for n, v in (("pod", pod), ("namespace", namespace), ("ip", ip)) if v]
        if len(given) != 1:
            which = "none" if not given else " and ".join(given)
            raise _bad("pod", f"give exactly one of pod, namespace or ip (got {which})")
        try:
            sel = select(self.identity.entries(), self.macs(), pod=pod, namespace=namespace, ip=ip)
        except ValueError as e:
            name, _, why = str(e).partition(": ")
            raise _bad(name, why) from None
        if not sel.addresses and not sel.macs:
            raise HTTPException(
                404,
                detail=f"{'pod' if pod else 'namespace'} {sel.label!r} has no address on this "
                "node now (deleted, or not scheduled here): ask by ip= for a pod that is gone",
            )
        return sel

    def pod_of(self) -> Callable[[str], str | None]:
        """Address or MAC text -> ``ns/pod`` for the pcapng comments."""
        by_mac: dict[str, str] = {}
        for key, mac in self.macs().items():
            ep = self.identity.lookup_key(key)
            if ep.kind is EndpointKind.POD:
                by_mac[mac_text(mac)] = ep.label

        def pod_of(text: str) -> str | None:
            if text in by_mac:
                return by_mac[text]
            try:
                ep = self.identity.lookup_key(address_key(text))
            except ValueError:
                return None
            return ep.label if ep.kind is EndpointKind.POD else None

        return pod_of


def _bad(parameter: str, reason: str) -> HTTPException:
    return HTTPException(400, detail=f"bad request: query parameter {parameter!r}: {reason}")


def _query(sel: Selection, start_ns: int, end_ns: int, bpf: str) -> PcapQuery:
    try:
        return PcapQuery.of(
            addresses=sel.addresses, macs=sel.macs, start_ns=start_ns, end_ns=end_ns, filter=bpf
        )
    except CaptureError as e:
        raise _bad("filter", f"libpcap cannot compile it: {e}") from None


def _estimate(archive: PcapArchive, q: PcapQuery) -> int:
    """An upper bound of the stored bytes a query reads, from the files' indexes."""
    total = 0
    for f in archive.list_files():
        if f.first_ns >= q.end_ns or (f.indexed and f.last_ns < q.start_ns):
            continue
        if not f.indexed or f.packets == 0:
            total += f.size
            continue
        hits = sum(n for a, n in f.addresses.items() if address_key(a) in q.addresses)
        hits += sum(n for m, n in f.macs.items() if int(m.replace(":", ""), 16) in q.macs)
        total += min(f.size, f.size * hits // f.packets)
    return total


def _stamp(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y%m%dT%H%M%SZ")


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{ns % 1_000_000_000:09d}Z"
    )


def _chunks(
    frames: Iterable[StoredFrame | None], fmt: str, pod_of: Callable[[str], str | None], lt: int
) -> Iterator[bytes]:
    if fmt == "pcap":
        return pcap_chunks(frames, linktype=lt)
    return pcapng_chunks(frames, pod_of=pod_of)


async def _capped(chunks: Iterator[bytes], limit: int, what: str) -> AsyncIterator[bytes]:
    """The chunks, read in a worker thread, up to ``limit`` bytes; the query is closed after."""
    sent = 0
    try:
        async for chunk in iterate_in_threadpool(chunks):
            sent += len(chunk)
            if sent > limit:
                log.warning("%s cut at %d bytes (--max-download-size)", what, sent - len(chunk))
                return
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            await run_in_threadpool(close)


def pcap_router(src: PcapSources) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["pcap"])
    counts = src.downloads

    def counted(status: int) -> None:
        counts.count(status)

    @router.get(
        "/pcap",
        summary="Stored packets of a pod, a namespace or an address over a window",
        response_class=Response,
        responses={
            200: {"content": {_PCAPNG: {}, _PCAP: {}}, "description": "The packets, streamed"},
            204: {"description": "Nothing matched in the window"},
            404: {"description": "The pod or namespace has no address on this node"},
            413: {"description": "The window holds more than --max-download-size"},
            429: {"description": "Too many downloads at once (--max-downloads)"},
        },
    )
    async def download(
        *,
        pod: Annotated[str | None, Query(description="NAMESPACE/NAME")] = None,
        namespace: str | None = None,
        ip: Annotated[str | None, Query(description="an IPv4 or IPv6 address")] = None,
        since: Annotated[str | None, Query(description="30s, 5m, 1h (default 5m)")] = None,
        start: Annotated[str | None, Query(description="RFC 3339 or epoch seconds")] = None,
        end: Annotated[str | None, Query(description="RFC 3339 or epoch seconds")] = None,
        bpf: Annotated[str, Query(alias="filter", description="tcpdump expression")] = "",
        fmt: Annotated[Literal["pcapng", "pcap"], Query(alias="format")] = "pcapng",
    ) -> Response:
        try:
            sel = src.selection(pod, namespace, ip)
            try:
                start_ns, end_ns = window(since, start, end, now_ns=src.clock_ns())
            except ValueError as e:
                name, _, why = str(e).partition(": ")
                raise _bad(name, why) from None
            q = _query(sel, start_ns, end_ns, bpf)
            size = await run_in_threadpool(_estimate, src.archive, q)
            if size > src.max_bytes:
                raise HTTPException(
                    413,
                    detail=f"the window holds up to {size} bytes of these packets, more than "
                    f"--max-download-size {src.max_bytes}: ask for a shorter window or a filter",
                )
            slot = src.limit.acquire()
        except HTTPException as e:
            counted(e.status_code)
            raise
        frames = src.archive.query(q)
        try:
            first = await run_in_threadpool(next, frames, None)
        except BaseException:
            slot.release()
            raise
        if first is None:
            slot.release()
            counted(204)
            return Response(status_code=204)
        counted(200)
        name = f"{_SAFE.sub('_', sel.label)}-{_stamp(start_ns)}.{fmt}"
        chunks = _chunks(chain([first], frames), fmt, src.pod_of(), first.linktype)
        return StreamingResponse(
            slot.hold(_capped(chunks, src.max_bytes, f"download of {sel.label}")),
            media_type=_PCAPNG if fmt == "pcapng" else _PCAP,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
            background=BackgroundTask(slot.release),
        )

    @router.get(
        "/pcap/stream",
        summary="Live pcapng of a pod's packets from now on, until the client closes",
        response_class=Response,
        responses={200: {"content": {_PCAPNG: {}}}, 429: {"description": "Too many streams"}},
    )
    async def stream(
        *,
        pod: Annotated[str | None, Query(description="NAMESPACE/NAME")] = None,
        namespace: str | None = None,
        ip: str | None = None,
        bpf: Annotated[str, Query(alias="filter", description="tcpdump expression")] = "",
    ) -> Response:
        try:
            sel = src.selection(pod, namespace, ip)
            now = src.clock_ns()
            _query(sel, now - 1, now, bpf)  # a bad filter is a 400 before the stream starts
            slot = src.limit.acquire()
        except HTTPException as e:
            counted(e.status_code)
            raise
        counted(200)
        stopped = threading.Event()

        def current() -> Selection:
            try:
                return src.selection(pod, namespace, ip)
            except HTTPException:
                return sel  # the pod went away meanwhile: keep its last addresses

        frames = _follow(src, current, bpf, stopped, since=now)
        chunks = pcapng_chunks(frames, pod_of=src.pod_of())

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in iterate_in_threadpool(chunks):
                    yield chunk
            finally:
                stopped.set()

        return StreamingResponse(
            slot.hold(body()),
            media_type=_PCAPNG,
            background=BackgroundTask(_stop_all, slot.release, stopped.set),
        )

    @router.get("/pcap/files", summary="The store's files: name, time range, size, pods")
    def files() -> dict[str, Any]:  # sync: FastAPI runs it in a worker thread
        listing = src.listing or src.archive
        stores = list(src.stores())
        out = []
        for f in listing.list_files():
            pods: dict[str, int] = {}
            for addr, n in f.addresses.items():
                ep = src.identity.lookup_key(address_key(addr))
                if ep.kind is EndpointKind.POD:
                    pods[ep.label] = pods.get(ep.label, 0) + n
            out.append(
                {
                    "name": f.name,
                    "node": f.node,
                    "worker": f.worker,
                    "size": f.size,
                    "writing": f.writing,
                    "indexed": f.indexed,
                    "start": _iso(f.first_ns) if f.first_ns else None,
                    "end": _iso(f.last_ns) if f.indexed and f.last_ns else None,
                    "packets": f.packets,
                    "bytes": f.bytes,
                    "pods": dict(sorted(pods.items())),
                    "addresses": dict(f.addresses),
                }
            )
        full = [c.full_reason for c in stores if c.full]
        return {
            "store": {
                "bytes": sum(f["size"] for f in out),
                "files": len(out),
                "full": bool(full),
                "full_reason": full[0] if full else "",
                "frames_stored": sum(c.frames_stored for c in stores),
                "frames_not_stored": sum(c.frames_not_stored for c in stores),
                "frames_queue_full": sum(c.frames_queue_full for c in stores),
                "evictions": sum(c.evictions for c in stores),
                "write_errors": sum(c.write_errors for c in stores),
            },
            "files": out,
        }

    return router


def _stop_all(*calls: Callable[[], None]) -> None:
    for call in calls:
        call()


def _follow(
    src: PcapSources,
    current: Callable[[], Selection],
    bpf: str,
    stopped: threading.Event,
    since: int,
) -> Iterator[StoredFrame | None]:
    """Frames captured from ``since`` on as they reach the store; ``None`` after each poll."""
    late = int(src.late_s * 1e9)
    sent: set[tuple[int, str, int, int]] = set()  # frames of the last ``late`` already sent
    while not stopped.is_set() and not src.closing.is_set():
        now = src.clock_ns()
        start = max(since, now - late)
        q = replace(_query(current(), start, now, bpf), start_ns=start, end_ns=now)
        for frame in src.archive.query(q):
            key = (frame.ts_ns, frame.node, frame.wirelen, hash(frame.data))
            if key not in sent:
                sent.add(key)
                yield frame
        sent = {k for k in sent if k[0] >= now - late}
        yield None
        stopped.wait(src.poll_s)
