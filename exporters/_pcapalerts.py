"""Retrospective capture on alert: a firing alert's pod, ``lookback`` before it and ``lookahead``
after, saved as one pcapng in a kept area outside the store's rotation.

``AlertCaptures.submit`` takes Alertmanager's webhook payload (version 4) and answers at once;
a thread waits until each capture's window has passed, reads it from the store and writes
``DIR/kept/alert-<UTC>-<hash>.pcapng`` (written as ``.part``, renamed when complete) with a
``.json`` beside it saying which alert, pod and window. Names are made here from a hash of the
alert's fingerprint: nothing from the request becomes a path. An alert Alertmanager sends again
(every ``repeat_interval`` while it fires) has the same fingerprint and start: one capture. The
kept area has its own quota; the oldest captures go first.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exporters._pcapngout import write_pcapng
from exporters._pcapquery import PcapArchive, PcapQuery
from exporters._pcapselect import Selection

__all__ = ["AlertCaptures", "KeptCapture"]

log = logging.getLogger(__name__)

_NS = 1_000_000_000
_KEPT = re.compile(r"alert-\d{8}T\d{6}Z-[0-9a-f]{16}\.pcapng")
#: After a window ends, frames still reach the store for about a ring-block timeout.
_SETTLE_S = 1.0
_REMEMBER_S = 24 * 3600.0  # fingerprints older than this may capture again


@dataclass(frozen=True, slots=True)
class KeptCapture:
    name: str
    size: int
    meta: dict[str, Any]


@dataclass(order=True, slots=True)
class _Job:
    due: float
    name: str
    alert: dict[str, Any]
    start_ns: int
    end_ns: int
    sel: Selection


class AlertCaptures:
    """See the module docstring. ``resolve(pod)`` gives a pod's ``Selection`` (or raises)."""

    def __init__(
        self,
        directory: Path,
        archive: PcapArchive,
        resolve: Callable[[str], Selection],
        pod_of: Callable[[], Callable[[str], str | None]],
        *,
        lookback_s: float,
        lookahead_s: float,
        quota_bytes: int,
        clock: Callable[[], float] = time.time,
        on_written: Callable[[bool], None] = lambda ok: None,
    ) -> None:
        self.directory = directory
        self._archive = archive
        self._resolve = resolve
        self._pod_of = pod_of
        self.lookback_s = lookback_s
        self.lookahead_s = lookahead_s
        self.quota_bytes = quota_bytes
        self._clock = clock
        self._on_written = on_written
        self._cond = threading.Condition()
        self._jobs: list[_Job] = []
        self._seen: dict[str, float] = {}
        self._stop = False
        self._thread: threading.Thread | None = None

    # --- the webhook -----------------------------------------------------------------------------
    def submit(self, payload: Any) -> dict[str, Any]:
        """Queue a capture for each firing alert with namespace and pod labels; what was done
        with each alert. ``ValueError`` when ``payload`` is not a webhook payload."""
        if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
            raise ValueError("not an Alertmanager webhook payload: no 'alerts' list")
        now = self._clock()
        results = []
        for alert in payload["alerts"]:
            results.append(self._take(alert, now))
        return {"alerts": results}

    def _take(self, alert: Any, now: float) -> dict[str, Any]:
        if not isinstance(alert, dict):
            return {"status": "skipped", "reason": "not an alert object"}
        raw = alert.get("labels")
        labels: dict[str, Any] = raw if isinstance(raw, dict) else {}
        name = str(labels.get("alertname", ""))
        if alert.get("status", "firing") != "firing":
            return {"alertname": name, "status": "skipped", "reason": "not firing"}
        ns, pod = labels.get("namespace"), labels.get("pod")
        if not isinstance(ns, str) or not isinstance(pod, str) or not ns or not pod:
            return {"alertname": name, "status": "skipped", "reason": "no namespace/pod labels"}
        fingerprint = str(alert.get("fingerprint") or json.dumps(labels, sort_keys=True))
        key = f"{fingerprint}|{alert.get('startsAt', '')}"
        target = f"{ns}/{pod}"
        try:
            sel = self._resolve(target)
        except Exception as e:  # any reason the pod is unknown is the answer
            return {"alertname": name, "pod": target, "status": "skipped", "reason": str(e)}
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
        kept = f"alert-{stamp}-{digest}.pcapng"
        with self._cond:
            self._seen = {k: t for k, t in self._seen.items() if now - t < _REMEMBER_S}
            if key in self._seen:
                return {"alertname": name, "pod": target, "status": "duplicate"}
            self._seen[key] = now
            job = _Job(
                due=now + self.lookahead_s + _SETTLE_S,
                name=kept,
                alert={"alertname": name, "fingerprint": fingerprint, "labels": labels},
                start_ns=int((now - self.lookback_s) * _NS),
                end_ns=int((now + self.lookahead_s) * _NS),
                sel=sel,
            )
            heapq.heappush(self._jobs, job)
            self._cond.notify()
        self._ensure_thread()
        return {"alertname": name, "pod": target, "status": "accepted", "file": kept,
                "ready_in_s": round(job.due - now, 1)}  # fmt: skip

    # --- the kept area ---------------------------------------------------------------------------
    @property
    def kept_dir(self) -> Path:
        return self.directory

    def captures(self) -> list[KeptCapture]:
        """The kept captures, oldest first."""
        out = []
        for path in self._files():
            meta: dict[str, Any] = {}
            with contextlib.suppress(OSError, ValueError):
                meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            try:
                out.append(KeptCapture(path.name, path.stat().st_size, meta))
            except FileNotFoundError:
                continue
        return out

    def path_of(self, name: str) -> Path | None:
        """The kept file called ``name`` if the listing has one (never a path made from it)."""
        for path in self._files():
            if path.name == name:
                return path
        return None

    def usage(self) -> tuple[int, int]:
        """Kept files and their bytes."""
        kept = self.captures()
        return len(kept), sum(k.size for k in kept)

    def _files(self) -> list[Path]:
        try:
            names = sorted(n for n in os.listdir(self.directory) if _KEPT.fullmatch(n))
        except FileNotFoundError:
            return []
        return [self.directory / n for n in names]

    # --- the worker ------------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="alert-captures", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop and (not self._jobs or self._jobs[0].due > self._clock()):
                    wait = self._jobs[0].due - self._clock() if self._jobs else None
                    self._cond.wait(timeout=wait)
                if self._stop:
                    return
                job = heapq.heappop(self._jobs)
            try:
                self._write(job)
                self._on_written(True)
            except Exception:  # one capture failing must not end the others
                log.exception("alert capture %s failed", job.name)
                self._on_written(False)

    def _write(self, job: _Job) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        q = PcapQuery.of(
            addresses=job.sel.addresses, macs=job.sel.macs, start_ns=job.start_ns,
            end_ns=job.end_ns,
        )  # fmt: skip
        final = self.directory / job.name
        part = final.with_name(final.name + ".part")
        with part.open("wb") as out:
            packets = write_pcapng(self._archive.query(q), out, pod_of=self._pod_of())
        meta = {
            **job.alert,
            "pod": job.sel.label,
            "addresses": list(job.sel.addresses),
            "macs": list(job.sel.macs),
            "start_ns": job.start_ns,
            "end_ns": job.end_ns,
            "packets": packets,
        }
        final.with_suffix(".json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        os.replace(part, final)
        log.info("alert capture %s: %d packets of %s", job.name, packets, job.sel.label)
        self._enforce_quota()

    def _enforce_quota(self) -> None:
        files = self._files()
        sizes = [p.stat().st_size for p in files]
        total = sum(sizes)
        for path, size in zip(files, sizes, strict=True):
            if total <= self.quota_bytes:
                break
            path.unlink(missing_ok=True)
            path.with_suffix(".json").unlink(missing_ok=True)
            total -= size
            log.info("kept area over its quota: deleted %s", path.name)
