"""Timeouts, admission and shutdown of the llmapi CPU tiers (``disagg:deployments[i].serving``).

``python -m runtime.frontend`` and ``python -m runtime.router`` take the same serving flags
(``runtime/serve.py`` ``add_serving_flags``). This module holds their per-deployment config and the
pure function that fills in what the config leaves out: from the workload's SLO and plan where the
deployment declares one, else the processes' own defaults.

The one non-obvious decision: the configured timeouts are the router's (the tier that talks to the
workers and ejects a worker that times out); the frontend waits ``TIER_SLACK_S`` longer for the same
event, so the router's timeout fires first, ejects the worker and ends the stream with its SSE error
event instead of the frontend cutting the router off (which the router would read as a client that
left, not as a slow worker). In prefill-decode mode the router waits for a first byte twice in a
row (the context phase's whole response, then the generation server's first token, each bounded by
``--first-byte-timeout``), so the frontend's first-byte wait spans both phases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from pydantic import Field

from components.config.base import ConfigModel
from components.config.capacity import deployment_drain_seconds, max_output_tokens
from components.config.workload import WorkloadConfig, typical

# The processes' defaults (runtime/upstream.py Timeouts, runtime/serve.py add_serving_flags, the
# frontend's and router's parse_args): used where no workload is set. tests/components/config/
# test_serving_tiers.py reads them from the real parsers, so they cannot drift apart.
PROCESS_CONNECT_S = 2.0
PROCESS_FIRST_BYTE_S = 300.0
PROCESS_IDLE_S = 60.0
PROCESS_REQUEST_S = 3600.0
PROCESS_HEADER_S = 10.0
PROCESS_BODY_S = 30.0
PROCESS_QUEUE_TIMEOUT_S = 1.0
PROCESS_MAX_INFLIGHT = {"frontend": 1024, "router": 2048}

FIRST_BYTE_FLOOR_S = 30.0
FIRST_BYTE_TTFT_MULTIPLE = 20
"""First-byte timeout = max(FIRST_BYTE_FLOOR_S, FIRST_BYTE_TTFT_MULTIPLE × slo.ttftMs).

The timeout is there to find a hung worker, not to enforce the SLO: the SLO is a percentile at the
planned load, and the tiers admit up to ``INFLIGHT_HEADROOM`` × the plan's concurrency, so under a
burst a request can wait behind a whole batch of prefills (at 2× the planned concurrency, roughly one
more round of every queued prompt's context phase) before its first token. A timeout near the TTFT
would turn the latency tail into errors, retries and ejected healthy workers. 20 × TTFT leaves an
order of magnitude for that queue; the 30 s floor covers one maxSeqLen prompt's context phase and
KV transfer on a cold prefill server, whatever a tight TTFT SLO says (dev: 800 ms, prod: 1 s → 30 s)."""

IDLE_FLOOR_S = 10.0
IDLE_TPOT_MULTIPLE = 100
"""Idle (inter-token) timeout = max(IDLE_FLOOR_S, IDLE_TPOT_MULTIPLE × slo.tpotMs).

A healthy stream's gap is one decode step (≈ TPOT), but a request the scheduler pauses (KV cache
full: it is preempted and its context recomputed) or that shares steps with a long chunked prefill
misses many steps at once; 100 missed tokens is no longer a slow step but a stalled worker. The floor
covers a recompute of a long context and the Python/GC pauses a TPOT of tens of ms does not show."""

REQUEST_TPOT_MARGIN = 1.5
"""Request (total) timeout = max(drain, firstByte + maxOutputTokens × REQUEST_TPOT_MARGIN × slo.tpotMs):
the longest output at half again the SLO's TPOT after the first-byte budget, and never below the
longest stream the scale-in drain waits for (``capacity.deployment_drain_seconds``), so the timeout
never cuts a stream the drain is sized to let finish."""

TIER_SLACK_S = 5.0
"""The frontend's first-byte, idle and request timeouts exceed the router's by this much (module
docstring): more than the frontend's own work before it reaches the router (body read, tokenizing,
connecting) and the router's timer granularity (one re-arm per idle period)."""

KEDA_IN_FLIGHT_TARGET = {"frontend": 64, "router": 128}
"""Requests in flight per replica above which KEDA adds a replica (the tiers' ``target_in_flight``)."""
INFLIGHT_HEADROOM = 2
INFLIGHT_FLOOR = {tier: 2 * target for tier, target in KEDA_IN_FLIGHT_TARGET.items()}
"""Max in-flight per replica = max(INFLIGHT_FLOOR[tier], ceil(INFLIGHT_HEADROOM × concurrency / minimum replicas)).

``concurrency``: the plan's (``workload.prediction.concurrency``: what the layout holds at the
SLO), else the declared ``workload.concurrency``, else Little's law on ``workload.requestRate`` ×
(TTFT + typical output × TPOT). Each replica takes its share at the tier's minimum replicas (the
autoscaler only adds replicas, spreading the load thinner) times 2 for an uneven balancer and
bursts; beyond that the GPUs could only queue the request past its SLO, so a 429 with Retry-After
is the better answer. The floor is twice the in-flight target per replica at which KEDA adds one
(KEDA_IN_FLIGHT_TARGET; with KEDA a bound at or below it is refused), so the scaler sees its target long before the tier refuses; it also
keeps tiny workloads from refusing a balancer's ordinary unevenness."""


class TimeoutsConfig(ConfigModel):
    """Seconds; unset: derived from ``workload.slo`` (``components/config/serving_tiers.py``), else the
    processes' defaults. They are the router's; the frontend's first-byte, idle and request timeouts
    are ``TIER_SLACK_S`` (5 s) longer."""

    connect_seconds: float | None = Field(default=None, gt=0, le=600)
    """Connecting upstream (``--connect-timeout``); default 2."""
    first_byte_seconds: float | None = Field(default=None, gt=0, le=86_400)
    """From a request to its first token (``--first-byte-timeout``); default max(30, 20 × slo.ttftMs)."""
    idle_seconds: float | None = Field(default=None, gt=0, le=86_400)
    """Between two tokens of a stream (``--idle-timeout``); default max(10, 100 × slo.tpotMs)."""
    request_seconds: float | None = Field(default=None, gt=0, le=86_400)
    """A whole request (``--request-timeout``); default max(drain, firstByte + maxOutput × 1.5 × tpot)."""
    header_seconds: float | None = Field(default=None, gt=0, le=600)
    """A client's request headers (``--header-timeout``, slow-client protection); default 10."""
    body_seconds: float | None = Field(default=None, gt=0, le=600)
    """A client's request body (``--body-timeout``, slow-client protection); default 30."""


class AdmissionConfig(ConfigModel):
    """Bounded in-flight requests per replica; beyond them (and the queue) 429 with Retry-After."""

    frontend_max_inflight: int | None = Field(default=None, ge=1)
    """Per frontend replica (``--max-inflight``); default max(128, 2 × the plan's concurrency / frontend.minReplicas)."""
    router_max_inflight: int | None = Field(default=None, ge=1)
    """Per router replica (``--max-inflight``); default max(256, 2 × the plan's concurrency / orchestrator.replicas)."""
    max_queue: int = Field(default=0, ge=0)
    """Requests per replica that may wait for a slot (``--max-queue``); 0: refuse at once."""
    queue_timeout_seconds: float = Field(default=PROCESS_QUEUE_TIMEOUT_S, gt=0, le=60)
    """Longest wait of a queued request (``--queue-timeout``)."""


class ServingTiersConfig(ConfigModel):
    """The llmapi frontend's and router's timeouts, admission and shutdown (runtime llmapi only)."""

    timeouts: TimeoutsConfig = TimeoutsConfig()
    admission: AdmissionConfig = AdmissionConfig()
    drain_delay_seconds: float = Field(default=0.0, ge=0, le=600)
    """On SIGTERM, seconds readiness reports 503 before the listener closes (``--drain-delay``).
    0: the pods' preStop sleep (``serving/drain.py`` ENDPOINT_REMOVAL_S) already took them out of the
    endpoints before SIGTERM; any value here is added to terminationGracePeriodSeconds."""


@dataclass(frozen=True)
class TierSettings:
    """One tier's serving flags, resolved (``runtime/serve.py`` add_serving_flags, same names)."""

    connect_timeout: float
    first_byte_timeout: float
    idle_timeout: float
    request_timeout: float
    max_inflight: int
    max_queue: int
    queue_timeout: float
    header_timeout: float
    body_timeout: float
    drain_delay: float


def workload_concurrency(workload: WorkloadConfig) -> int:
    """Requests in flight the deployment is sized for (see INFLIGHT_FLOOR)."""
    if workload.prediction is not None:
        return workload.prediction.concurrency
    if workload.concurrency is not None:
        return workload.concurrency
    assert workload.request_rate is not None  # the loader requires one target
    latency_s = (workload.slo.ttft_ms + typical(workload.output_tokens) * workload.slo.tpot_ms) / 1000
    return max(1, math.ceil(workload.request_rate * latency_s))


def max_inflight_per_replica(tier: str, concurrency: int, min_replicas: int) -> int:
    return max(INFLIGHT_FLOOR[tier], math.ceil(INFLIGHT_HEADROOM * concurrency / max(1, min_replicas)))


def slo_timeouts(workload: WorkloadConfig | None, max_output_tokens: int, drain_seconds: int) -> tuple[float, float, float]:
    """(first byte, idle, request) seconds of the router by default (constants above)."""
    if workload is None:
        return PROCESS_FIRST_BYTE_S, PROCESS_IDLE_S, max(PROCESS_REQUEST_S, float(drain_seconds))
    ttft_s, tpot_s = workload.slo.ttft_ms / 1000, workload.slo.tpot_ms / 1000
    first_byte = max(FIRST_BYTE_FLOOR_S, FIRST_BYTE_TTFT_MULTIPLE * ttft_s)
    idle = max(IDLE_FLOOR_S, IDLE_TPOT_MULTIPLE * tpot_s)
    request = max(float(drain_seconds), math.ceil(first_byte + max_output_tokens * REQUEST_TPOT_MARGIN * tpot_s))
    return first_byte, idle, float(request)


def resolve_tiers(
    serving: ServingTiersConfig,
    workload: WorkloadConfig | None,
    *,
    max_output_tokens: int,
    drain_seconds: int,
    frontend_min_replicas: int,
    router_min_replicas: int,
    phases: int = 1,
) -> dict[str, TierSettings]:
    """``{"frontend": ..., "router": ...}``: the configured values, the rest derived (module constants).
    ``phases``: first-byte waits of the router in a row (2 in prefill-decode mode, module docstring)."""
    t, a = serving.timeouts, serving.admission
    first_byte, idle, request = slo_timeouts(workload, max_output_tokens, drain_seconds)
    concurrency = workload_concurrency(workload) if workload is not None else None

    def inflight(tier: str, configured: int | None, replicas: int) -> int:
        if configured is not None:
            return configured
        if concurrency is None:
            return PROCESS_MAX_INFLIGHT[tier]
        return max_inflight_per_replica(tier, concurrency, replicas)

    router = TierSettings(
        connect_timeout=t.connect_seconds if t.connect_seconds is not None else PROCESS_CONNECT_S,
        first_byte_timeout=t.first_byte_seconds if t.first_byte_seconds is not None else first_byte,
        idle_timeout=t.idle_seconds if t.idle_seconds is not None else idle,
        request_timeout=t.request_seconds if t.request_seconds is not None else request,
        max_inflight=inflight("router", a.router_max_inflight, router_min_replicas),
        max_queue=a.max_queue,
        queue_timeout=a.queue_timeout_seconds,
        header_timeout=t.header_seconds if t.header_seconds is not None else PROCESS_HEADER_S,
        body_timeout=t.body_seconds if t.body_seconds is not None else PROCESS_BODY_S,
        drain_delay=serving.drain_delay_seconds,
    )
    frontend = replace(
        router,
        first_byte_timeout=phases * router.first_byte_timeout + TIER_SLACK_S,
        idle_timeout=router.idle_timeout + TIER_SLACK_S,
        # the generation exchange's total starts after the context phase
        request_timeout=router.request_timeout + (phases - 1) * router.first_byte_timeout + TIER_SLACK_S,
        max_inflight=inflight("frontend", a.frontend_max_inflight, frontend_min_replicas),
    )
    return {"frontend": frontend, "router": router}


def tier_problems(serving: ServingTiersConfig, tiers: dict[str, TierSettings], keda: bool = False) -> list[str]:
    """Inconsistent values, one line each naming the key, the value and the fix (relative to the
    deployment); ``tiers``: the resolved settings (derived values are named as such); ``keda``: KEDA
    scales the tiers on requests in flight."""
    t, router = serving.timeouts, tiers["router"]

    def name(key: str, value: float, configured: float | None) -> str:
        origin = "" if configured is not None else " (derived)"
        return f"serving.timeouts.{key} {value:g}{origin}"

    request = name("requestSeconds", router.request_timeout, t.request_seconds)
    problems = []
    if router.first_byte_timeout > router.request_timeout:
        problems.append(
            f"{name('firstByteSeconds', router.first_byte_timeout, t.first_byte_seconds)} is longer than {request}: "
            "every stream would hit the request timeout first; lower firstByteSeconds or raise requestSeconds"
        )
    if router.idle_timeout > router.request_timeout:
        problems.append(
            f"{name('idleSeconds', router.idle_timeout, t.idle_seconds)} is longer than {request}: "
            "a stalled stream would never reach it; lower idleSeconds or raise requestSeconds"
        )
    if router.connect_timeout >= router.first_byte_timeout:
        problems.append(
            f"{name('connectSeconds', router.connect_timeout, t.connect_seconds)} is not shorter than "
            f"{name('firstByteSeconds', router.first_byte_timeout, t.first_byte_seconds)}: the first byte "
            "includes the connection; lower connectSeconds or raise firstByteSeconds"
        )
    if serving.admission.max_queue and router.queue_timeout >= router.first_byte_timeout:
        problems.append(
            f"serving.admission.queueTimeoutSeconds {router.queue_timeout:g} is not shorter than "
            f"{name('firstByteSeconds', router.first_byte_timeout, t.first_byte_seconds)}: a queued request "
            "would time out before it was sent; lower queueTimeoutSeconds"
        )
    for tier, key in (("frontend", "frontendMaxInflight"), ("router", "routerMaxInflight")):
        bound, target = tiers[tier].max_inflight, KEDA_IN_FLIGHT_TARGET[tier]
        if keda and bound <= target:
            problems.append(
                f"serving.admission.{key} {bound} is not above the {tier}'s KEDA target of {target} requests in "
                f"flight per replica: the {tier} would refuse requests before KEDA scales it out; raise {key} "
                f"above {target}"
            )
    return problems


def serving_drain_seconds(config: Any, deployment: Any) -> int:
    """Seconds the scale-in drain of ``deployment`` waits for its streams: the capacity estimate
    (``capacity.deployment_drain_seconds``, the longest output at 50 ms per token), or the router's
    request timeout where that is longer — a stream may run until it (an SLO TPOT above ~33 ms makes
    the derived timeout ``firstByte + maxOutput × 1.5 × tpot`` longer than the estimate, and so may an
    explicit ``requestSeconds``), and a shorter drain would cut it at scale-in. Without a workload the
    router runs its process default (1 h); the drain keeps the estimate there rather than holding
    every terminating pod for an hour (docs/capacity.md)."""
    estimate = deployment_drain_seconds(config, deployment)
    if deployment.runtime != "llmapi":
        return estimate
    configured = deployment.serving.timeouts.request_seconds
    if configured is not None:
        request = configured
    elif deployment.workload is not None:
        request = slo_timeouts(deployment.workload, max_output_tokens(config, deployment), estimate)[2]
    else:
        return estimate
    return max(estimate, math.ceil(request))


def deployment_tiers(config: Any, deployment: Any) -> dict[str, TierSettings]:
    """:func:`resolve_tiers` of an llmapi ``deployment`` of the stack ``config`` (a StackConfig)."""
    return resolve_tiers(
        deployment.serving,
        deployment.workload,
        max_output_tokens=max_output_tokens(config, deployment),
        drain_seconds=serving_drain_seconds(config, deployment),
        frontend_min_replicas=deployment.frontend.min_replicas,
        router_min_replicas=deployment.orchestrator.replicas,
        phases=2 if deployment.mode == "prefill-decode" else 1,
    )
