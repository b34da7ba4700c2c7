"""The service's web app: /metrics and the probes, routers plugged in, the token, the errors.

``build_app`` is the one place endpoints join the listener: each later feature (pcap downloads,
the flows API, the alert webhook, pages) is an ``APIRouter`` passed in ``routers``. ``/healthz``
answers as long as the process serves HTTP (a liveness probe); ``/readyz`` asks the service
whether capture runs and OVSDB answers (a readiness probe), so Kubernetes stops routing scrapes
to a pod that cannot see traffic without restarting it.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRouter
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from exporters._webauth import OPEN_PATHS, BearerAuth

log = logging.getLogger(__name__)

OPENAPI_PATH = "/api/v1/openapi.json"
_PATHS = f"/metrics, /healthz, /readyz or {OPENAPI_PATH}"


def build_app(
    registry: CollectorRegistry,
    ready: Callable[[], bool] = lambda: True,
    *,
    token: str | None,
    routers: Iterable[APIRouter] = (),
) -> FastAPI:
    """The app serving ``registry`` on /metrics, ``ready`` on /readyz, and ``routers``.

    With ``token`` every path but /metrics, /healthz, /readyz and / needs ``Authorization: Bearer
    <token>``; with None the app is open (the caller warns).
    """
    if token == "":
        raise ValueError("an empty token would let anyone in: pass None to serve openly")
    app = FastAPI(
        title="mirrorscope",
        summary="Per-pod traffic of Kube-OVN's mirror: metrics, probes, captures and flows.",
        version="1",
        openapi_url=OPENAPI_PATH,
        docs_url=None,  # the HTML docs pull scripts from a CDN; the JSON description is enough
        redoc_url=None,
    )
    app.include_router(_probes(registry, ready))
    for router in routers:
        app.include_router(router)
    app.exception_handler(RequestValidationError)(_bad_request)
    app.exception_handler(HTTPException)(_http_error)
    app.openapi = lambda: _openapi(app, secured=token is not None)  # type: ignore[method-assign]
    if token is not None:
        app.add_middleware(BearerAuth, token=token)
    return app


def _probes(registry: CollectorRegistry, ready: Callable[[], bool]) -> APIRouter:
    router = APIRouter(default_response_class=PlainTextResponse, tags=["open"])

    @router.get("/metrics", summary="Prometheus exposition (open)")
    async def metrics(request: Request) -> Response:
        try:
            # collection walks the flow table: a worker thread, not the loop other clients wait on
            body = await run_in_threadpool(generate_latest, registry)
        except Exception as exc:  # a collector bug must not kill the endpoint
            log.exception("collecting metrics failed")
            return PlainTextResponse(f"collecting metrics failed: {exc}\n", status_code=500)
        if "gzip" in request.headers.get("accept-encoding", ""):
            # Prometheus asks for gzip; a few MB of text shrink ~10x, level 1 keeps it cheap
            return Response(
                gzip.compress(body, 1),
                media_type=CONTENT_TYPE_PLAIN_0_0_4,
                headers={"Content-Encoding": "gzip"},
            )
        return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)

    @router.get("/healthz", summary="Liveness: the process serves HTTP (open)")
    async def healthz() -> str:
        return "ok\n"

    @router.get("/readyz", summary="Readiness: capture runs and OVSDB answers (open)")
    def readyz() -> PlainTextResponse:
        try:
            ok = ready()
        except Exception as exc:  # a failing probe means "not ready", said with the reason
            return PlainTextResponse(f"not ready: {exc}\n", status_code=503)
        if ok:
            return PlainTextResponse("ready\n")
        return PlainTextResponse(
            "not ready: capture not running or OVSDB unreachable\n", status_code=503
        )

    return router


async def _bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 becomes a 400 that names each bad parameter and why."""
    errors = [
        {
            "parameter": str(err["loc"][-1]) if err.get("loc") else "",
            "in": str(err["loc"][0]) if err.get("loc") else "",
            "reason": str(err.get("msg", "invalid")),
        }
        for err in exc.errors()
    ]
    text = "; ".join(f"{e['in']} parameter {e['parameter']!r}: {e['reason']}" for e in errors)
    return JSONResponse({"detail": f"bad request: {text}", "errors": errors}, status_code=400)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    """A path no route matches gets the paths that exist; other HTTP errors keep FastAPI's form."""
    if exc.status_code == 404 and "endpoint" not in request.scope:
        path = request.url.path
        return PlainTextResponse(f"no such path {path!r}: try {_PATHS}\n", status_code=404)
    return await http_exception_handler(request, exc)


def _openapi(app: FastAPI, *, secured: bool) -> dict[str, Any]:
    """FastAPI's description, saying what we do differently: 400 not 422, and the token."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, summary=app.summary, routes=app.routes
    )
    for path, ops in schema.get("paths", {}).items():
        for op in ops.values():
            responses = op.get("responses", {})
            if "422" in responses:
                responses["400"] = {
                    "description": "A bad parameter, named with the reason",
                    "content": {"application/json": {}},
                }
                del responses["422"]
            if secured and path not in OPEN_PATHS:
                op["security"] = [{"bearer": []}]
                responses["401"] = {"description": "No or a wrong bearer token"}
    for name in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(name, None)
    if secured:
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"}
        }
    app.openapi_schema = schema
    return schema
