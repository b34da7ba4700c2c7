"""Asking every target the same question at once, each with its own timeout.

A target that cannot be reached, answers an error or takes longer than the timeout is an
``Unanswered`` with the reason, never an exception: the fan-out goes on with the others and
names it. The timeout bounds the connection and then every read (``socket`` timeouts), so a
node that stops sending mid-way is let go after that long too.
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.parse
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from mirrorctl.fleet._targets import Target

__all__ = ["Answer", "Unanswered", "ask", "ask_all"]


@dataclass(frozen=True, slots=True)
class Answer:
    """A target's response, open: its body is read by the caller (and closed with ``close``)."""

    target: Target
    status: int
    response: http.client.HTTPResponse

    def close(self) -> None:
        self.response.close()


@dataclass(frozen=True, slots=True)
class Unanswered:
    """A target that gave no usable answer; ``status`` is the HTTP status when it gave one."""

    target: Target
    reason: str
    status: int | None = None


def ask(
    target: Target,
    path: str,
    params: Mapping[str, str],
    timeout_s: float,
    *,
    live: bool = False,
) -> Answer | Unanswered:
    """GET ``path`` with ``params`` from ``target``. ``live``: once the answer has begun, reads
    wait as long as it takes (a live stream is silent while nothing happens), and TCP keepalive
    finds a node that went away without closing."""
    url = urllib.parse.urlsplit(target.url)
    query = "?" + urllib.parse.urlencode(params) if params else ""
    if url.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            url.netloc, timeout=timeout_s, context=target.context
        )
    else:
        conn = http.client.HTTPConnection(url.netloc, timeout=timeout_s)
    try:
        conn.request("GET", url.path + path + query, headers=dict(target.headers))
        resp = conn.getresponse()
    except (OSError, http.client.HTTPException) as e:  # refused, timed out, reset, garbled
        conn.close()
        return Unanswered(target, f"no answer: {_reason(e)}")
    if resp.status >= 400:
        detail = _detail(resp)
        conn.close()
        return Unanswered(target, f"{resp.status} {detail}", resp.status)
    if live and conn.sock is not None:
        conn.sock.settimeout(None)
        _keepalive(conn.sock)
    return Answer(target, resp.status, resp)


def _reason(e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        return "timed out"
    return str(e) or type(e).__name__


def _keepalive(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def ask_all(
    targets: Sequence[Target],
    path: str,
    params: Mapping[str, str],
    timeout_s: float,
    *,
    live: bool = False,
) -> list[Answer | Unanswered]:
    """``ask`` every target in parallel; the results in the targets' order."""
    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(32, len(targets))) as pool:
        return list(pool.map(lambda t: ask(t, path, params, timeout_s, live=live), targets))


def _detail(resp: http.client.HTTPResponse) -> str:
    try:
        body = resp.read().decode(errors="replace")
    except (OSError, http.client.HTTPException):
        return resp.reason
    try:
        return str(json.loads(body)["detail"])
    except (ValueError, KeyError, TypeError):
        return body.strip()[:200] or resp.reason
