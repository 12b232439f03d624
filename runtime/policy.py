"""Which endpoint of a pool gets a request: endpoint state, outlier ejection and the routing policy.

The router asks ``policy.choose(pool, candidates, request)`` and nothing else, so a policy (KV-aware
routing, issue 25) can replace :class:`LeastOutstanding` without touching the forwarding code.

:class:`LeastOutstanding` is upstream's ``LoadBalancingRouter`` policy (``tensorrt_llm/serve/
router.py`` @3e53e4adfea6) counted in requests from the moment one is routed (waiting for its
first byte included), ties broken round-robin.

Passive outlier ejection follows Envoy's outlier detection (``consecutive_5xx`` /
``consecutive_gateway_failure``; ejected for ``base_ejection_time`` times the number of ejections
in a row, at most ``max_ejection_time``: envoyproxy.io docs, ``config.cluster.v3.OutlierDetection``
v1.28 and the outlier-detection architecture overview): ``eject_after`` consecutive failures (5xx,
timeout, broken stream) eject an endpoint for ``base_s * n`` seconds (n-th ejection in a row, at
most ``max_s``); a refused connection ejects at once. An ejected endpoint is re-admitted when its
time is up; a success resets its counts. Like Envoy's ``max_ejection_percent`` / panic threshold,
a 5xx or timeout never ejects a pool's last available endpoint (a refused connection does: the
server is gone). Active ``/health`` probes (``Endpoint.healthy``) gate endpoints as well.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("runtime.router")


@dataclass(eq=False)
class Endpoint:
    url: str
    inflight: int = 0
    """Requests routed here and not yet ended, counted from the moment they were routed."""
    healthy: bool = True
    """The last active ``/health`` probe passed."""
    failures: int = 0
    """Consecutive failures since the last success."""
    ejections: int = 0
    ejected_until: float = 0.0

    def available(self, now: float) -> bool:
        return self.healthy and now >= self.ejected_until


@dataclass(frozen=True)
class RequestInfo:
    """What a policy may look at: the route and the prompt size (token ids when known)."""

    path: str
    prompt_tokens: int = 0
    prompt_ids: tuple[int, ...] | None = None


class Policy(Protocol):
    def choose(self, pool: str, candidates: list[Endpoint], request: RequestInfo) -> Endpoint:
        """One of ``candidates`` (the available endpoints of ``pool``, never empty) for ``request``."""
        ...


class LeastOutstanding:
    """Fewest outstanding requests; ties round-robin (module docstring)."""

    def __init__(self) -> None:
        self._rr: dict[str, itertools.count[int]] = {}

    def choose(self, pool: str, candidates: list[Endpoint], request: RequestInfo) -> Endpoint:
        low = min(e.inflight for e in candidates)
        best = [e for e in candidates if e.inflight == low]
        rr = self._rr.get(pool)
        if rr is None:
            rr = self._rr[pool] = itertools.count()
        return best[next(rr) % len(best)]


@dataclass(frozen=True)
class Outliers:
    """Passive outlier ejection (module docstring)."""

    eject_after: int = 3
    base_s: float = 2.0
    max_s: float = 60.0

    def success(self, ep: Endpoint) -> None:
        ep.failures = 0
        ep.ejections = 0

    def failure(self, ep: Endpoint, now: float, pool: str, reason: str, immediate: bool = False,
                last: bool = False) -> None:
        """Count a failure of ``ep``; ``immediate`` ejects at once (refused connection), ``last``
        (the pool's last available endpoint) keeps it in rotation unless ``immediate``."""
        ep.failures += 1
        if not immediate and (ep.failures < self.eject_after or last):
            return
        ep.ejections += 1
        seconds = min(self.max_s, self.base_s * ep.ejections)
        ep.ejected_until = now + seconds
        ep.failures = 0
        log.warning("%s: ejected %s for %.1f s (%s)", pool, ep.url, seconds, reason)
