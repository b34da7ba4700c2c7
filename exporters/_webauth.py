"""Bearer-token access control for the service's HTTP listener, as ASGI middleware.

Closed by default: every path needs the token except the probes and /metrics, which Kubernetes
and Prometheus reach without credentials and which show no traffic, and ``/``, the home page's
shell, which has to load to ask for the token and shows nothing until the guarded API answers.
A middleware rather than a per-route dependency, so an endpoint added later cannot forget it.
"""

from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send

#: Paths anyone may GET: the probes, the Prometheus exposition and the page shell (no traffic).
OPEN_PATHS = frozenset({"/metrics", "/healthz", "/readyz", "/"})

_HINT = "send 'Authorization: Bearer <token>' with the service's --token-file or MIRRORSCOPE_TOKEN"
#: The token may come in this header instead: the Kubernetes API server's proxy (kubectl
#: mirrorscope) strips ``Authorization``, which carries the user's credentials to the API server.
TOKEN_HEADER = b"x-mirrorscope-token"


class BearerAuth:
    """Answers 401 unless the request carries ``Authorization: Bearer <token>`` (or the token
    in ``X-Mirrorscope-Token``, which a proxy in front of the service leaves alone).

    The comparison takes the same time whatever the guess (``hmac.compare_digest``), so the token
    cannot be found a byte at a time by timing the answers.
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        if not token:
            raise ValueError("an empty token would let anyone in")
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        problem = self._problem(scope)
        if problem is None:
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # a websocket: refused before it is accepted
            await send({"type": "websocket.close", "code": 1008, "reason": problem})
            return
        error = "" if problem.startswith("no ") else ', error="invalid_token"'
        body = json.dumps({"detail": f"{problem}: {_HINT}"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", f'Bearer realm="mirrorscope"{error}'.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _problem(self, scope: Scope) -> str | None:
        """Why the request may not pass, or None when it carries the token."""
        side = [v for k, v in scope["headers"] if k == TOKEN_HEADER]
        if side:
            ok = hmac.compare_digest(side[0].strip(), self._token)
            return None if ok else "wrong token in X-Mirrorscope-Token"
        values = [v for k, v in scope["headers"] if k == b"authorization"]
        if not values:
            return "no bearer token"
        scheme, _, given = values[0].partition(b" ")
        if scheme.lower() != b"bearer" or not given.strip():
            return "no bearer token (Authorization is not 'Bearer <token>')"
        if not hmac.compare_digest(given.strip(), self._token):
            return "wrong bearer token"
        return None
