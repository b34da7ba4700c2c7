"""Bounded label cardinality: sticky top-K remotes per pod, a hard series bound, pod expiry.

Counters must stay monotonic, so every decision here is sticky: a remote that got its own series
keeps it, a remote folded into ``other`` stays folded (otherwise ``other`` would shrink), and a pod
admitted under the bound stays admitted until it is deleted. The bound is counted in worst-case
series per pod and per remote, so the exposition can never exceed it whatever the traffic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from analyzers import Endpoint
from exporters._aggregate import DNS_BUCKETS, RCODES, RTT_BUCKETS

log = logging.getLogger(__name__)

#: Series one pod may produce outside its remote pairs: pod packets+bytes × tx/rx (4), TCP
#: counters (3), DNS queries (1), DNS responses by rcode, two histograms (buckets + +Inf + sum +
#: count), and its ``other`` remote (bytes+packets × tx/rx).
POD_SERIES = 4 + 3 + 1 + len(RCODES) + (len(RTT_BUCKETS) + 3) + (len(DNS_BUCKETS) + 3) + 4
#: Series of one remote pair: bytes and packets, tx and rx.
PAIR_SERIES = 4
#: Series reserved for the families without pod labels: flows by protocol, capture health, malformed
#: reasons (at most ``MAX_MALFORMED_REASONS``), frames by encapsulation (at most
#: ``MAX_ENCAPSULATIONS``, the ``analyzers.Encap`` bits), the series accounting itself.
MAX_MALFORMED_REASONS = 32
MAX_ENCAPSULATIONS = 20
GLOBAL_SERIES = 64 + MAX_ENCAPSULATIONS


class EndpointDirectory(Protocol):
    """Who exists now: ``analyzers.IdentityMap`` fits."""

    def endpoints(self) -> set[Endpoint]: ...


@dataclass(frozen=True, slots=True)
class CardinalityConfig:
    """``top_k``: remotes per pod with their own series; ``max_series``: hard bound on the whole
    exposition; ``grace_s``: how long a pod missing from the identity map keeps its series."""

    top_k: int = 10
    max_series: int = 20_000
    grace_s: float = 60.0

    def __post_init__(self) -> None:
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if self.max_series < GLOBAL_SERIES + POD_SERIES:
            raise ValueError(
                f"max_series must be at least {GLOBAL_SERIES + POD_SERIES} "
                f"(room for one pod), got {self.max_series}"
            )
        if self.grace_s < 0:
            raise ValueError(f"grace_s must be >= 0, got {self.grace_s}")


class CardinalityGuard:
    """Decides which pods and remotes get series.

    Not thread-safe: the collector serialises scrapes.
    """

    def __init__(self, config: CardinalityConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self._clock = clock
        self._missing_since: dict[Endpoint, float] = {}
        self._expired: dict[Endpoint, float] = {}
        self._pods: set[Endpoint] = set()
        self._refused: set[Endpoint] = set()
        # local pod -> remote -> True (own series) / False (folded into ``other``)
        self._remotes: dict[Endpoint, dict[Endpoint, bool]] = {}
        self._used = GLOBAL_SERIES
        self.series_dropped_total = 0
        self.remotes_folded_total = 0

    @property
    def series_used(self) -> int:
        """Worst-case series of everything admitted so far, global reserve included."""
        return self._used

    @property
    def expired(self) -> Iterable[Endpoint]:
        """Pods whose series were dropped and must not come back until they reappear."""
        return self._expired.keys()

    def is_expired(self, pod: Endpoint) -> bool:
        return pod in self._expired

    def refresh(self, directory: EndpointDirectory, seen: Iterable[Endpoint]) -> set[Endpoint]:
        """Expire pods missing from ``directory`` for longer than the grace period; return them.

        A pod that comes back (same name, new incarnation) is live again. Expired pods are
        remembered for a while so that late flows of a deleted pod do not resurrect its series.
        """
        now = self._clock()
        live = directory.endpoints()
        for pod in [p for p in self._expired if p in live or now - self._expired[p] > _FORGET_S]:
            del self._expired[pod]
        for pod in [p for p in self._missing_since if p in live]:
            del self._missing_since[pod]
        newly: set[Endpoint] = set()
        for pod in seen:
            if pod in live or pod in self._expired:
                continue
            since = self._missing_since.setdefault(pod, now)
            if now - since >= self.config.grace_s:
                newly.add(pod)
        for pod in newly:
            self._expire(pod, now)
        return newly

    def _expire(self, pod: Endpoint, now: float) -> None:
        log.debug("expiring series of %s: gone from the identity map", pod.label)
        self._missing_since.pop(pod, None)
        self._expired[pod] = now
        self._refused.discard(pod)
        if pod in self._pods:
            self._pods.discard(pod)
            self._used -= POD_SERIES
        own = self._remotes.pop(pod, {})
        self._used -= PAIR_SERIES * sum(own.values())
        for remotes in self._remotes.values():
            if remotes.pop(pod, False):
                self._used -= PAIR_SERIES

    def admit_pod(self, pod: Endpoint) -> bool:
        """Whether ``pod`` gets series; refusals are counted once until the pod is admitted."""
        if pod in self._pods:
            return True
        if self._used + POD_SERIES <= self.config.max_series:
            self._pods.add(pod)
            self._refused.discard(pod)
            self._used += POD_SERIES
            return True
        if pod not in self._refused:
            if not self._refused:  # once per episode, not once per pod: a flood must not flood logs
                log.warning(
                    "series bound %d reached: %s and later pods get no series "
                    "(see mirrorscope_metric_series_dropped_total; raise the bound)",
                    self.config.max_series,
                    pod.label,
                )
            self._refused.add(pod)
            self.series_dropped_total += POD_SERIES
        return False

    def assign_remotes(
        self, pod: Endpoint, bytes_by_remote: Mapping[Endpoint, float]
    ) -> set[Endpoint]:
        """Remotes of admitted ``pod`` that have their own series; the others fold into ``other``.

        New remotes are considered biggest first, so the first scrape that sees a pod keeps its top
        talkers; later ones get a slot only while the pod has fewer than ``top_k``.
        """
        decided = self._remotes.setdefault(pod, {})
        own = sum(decided.values())
        fresh = [r for r in bytes_by_remote if r not in decided]
        fresh.sort(key=lambda r: bytes_by_remote[r], reverse=True)
        for remote in fresh:
            fits = self._used + PAIR_SERIES <= self.config.max_series
            if own < self.config.top_k and fits:
                decided[remote] = True
                own += 1
                self._used += PAIR_SERIES
            else:
                decided[remote] = False
                self.remotes_folded_total += 1
        return {r for r, mine in decided.items() if mine}


#: How long an expired pod is remembered: longer than the flow table's active timeout (30 min), so a
#: long flow of a deleted pod that ends late cannot bring its series back.
_FORGET_S = 7200.0
