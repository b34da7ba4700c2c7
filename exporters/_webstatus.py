"""``GET /api/v1/status``: which node this is, how long it has run, what the capture counted."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi.routing import APIRouter
from pydantic import BaseModel

from exporters._health import CaptureHealth


class CaptureCounters(BaseModel):
    """The capture's cumulative counters (the same numbers /metrics exports)."""

    received: int
    kernel_dropped: int
    duplicates: int
    malformed: dict[str, int]


class Status(BaseModel):
    node: str
    uptime_s: float
    ready: bool
    capture: CaptureCounters


def status_router(
    node: str,
    health: Callable[[], CaptureHealth],
    ready: Callable[[], bool] = lambda: True,
    clock: Callable[[], float] = time.monotonic,
) -> APIRouter:
    """The status endpoint; uptime counts from this call (the service's start)."""
    started = clock()
    router = APIRouter(prefix="/api/v1", tags=["service"])

    @router.get("/status", summary="This node's service: uptime, readiness, capture counters")
    def status() -> Status:  # a sync route: FastAPI runs it in a worker thread, off the loop
        h = health()
        try:
            ok = bool(ready())
        except Exception:  # /readyz says why; here it is just not ready
            ok = False
        return Status(
            node=node,
            uptime_s=round(clock() - started, 3),
            ready=ok,
            capture=CaptureCounters(
                received=h.received,
                kernel_dropped=h.kernel_dropped,
                duplicates=h.duplicates,
                malformed=dict(h.malformed),
            ),
        )

    return router
