"""``GET /api/v1/pods``: every pod's cumulative tx/rx bytes and packets, what the home page polls.

The numbers are the ``mirrorscope_pod_bytes_total`` and ``mirrorscope_pod_packets_total`` series
of the service's own registry (the same collect /metrics runs), so the page's rates and the
Prometheus graphs cannot disagree. Rates are the client's to take: two answers and their ``time``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from fastapi.routing import APIRouter
from prometheus_client.metrics_core import Metric
from pydantic import BaseModel

_FAMILIES = {"mirrorscope_pod_bytes": "bytes", "mirrorscope_pod_packets": "packets"}


class PodTotals(BaseModel):
    namespace: str
    pod: str
    tx_bytes: int = 0
    rx_bytes: int = 0
    tx_packets: int = 0
    rx_packets: int = 0


class Pods(BaseModel):
    time: float  # epoch seconds of the collect: rates are deltas over deltas of this
    pods: list[PodTotals]  # by tx + rx bytes, descending


def pod_totals(metrics: Iterable[Metric]) -> list[PodTotals]:
    """Per-pod totals from collected metric families, by bytes, descending."""
    pods: dict[tuple[str, str], PodTotals] = {}
    for family in metrics:
        unit = _FAMILIES.get(family.name)
        if unit is None:
            continue
        for s in family.samples:
            if not s.name.endswith("_total"):
                continue
            key = (s.labels["namespace"], s.labels["pod"])
            row = pods.setdefault(key, PodTotals(namespace=key[0], pod=key[1]))
            field = f"{s.labels['direction']}_{unit}"
            setattr(row, field, getattr(row, field) + round(s.value))
    return sorted(pods.values(), key=lambda p: -(p.tx_bytes + p.rx_bytes))


def pods_router(
    collect: Callable[[], Iterable[Metric]], clock: Callable[[], float] = time.time
) -> APIRouter:
    """The pods endpoint over ``collect`` (the service's ``registry.collect``)."""
    router = APIRouter(prefix="/api/v1", tags=["service"])

    @router.get("/pods", summary="Each pod's tx/rx bytes and packets so far (poll for rates)")
    def pods() -> Pods:  # sync: collecting walks the flow table, in a worker thread
        now = clock()
        return Pods(time=round(now, 3), pods=pod_totals(collect()))

    return router
