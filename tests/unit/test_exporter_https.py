"""The listener over TLS (``--tls-cert``/``--tls-key``): HTTPS with a certificate made here by
``openssl req``, the token still guarding the API, plain HTTP refused, and bad files failing at
start; the capture-run flags checked before anything starts."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from exporters import (
    CaptureHealth,
    ExporterError,
    HttpServer,
    TlsFiles,
    build_app,
    status_router,
)
from mirrorctl.cli import build_parser
from mirrorctl.cli._settings import apply_settings, command_of
from mirrorctl.ovs import UsageError
from mirrorctl.service._config import peer_urls, tls_files
from tests.unit.test_exporter_http_api import TOKEN

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl CLI")


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1 and localhost."""
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=mirrorscope-test",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(d / "tls.key"), "-out", str(d / "tls.crt")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return TlsFiles(d / "tls.crt", d / "tls.key")


@pytest.fixture
def https(cert: TlsFiles) -> Iterator[HttpServer]:
    health = CaptureHealth(received=1, kernel_dropped=0, malformed={}, duplicates=0)
    app = build_app(
        CollectorRegistry(), token=TOKEN, routers=[status_router("node-tls", lambda: health)]
    )
    with HttpServer(app, "127.0.0.1:0", tls=cert) as srv:
        yield srv


def _get(url: str, context: ssl.SSLContext | None, token: str | None = None) -> int:
    req = urllib.request.Request(url)  # noqa: S310 - loopback, the scheme is the test's
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5, context=context) as resp:  # noqa: S310
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code


def test_https_serves_verified_and_token_still_applies(https: HttpServer, cert: TlsFiles) -> None:
    """A client trusting the certificate gets /healthz open, /api/ 401 without the token and
    200 with it; a client that verifies against the system's CAs is refused the handshake."""
    host, port = https.address
    assert https.scheme == "https"
    trusted = ssl.create_default_context(cafile=str(cert.cert))
    base = f"https://{host}:{port}"
    assert _get(base + "/healthz", trusted) == 200
    assert _get(base + "/api/v1/status", trusted) == 401
    assert _get(base + "/api/v1/status", trusted, token="wrong")  # noqa: S106 == 401
    assert _get(base + "/api/v1/status", trusted, token=TOKEN) == 200
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        _get(base + "/healthz", ssl.create_default_context())


def test_plain_http_to_the_tls_listener_gets_no_answer(https: HttpServer) -> None:
    """The listener speaks only TLS: a plain HTTP request gets no HTTP response."""
    host, port = https.address
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        _get(f"http://{host}:{port}/healthz", None)


def test_bad_key_fails_at_start(cert: TlsFiles, tmp_path: Path) -> None:
    """A key file that is not a PEM key is an ExporterError from start(), naming the files."""
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    app = build_app(CollectorRegistry(), token=None)
    with pytest.raises(ExporterError, match=r"bad\.key"):
        HttpServer(app, "127.0.0.1:0", tls=TlsFiles(cert.cert, bad)).start()


def test_tls_and_peers_flags_are_checked(cert: TlsFiles, tmp_path: Path) -> None:
    """--tls-cert needs --tls-key and existing files; --peers takes http(s) URLs, several at
    once, and the environment's comma-separated form."""
    assert tls_files(None, None) is None
    assert tls_files(cert.cert, cert.key) == cert
    with pytest.raises(UsageError, match="go together"):
        tls_files(cert.cert, None)
    with pytest.raises(UsageError, match="no such file"):
        tls_files(cert.cert, tmp_path / "missing.key")
    assert peer_urls(["http://a:10097/", "https://b"]) == ("http://a:10097", "https://b")
    with pytest.raises(UsageError, match="http"):
        peer_urls(["a:10097"])
    parser = build_parser()
    args = parser.parse_args(["capture", "run", "--peers", "http://a", "http://b"])
    assert args.peers == ["http://a", "http://b"]
    argv = ["capture", "run"]
    env = {"MIRRORSCOPE_PEERS": "http://a,http://b", "MIRRORSCOPE_TLS_CERT": str(cert.cert)}
    apply_settings(parser, env, None, command_of(parser, parser.parse_args(argv)))
    args = parser.parse_args(argv)
    assert args.peers == ["http://a", "http://b"]
    assert args.tls_cert == cert.cert
