"""``GET /api/v1/notices``: the security notices of a window, read back from the notice log.

Same window parameters and token as ``/api/v1/flows``; the answer is one JSON object with the
counts by note and source pod and the notices themselves, newest first, so the page and
``mirrorctl report --server`` need one request each.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Query
from fastapi.routing import APIRouter

from exporters._noticeread import load_notices, notice_counts, source_of
from exporters._webflows import End, Pod, Since, Start, window_of

MAX_LIMIT = 10_000


def notices_router(records: Path | None, clock: Callable[[], float] = time.time) -> APIRouter:
    """The notices in ``records`` (the records directory); none without one."""
    router = APIRouter(tags=["notices"])

    @router.get("/api/v1/notices", summary="Security notices raised in the window, newest first")
    def notices(
        *,
        since: Since = None,
        start: Start = None,
        end: End = None,
        pod: Pod = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="at most this many")] = 100,
    ) -> dict[str, Any]:
        window = window_of(since, start, end, clock)
        found = [] if records is None else load_notices(records, window)
        if pod is not None:
            found = [n for n in found if source_of(n) == pod]
        return {
            "window": {"start": window.start, "end": window.end},
            "total": len(found),
            "counts": notice_counts(found),
            "notices": found[:limit],
        }

    return router
