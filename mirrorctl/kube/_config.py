"""The user's way into the API server, from their kubeconfig as kubectl itself resolves it.

``kubectl config view --minify --raw -o json`` does the resolving (KUBECONFIG's list of files,
the current or the given context) and answers JSON, so no YAML parser and no ``kubernetes``
client package are needed: that package brings a dozen dependencies for the three requests a
plugin makes. The credentials supported are a kubeconfig's usual ones: a bearer token (inline
or a file), a client certificate and key (inline or files), and an exec credential plugin
(EKS, GKE, OIDC helpers), run as kubectl would run it.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirrorctl.ovs import UsageError

__all__ = ["ApiServer", "KubeError", "api_server", "kubeconfig"]


class KubeError(UsageError):
    """The kubeconfig or the API server did not give what the plugin needs; says what to do."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class ApiServer:
    """The API server's URL, the headers that authenticate the user, and the TLS to use."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    context: ssl.SSLContext | None = None


def kubeconfig(path: str | None = None, context: str | None = None) -> dict[str, Any]:
    """The minified kubeconfig of ``context`` (default: the current one), as kubectl sees it."""
    argv = ["kubectl", "config", "view", "--minify", "--raw", "-o", "json"]
    if path:
        argv += ["--kubeconfig", path]
    if context:
        argv += ["--context", context]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError:
        raise KubeError(
            "kubectl is not on PATH: the plugin reads the kubeconfig through it"
        ) from None
    if done.returncode != 0:
        raise KubeError(f"kubectl config view failed: {done.stderr.strip()}")
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def _one(doc: Mapping[str, Any], kind: str) -> dict[str, Any]:
    items = doc.get(kind) or []
    if not items:
        raise KubeError(f"the kubeconfig has no {kind} for the current context")
    value: dict[str, Any] = items[0].get(kind[:-1]) or {}
    return value


def _data_or_file(entry: Mapping[str, Any], key: str, tmp: Path) -> str | None:
    """A PEM as a file path: ``key-data`` (base64, written to ``tmp``) or the ``key`` file."""
    if entry.get(f"{key}-data"):
        path = tmp / key
        path.write_bytes(base64.b64decode(entry[f"{key}-data"]))
        return str(path)
    value = entry.get(key)
    return str(value) if value else None


def _exec_credential(spec: Mapping[str, Any]) -> dict[str, Any]:
    env = {**os.environ, **{e["name"]: e["value"] for e in spec.get("env") or []}}
    argv: Sequence[str] = [spec["command"], *(spec.get("args") or [])]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=60, check=False
        )
    except FileNotFoundError:
        raise KubeError(
            f"the kubeconfig's credential plugin {spec['command']!r} is not on PATH"
        ) from None
    if done.returncode != 0:
        raise KubeError(f"credential plugin {spec['command']!r} failed: {done.stderr.strip()}")
    status: dict[str, Any] = json.loads(done.stdout).get("status") or {}
    return status


def api_server(doc: Mapping[str, Any]) -> ApiServer:
    """The API server and the user's credentials from a minified kubeconfig."""
    cluster = _one(doc, "clusters")
    user = _one(doc, "users")
    url = str(cluster.get("server", "")).rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise KubeError(f"the cluster's server {url!r} is not an http(s) URL")
    headers: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="kubectl-mirrorscope-") as d:
        tmp = Path(d)
        context: ssl.SSLContext | None = None
        if url.startswith("https://"):
            ca = _data_or_file(cluster, "certificate-authority", tmp)
            context = ssl.create_default_context(cafile=ca)
            if cluster.get("insecure-skip-tls-verify"):
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        token = user.get("token")
        if user.get("tokenFile"):
            token = Path(user["tokenFile"]).read_text().strip()
        cert = _data_or_file(user, "client-certificate", tmp)
        key = _data_or_file(user, "client-key", tmp)
        if user.get("exec"):
            status = _exec_credential(user["exec"])
            token = status.get("token", token)
            if status.get("clientCertificateData"):
                (tmp / "exec-cert").write_text(status["clientCertificateData"])
                (tmp / "exec-key").write_text(status["clientKeyData"])
                cert, key = str(tmp / "exec-cert"), str(tmp / "exec-key")
        if cert and context is not None:
            context.load_cert_chain(cert, key)  # read now: the files go with the directory
        if token:
            headers["Authorization"] = f"Bearer {token}"
    return ApiServer(url, headers, context)
