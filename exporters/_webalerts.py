"""``POST /api/v1/alerts`` (Alertmanager's webhook) and ``GET /api/v1/pcap/kept[/NAME]``."""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.routing import APIRouter
from starlette.concurrency import run_in_threadpool

from exporters._pcapalerts import AlertCaptures
from exporters._pcapmetrics import DownloadCounts

__all__ = ["alerts_router"]

_MAX_BODY = 1 << 20  # Alertmanager caps a group at its max_alerts; 1 MiB is ample


def alerts_router(captures: AlertCaptures, downloads: DownloadCounts) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["alerts"])

    @router.post(
        "/alerts",
        summary="Alertmanager webhook (v4): capture each firing alert's pod (namespace/pod "
        "labels), --alert-lookback before and --alert-lookahead after, into the kept area",
        status_code=202,
    )
    async def alerts(request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > _MAX_BODY:
            raise HTTPException(413, detail=f"webhook body over {_MAX_BODY} bytes")
        try:
            payload = json.loads(body)
            # resolving pods reads the identity map only: quick, but off the loop all the same
            result = await run_in_threadpool(captures.submit, payload)
        except ValueError as e:
            raise HTTPException(
                400, detail=f"bad request: body: {e} (expected Alertmanager's webhook JSON)"
            ) from None
        return JSONResponse(result, status_code=202)

    @router.get("/pcap/kept", summary="Captures saved on alerts (kept outside rotation)")
    def kept() -> dict[str, Any]:
        items = captures.captures()
        return {
            "quota_bytes": captures.quota_bytes,
            "bytes": sum(k.size for k in items),
            "captures": [{"name": k.name, "size": k.size, **k.meta} for k in items],
        }

    @router.get(
        "/pcap/kept/{name}",
        summary="Download one kept capture by its name in the listing",
        response_class=FileResponse,
        responses={200: {"content": {"application/x-pcapng": {}}}, 404: {}},
    )
    def kept_file(name: str) -> FileResponse:
        path = captures.path_of(name)  # looked up in the listing: the name never becomes a path
        if path is None:
            downloads.count(404)
            raise HTTPException(404, detail=f"no kept capture {name!r}: see /api/v1/pcap/kept")
        downloads.count(200)
        return FileResponse(path, media_type="application/x-pcapng", filename=path.name)

    return router
