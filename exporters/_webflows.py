"""``GET /api/v1/flows`` and ``GET /report``: the service's flows for a window, raw or reported.

Both answer from ``FlowQuery`` (stored records that ended in the window plus the active flows) with
the same filters. The flows come as JSON lines by default (streamed a batch at a time: a day of
records is millions of lines) or as one JSON array; ``columns`` picks the fields, which is how
``mirrorctl report --server`` asks for only what a report reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Annotated, Literal

import pandas as pd
import pyarrow as pa
from fastapi import HTTPException, Query
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from fastapi.routing import APIRouter

from exporters._flowquery import FlowFilter, FlowQuery
from exporters._recordschema import RECORD_FIELDS, REPORT_COLUMNS
from exporters._reportagg import build_report
from exporters._reportload import report_frame
from exporters._reportnames import BY
from exporters._reportrender import render
from exporters._reportwindow import Window, parse_duration, parse_time

_BATCH = 65_536  # rows per JSON-lines chunk: the answer streams, memory stays bounded

Since = Annotated[
    str | None, Query(description="the last D: 90s, 15m, 1h, 7d (default 1h without start/end)")
]
Start = Annotated[str | None, Query(description="window start: RFC 3339 or epoch seconds")]
End = Annotated[str | None, Query(description="window end, exclusive: RFC 3339 or epoch seconds")]
Pod = Annotated[str | None, Query(description="namespace/name: flows with this pod on a side")]
Namespace = Annotated[str | None, Query(description="flows with a pod of this namespace")]
Protocol = Annotated[str | None, Query(description="tcp, udp, icmp, sctp")]


def _bad(parameter: str, reason: str) -> HTTPException:
    return HTTPException(400, f"bad request: query parameter {parameter!r}: {reason}")


def window_of(
    since: str | None, start: str | None, end: str | None, clock: Callable[[], float]
) -> Window:
    """The window the parameters name; a 400 that names the parameter otherwise."""
    if since is not None and (start is not None or end is not None):
        raise _bad("since", "give since or start/end, not both")
    try:
        if start is not None or end is not None:
            return Window(
                parse_time(start) if start is not None else None,
                parse_time(end) if end is not None else None,
            )
    except ValueError as e:
        raise _bad("start" if start is not None else "end", str(e)) from None
    try:
        return Window.since(parse_duration(since or "1h"), clock())
    except ValueError as e:
        raise _bad("since", str(e)) from None


def filter_of(pod: str | None, namespace: str | None, protocol: str | None) -> FlowFilter:
    try:
        return FlowFilter(pod=pod, namespace=namespace, protocol=protocol)
    except ValueError as e:
        raise _bad("pod", str(e)) from None


def _columns(text: str | None) -> tuple[str, ...]:
    if text is None:
        return tuple(RECORD_FIELDS)
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in RECORD_FIELDS]
    if unknown or not names:
        raise _bad("columns", f"no such record field {', '.join(unknown) or '(none given)'}")
    return names


def _plain(table: pa.Table) -> pa.Table:
    """Dictionary columns back to text: JSON writes values, not codes."""
    for i, f in enumerate(table.schema):
        if pa.types.is_dictionary(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(f.type.value_type))
    return table


def _json_lines(table: pa.Table) -> Iterator[bytes]:
    for batch in _plain(table).to_batches(_BATCH):
        chunk = pa.Table.from_batches([batch]).to_pandas(types_mapper=pd.ArrowDtype)
        text = chunk.to_json(orient="records", lines=True)
        yield text.encode() if text.endswith("\n") else (text + "\n").encode()


def flows_router(query: FlowQuery, clock: Callable[[], float] = time.time) -> APIRouter:
    """The flows API and the HTML report over ``query``'s records and active flows."""
    router = APIRouter(tags=["flows"])

    @router.get(
        "/api/v1/flows",
        summary="Flows that ended in the window (stored records) and the active flows so far",
        response_class=Response,
    )
    def flows(  # sync: reading files and filtering run in a worker thread, off the loop
        *,
        since: Since = None,
        start: Start = None,
        end: End = None,
        pod: Pod = None,
        namespace: Namespace = None,
        protocol: Protocol = None,
        limit: Annotated[int | None, Query(ge=1, description="at most this many flows")] = None,
        format: Annotated[
            Literal["jsonl", "json"], Query(description="JSON lines (default) or a JSON array")
        ] = "jsonl",
        columns: Annotated[
            str | None, Query(description="comma-separated record fields (default: all)")
        ] = None,
    ) -> Response:
        window = window_of(since, start, end, clock)
        names = _columns(columns)
        table = query.table(window, filter_of(pod, namespace, protocol), names)
        if limit is not None:
            table = table.slice(0, limit)
        if format == "json":
            body = "[" + ",".join(_json_rows(table)) + "]\n"
            return Response(body, media_type="application/json")
        return StreamingResponse(_json_lines(table), media_type="application/x-ndjson")

    @router.get(
        "/report",
        summary="The HTML flow report of the window (records and active flows)",
        response_class=HTMLResponse,
    )
    def report(
        *,
        since: Since = None,
        start: Start = None,
        end: End = None,
        pod: Pod = None,
        namespace: Namespace = None,
        protocol: Protocol = None,
        by: Annotated[str, Query(description=f"the main table: {', '.join(BY)}")] = "pod",
        top: Annotated[int, Query(ge=1, le=1000, description="rows per table")] = 10,
    ) -> HTMLResponse:
        if by not in BY:
            raise _bad("by", f"{by!r} is none of {', '.join(BY)}")
        window = window_of(since, start, end, clock)
        flt = filter_of(pod, namespace, protocol)
        table = query.table(window, flt, REPORT_COLUMNS)
        what = ", ".join(f"{k} {v}" for k, v in vars_of(flt).items())
        source = f"service records and active flows{' (' + what + ')' if what else ''}"
        built = build_report(report_frame(table), window, source, top=top)
        return HTMLResponse(render(built, "html", by, top))

    return router


def vars_of(flt: FlowFilter) -> dict[str, str]:
    """The filter's set fields, for the report's source line."""
    fields = {"pod": flt.pod, "namespace": flt.namespace, "protocol": flt.protocol}
    return {k: v for k, v in fields.items() if v is not None}


def _json_rows(table: pa.Table) -> Iterator[str]:
    for chunk in _json_lines(table):
        yield from (line for line in chunk.decode().splitlines() if line)
