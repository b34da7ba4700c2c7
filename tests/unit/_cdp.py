"""A headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``).

No websocket client and no browser-automation package: Chromium reads NUL-terminated JSON
commands on fd 3 and writes replies and events on fd 4. Enough to open a page, run script in it,
click, take a screenshot and let it download files, which ``--dump-dom`` cannot do.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

CHROMIUM = shutil.which("chromium")


class CdpError(RuntimeError):
    pass


class Browser:
    """One headless Chromium; ``open`` a page, then ``eval`` in it."""

    def __init__(self, downloads: Path) -> None:
        if CHROMIUM is None:
            raise CdpError("no chromium on PATH")
        self._profile = tempfile.mkdtemp(prefix="cdp-profile-")
        to_child, self._out = os.pipe()
        self._in, from_child = os.pipe()

        def fds() -> None:  # in the child: the pipe ends where Chromium expects them, only them
            os.dup2(to_child, 100)  # via high numbers: either end may itself be 3 or 4
            os.dup2(from_child, 101)
            os.dup2(100, 3)
            os.dup2(101, 4)
            os.closerange(5, 4096)

        self._proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-pipe",
                f"--user-data-dir={self._profile}",
                "--window-size=1400,1000",
                "about:blank",
            ],
            close_fds=False,  # fds() closes all but the pipes; subprocess would close 3 and 4
            preexec_fn=fds,  # noqa: PLW1509 - only dup2/close, before exec
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_child)
        os.close(from_child)
        self._id = 0
        self._buf = b""
        self.session = ""
        self.send("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(downloads))

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Run one command; its result (events read meanwhile are dropped)."""
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._out, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise CdpError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buf:
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise CdpError("chromium closed the pipe")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\0")
        value: dict[str, Any] = json.loads(line)
        return value

    def open(self, url: str) -> str:
        """A new tab on ``url``; its session id (also kept as the default session)."""
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.attach(target)
        self.send("Page.enable", self.session)
        self.send("Page.navigate", self.session, url=url)
        return self.session

    def attach(self, target: str) -> str:
        session: str = self.send("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        return session

    def eval(self, expression: str, session: str | None = None) -> Any:
        """``expression``'s value (a promise is awaited)."""
        result = self.send(
            "Runtime.evaluate",
            session or self.session,
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
            userGesture=True,
        )
        if "exceptionDetails" in result:
            raise CdpError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, expression: str, timeout: float = 30.0, session: str | None = None) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = self.eval(expression, session)
            except CdpError:
                value = None  # the page is still loading
            if value:
                return value
            time.sleep(0.2)
        raise CdpError(f"timed out waiting for {expression}")

    def screenshot(self, session: str | None = None) -> bytes:
        data = self.send("Page.captureScreenshot", session or self.session, format="png")["data"]
        return base64.b64decode(data)

    def targets(self) -> list[dict[str, Any]]:
        infos: list[dict[str, Any]] = self.send("Target.getTargets")["targetInfos"]
        return infos

    def close(self) -> None:
        with contextlib.suppress(CdpError, OSError):
            self.send("Browser.close")
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for fd in (self._in, self._out):
            os.close(fd)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(
        self,
        typ: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
