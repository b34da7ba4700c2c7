"""The agents of a cluster, found through the API server and reached through its pod proxy.

The agents are the DaemonSet's pods, selected by the chart's labels. Each is asked at
``/api/v1/namespaces/NS/pods/SCHEME:NAME:PORT/proxy/...``: the API server authenticates the
user (RBAC on ``pods/proxy``) and relays to the pod, so no port of the nodes needs to be open to
the user. The API server strips ``Authorization`` on the way (it is the user's credential), so
the agent's own token travels in ``X-Mirrorscope-Token``; it is taken from ``--token-file`` or
``MIRRORSCOPE_TOKEN``, or else read from the Secret the pods mount (the user needs ``get`` on
it).
"""

from __future__ import annotations

import base64
import http.client
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mirrorctl.fleet import TOKEN_HEADER, Target
from mirrorctl.kube._config import ApiServer, KubeError

__all__ = ["SELECTOR", "Agent", "agent_targets", "find_agents", "get_json", "token_of"]

#: The chart's selector labels (deploy/helm/mirrorscope/templates/_helpers.tpl).
SELECTOR = "app.kubernetes.io/name=mirrorscope"
_TOKEN_VOLUME = "token"  # noqa: S105 - the name of the DaemonSet's volume of the token Secret


@dataclass(frozen=True, slots=True)
class Agent:
    """One agent pod: where it runs and how the proxy reaches it."""

    namespace: str
    name: str
    node: str
    scheme: str
    port: int
    token_secret: str | None


def get_json(api: ApiServer, path: str, timeout_s: float = 30.0) -> Any:
    """GET ``path`` from the API server as the user; a refusal is a ``KubeError``."""
    url = urllib.parse.urlsplit(api.url)
    if url.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            url.netloc, timeout=timeout_s, context=api.context
        )
    else:
        conn = http.client.HTTPConnection(url.netloc, timeout=timeout_s)
    try:
        conn.request("GET", url.path + path, headers={**api.headers, "Accept": "application/json"})
        resp = conn.getresponse()
        body = resp.read()
    except (OSError, http.client.HTTPException) as e:
        raise KubeError(f"cannot reach the API server {api.url}: {e}") from None
    finally:
        conn.close()
    if resp.status != 200:
        try:
            message = json.loads(body)["message"]
        except (ValueError, KeyError, TypeError):
            message = body.decode(errors="replace")[:200]
        raise KubeError(f"the API server answered {resp.status} to {path}: {message}")
    return json.loads(body)


def _agent(pod: Mapping[str, Any]) -> Agent | None:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    if (pod.get("status") or {}).get("phase") != "Running":
        return None
    ports = [p for c in spec.get("containers") or [] for p in c.get("ports") or []]
    # kube-rbac-proxy's TLS port when it is in front, else the service's own.
    port = next((p for p in ports if p.get("name") == "https"), None) or next(
        (p for p in ports if p.get("name") == "http"), None
    )
    if port is None:
        return None
    secret = next(
        (
            v["secret"]["secretName"]
            for v in spec.get("volumes") or []
            if v.get("name") == _TOKEN_VOLUME and v.get("secret")
        ),
        None,
    )
    return Agent(
        meta["namespace"], meta["name"], spec.get("nodeName", ""), port["name"],
        int(port["containerPort"]), secret,
    )  # fmt: skip


def find_agents(api: ApiServer, namespace: str, selector: str = SELECTOR) -> list[Agent]:
    """The running agent pods in ``namespace``, by node name."""
    q = urllib.parse.urlencode({"labelSelector": selector})
    pods = get_json(api, f"/api/v1/namespaces/{namespace}/pods?{q}")
    found = [a for a in map(_agent, pods.get("items") or []) if a is not None]
    if not found:
        raise KubeError(
            f"no running mirrorscope pod in namespace {namespace} with labels {selector}: "
            "pass -n NAMESPACE where the chart is installed"
        )
    return sorted(found, key=lambda a: a.node)


def token_of(api: ApiServer, agents: list[Agent]) -> str | None:
    """The agents' token from the Secret they mount (None when they mount none)."""
    secret = next((a for a in agents if a.token_secret), None)
    if secret is None:
        return None
    doc = get_json(api, f"/api/v1/namespaces/{secret.namespace}/secrets/{secret.token_secret}")
    data = (doc.get("data") or {}).get("token")
    return base64.b64decode(data).decode().strip() if data else None


def agent_targets(api: ApiServer, agents: list[Agent], token: str | None) -> list[Target]:
    """Each agent as a fan-out target through the API server's pod proxy."""
    headers = dict(api.headers)
    if token is not None:
        headers[TOKEN_HEADER] = token
    return [
        Target(
            f"{api.url}/api/v1/namespaces/{a.namespace}/pods/{a.scheme}:{a.name}:{a.port}/proxy",
            a.node or a.name,
            headers,
            api.context,
        )
        for a in agents
    ]
