"""The watch loop: keep a mirror spec true while others wipe mirrors and daemons restart.

kube-ovn-cni runs ``ovs-vsctl clear bridge br-int mirrors`` at every start; ovs-vswitchd restarts
recreate mirror0 administratively down; pods come and go. The keeper reacts to every IDL change
(polled every ``poll`` s) and re-checks the link every ``tick`` s.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from capture import MirrorscopeError
from mirrorctl.ovs._backoff import Backoff
from mirrorctl.ovs._defaults import DEFAULT_BRIDGE, DEFAULT_OUTPUT
from mirrorctl.ovs._errors import OVSDBUnreachableError
from mirrorctl.ovs._mirrors import ReconcileReport, reconcile, recorded_spec
from mirrorctl.ovs._ovsdb import Connector, OVSDBSession, Snapshot, connect, follow
from mirrorctl.ovs._spec import MirrorSpec
from mirrorctl.ovs._tunnels import TunnelSpec

log = logging.getLogger(__name__)

Observer = Callable[[OVSDBSession, Snapshot], None]
#: Where a following keeper takes its spec from on every pass (e.g. ``KubeOvnFollower``).
SpecSource = Callable[[Snapshot], MirrorSpec]


class MirrorKeeper:
    """Keeps ``spec`` applied on ``bridge``; run it in a thread with :meth:`run`.

    The in-memory spec is authoritative when our row is gone (a wipe); while the row exists, a
    selection another mirrorctl recorded in it (``enable``/``disable``) is adopted. Given a
    :data:`SpecSource` instead of a spec, the keeper follows it: each pass asks it for the spec,
    and nothing recorded in our row is adopted.
    """

    def __init__(
        self,
        endpoint: str,
        spec: MirrorSpec | SpecSource,
        *,
        bridge: str = DEFAULT_BRIDGE,
        output: str = DEFAULT_OUTPUT,
        netns: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
        poll: float = 0.1,
        tick: float = 0.5,
        backoff: Backoff | None = None,
        connector: Connector | None = None,
        observers: Sequence[Observer] = (),
        tunnel: TunnelSpec | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.source = None if isinstance(spec, MirrorSpec) else spec
        self.spec = spec if isinstance(spec, MirrorSpec) else MirrorSpec()
        self.bridge = bridge
        self.output = output
        self.netns = netns
        self.clock = clock
        self.sleep = sleep
        self.poll = poll
        self.tick = tick
        self.backoff = backoff or Backoff()
        self.connector = connector or connect
        self.observers = tuple(observers)
        self.tunnel = tunnel
        self.restores = 0
        self.last_change_at: float | None = None
        self.last_report: ReconcileReport | None = None
        self._written: MirrorSpec | None = None
        self._warned: tuple[str, ...] = ()
        self._first = True
        self._last_error: str | None = None

    def reconcile_once(
        self, session: OVSDBSession | None = None, snapshot: Snapshot | None = None
    ) -> ReconcileReport:
        """One pass: adopt a changed recorded intent, then reconcile. Opens a session if needed."""
        if session is None:
            with self.connector(self.endpoint) as own:
                return self.reconcile_once(own)
        snap = snapshot if snapshot is not None else session.snapshot()
        recorded = recorded_spec(snap, self.bridge, self.output)
        if self.source is not None:
            self.spec, recorded = self.source(snap), None
        if self._first and recorded is not None:
            # What earlier enable/watch runs recorded is kept too, not only this run's flags.
            self.spec = self.spec | recorded
        self._first = False
        if recorded is not None and self._written is not None and recorded != self._written:
            log.info(
                "adopting the selection recorded by another mirrorctl: %s", recorded.describe()
            )
            self.spec = recorded
        report = reconcile(
            session,
            self.spec,
            bridge=self.bridge,
            output=self.output,
            netns=self.netns,
            link_timeout=0,
            snapshot=snap,
            tunnel=self.tunnel,
        )
        self._written = self.spec if report.plan.want_row else None
        self._log(report)
        self.last_report = report
        return report

    def _log(self, report: ReconcileReport) -> None:
        plan = report.plan
        if report.changed:
            verb = "restored" if self.restores else "applied"
            self.restores += 1
            self.last_change_at = self.clock()
            log.warning(
                "%s mirror %s on %s (%s)", verb, plan.name, plan.bridge, plan.spec.describe()
            )
        if report.link_raised:
            log.warning("brought %s up", plan.output)
        if plan.want_row and not report.link_present:
            log.warning("%s not present yet (ovs-vswitchd down?)", plan.output)
        if plan.missing != self._warned:
            for what in plan.missing:
                log.warning("%s has no port on %s yet; waiting for it", what, plan.bridge)
            self._warned = plan.missing

    def _on_change(self, session: OVSDBSession, snapshot: Snapshot) -> None:
        for observer in self.observers:
            observer(session, snapshot)
        try:
            self.reconcile_once(session, snapshot)
        except OVSDBUnreachableError:
            raise  # follow() reconnects with backoff
        except MirrorscopeError as exc:
            # A missing bridge or netns persists across ticks: say it once, until it changes.
            if str(exc) != self._last_error:
                log.warning("cannot keep the mirror yet: %s", exc)
                self._last_error = str(exc)
            return
        self._last_error = None

    def run(self, stop: threading.Event) -> None:
        """Keep the spec until ``stop`` is set; OVSDB outages are retried with backoff."""
        follow(
            self.endpoint,
            self._on_change,
            stop,
            poll=self.poll,
            tick=self.tick,
            connector=self.connector,
            backoff=self.backoff,
            sleep=self.sleep,
        )
