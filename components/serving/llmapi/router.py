"""LlmApiRouter: the router (orchestrator) tier of the llmapi runtime (``python -m runtime.router``).

Deployment (CPU) + ClusterIP Service + HPA (CPU) or KEDA ScaledObject (requests outstanding) +
PDB; on scale-in a pod keeps serving for the endpoint removal (preStop), then drains its streams
for ``drain_seconds`` (``--shutdown-timeout``). The router finds the worker-group leaders
through the DNS of each role's headless Service (``dns://<service FQDN>:8000``, re-resolved every
``refresh_seconds``), so it needs no Kubernetes API access and no service-account token.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.config.deployment import RoutingConfig
from components.config.images import DEFAULT_GENERATION
from components.config.scheduling import NodePool
from components.config.serving_tiers import KEDA_IN_FLIGHT_TARGET, TierSettings
from components.models.await_budget import service_await_seconds
from components.platform.keda import ROUTER_IN_FLIGHT, deployment_scaled_object
from components.serving.autoscaling import pod_disruption_budget_manifest
from components.serving.cpu_tier import (
    AWAIT_S,
    PORT,
    CpuTier,
    check_tier_scaling,
    cpu_deployment_manifest,
    cpu_hpa_manifest,
    cpu_service_manifest,
)
from components.serving.drain import ENDPOINT_REMOVAL_S, cpu_tier_grace_seconds
from components.serving.labels import labels
from components.serving.llmapi.tier_flags import grace_drain_delay, serving_flags
from components.serving.load_balancer import service_host
from components.serving.pulumi_options import await_timeouts, child_options, k8s_provider
from components.serving.scaled_objects import scaled_object
from runtime.capabilities import capabilities

LIVE_PATH = "/live"
"""Always 200 while the router process runs (``runtime/router.py``): the liveness probe."""
READY_PATH = "/ready"
"""200 once the router's discovery has run and while it is not draining (``runtime/router.py``
``Router.ready``): able to route. No healthy worker keeps it ready (clients get 503 from the router);
``/health`` (every pool has an available endpoint) is for operators."""
TYPE_TOKEN = "disagg:serving:LlmApiRouter"
COMPONENT = "router"
APP = "llmapi"


class LlmApiRouterArgs(BaseModel):
    """The router tier of one llmapi deployment."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    instance: str
    namespace: str
    image: str
    pool: NodePool
    workers_url: str | None = None
    """Mode tensor-parallel: ``dns://<workers headless service>:8000``."""
    context_url: str | None = None
    """Prefill-decode mode: ``dns://<prefill headless service>:8000``."""
    generation_url: str | None = None
    """Prefill-decode mode: ``dns://<decode headless service>:8000``."""
    refresh_seconds: int = Field(default=2, ge=1)
    routing: RoutingConfig = RoutingConfig()
    kv_events: bool = False
    """kv-aware: poll the workers' ``/kv_cache_events`` (the image serves them and the workers
    render ``event_buffer_max_size``); False: the router approximates from its own decisions."""
    tokens_per_block: int = Field(default=32, ge=1)
    """The workers' ``kv_cache_config.tokens_per_block`` (block keys must agree)."""
    runtime_volume: dict
    runtime_hash: str
    cpu: str = "2"
    memory: str = "2Gi"
    min_replicas: int = Field(default=2, ge=1)
    max_replicas: int = Field(default=4, ge=1)
    target_cpu_utilization: int = Field(default=70, ge=10, le=100)
    drain_seconds: int = Field(default=60, ge=0)
    """The longest stream (``capacity.stream_drain_seconds``): the process's shutdown timeout."""
    keda_prometheus_url: str | None = None
    """Scale with a KEDA ScaledObject (requests outstanding and CPU) instead of a CPU HPA."""
    target_in_flight: float = Field(default=KEDA_IN_FLIGHT_TARGET["router"], gt=0)
    """Requests outstanding per router replica above which KEDA adds one."""
    trtllm_generation: str = DEFAULT_GENERATION
    """Capability-table generation of the workers' image: the protocol the router speaks
    (``--trtllm-version``; ``runtime/capabilities.py``)."""
    serving: TierSettings | None = None
    """Timeouts, admission and drain delay (``serving_tiers.resolve_tiers``); None: the process's defaults."""

    @model_validator(mode="after")
    def _checks(self) -> LlmApiRouterArgs:
        aggregated = self.workers_url is not None
        disaggregated = self.context_url is not None and self.generation_url is not None
        if aggregated == disaggregated or (aggregated and (self.context_url or self.generation_url)):
            raise ValueError(
                "router: give workers_url (tensor-parallel) or both context_url and generation_url (prefill-decode)"
            )
        check_tier_scaling("orchestrator", "routerMaxInflight", self.min_replicas, self.max_replicas,
                           self.keda_prometheus_url is not None,
                           self.serving.max_inflight if self.serving is not None else None, self.target_in_flight)
        capabilities(self.trtllm_generation)  # ValueError naming the accepted generations
        return self


def router_pod_labels(instance: str) -> dict[str, str]:
    return labels(instance, COMPONENT, app=APP)


def router_command(args: LlmApiRouterArgs) -> list[str]:
    """``python -m runtime.router`` exactly as docs/llmapi-runtime.md lists it."""
    argv = ["python3", "-m", "runtime.router", "--host", "0.0.0.0", "--port", str(PORT)]
    if args.workers_url is not None:
        argv += ["--workers", args.workers_url]
    else:
        argv += ["--context", str(args.context_url), "--generation", str(args.generation_url)]
    argv += [
        "--refresh-seconds", str(args.refresh_seconds),
        "--shutdown-timeout", str(args.drain_seconds),
        "--trtllm-version", args.trtllm_generation,
    ]  # fmt: skip
    return argv + routing_flags(args.routing, args.kv_events, args.tokens_per_block) + serving_flags(args.serving)


def routing_flags(routing: RoutingConfig, kv_events: bool, tokens_per_block: int) -> list[str]:
    """The router's routing flags (none for least-outstanding, its default)."""
    if routing.policy != "kv-aware":
        return []
    flags = ["--routing", "kv-aware", "--kv-events", "on" if kv_events else "off",
             "--kv-overlap-weight", f"{routing.overlap_weight:g}", "--kv-load-weight", f"{routing.load_weight:g}",
             "--tokens-per-block", str(tokens_per_block)]
    if routing.max_local_prefill_tokens is not None:
        flags += ["--max-local-prefill-tokens", str(routing.max_local_prefill_tokens)]
    return flags


def router_url(name: str, namespace: str) -> str:
    """``http://<router service FQDN>:8000`` (the frontend's ``--router``)."""
    return f"http://{service_host(name, namespace)}:{PORT}"


def router_deployment_manifest(name: str, args: LlmApiRouterArgs) -> dict:
    return cpu_deployment_manifest(
        CpuTier(
            name=name,
            namespace=args.namespace,
            pod_labels=router_pod_labels(args.instance),
            image=args.image,
            command=router_command(args),
            pool=args.pool,
            cpu=args.cpu,
            memory=args.memory,
            replicas=args.min_replicas,
            runtime_volume=args.runtime_volume,
            runtime_hash=args.runtime_hash,
            live_path=LIVE_PATH,
            ready_path=READY_PATH,
            termination_grace_period_s=cpu_tier_grace_seconds(args.drain_seconds, grace_drain_delay(args.serving)),
            pre_stop_s=ENDPOINT_REMOVAL_S,
        )
    )


def router_scaled_object_manifest(name: str, args: LlmApiRouterArgs) -> dict | None:
    """KEDA ScaledObject on requests outstanding and CPU (None: no KEDA, the CPU HPA scales)."""
    if args.keda_prometheus_url is None:
        return None
    return deployment_scaled_object(
        name, args.namespace, name, args.min_replicas, args.max_replicas, args.keda_prometheus_url,
        args.target_in_flight, args.drain_seconds, args.target_cpu_utilization, router_pod_labels(args.instance),
        in_flight_metric=ROUTER_IN_FLIGHT,
    )  # fmt: skip


class LlmApiRouter(pulumi.ComponentResource):
    """Deployment, Service, HPA and PDB of the router tier."""

    deployment: k8s.apps.v1.Deployment
    service: k8s.core.v1.Service
    hpa: k8s.autoscaling.v2.HorizontalPodAutoscaler | None
    scaled_object: k8s.apiextensions.CustomResource | None
    pdb: k8s.policy.v1.PodDisruptionBudget
    url: str
    """``http://<name>.<namespace>.svc.cluster.local:8000``."""

    def __init__(self, name: str, args: LlmApiRouterArgs, opts: pulumi.ResourceOptions | None = None):
        provider = k8s_provider(opts, f"LlmApiRouter '{name}'")
        super().__init__(TYPE_TOKEN, name, None, opts)

        def child(**extra) -> pulumi.ResourceOptions:
            return child_options(self, provider, opts, **extra)

        pod_labels = router_pod_labels(args.instance)
        deployment = router_deployment_manifest(name, args)
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=deployment["metadata"],
            spec=deployment["spec"],
            opts=child(ignore_changes=["spec.replicas"], custom_timeouts=await_timeouts(AWAIT_S)),
        )
        service = cpu_service_manifest(name, args.namespace, pod_labels)
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=service["metadata"],
            spec=service["spec"],
            opts=child(custom_timeouts=await_timeouts(service_await_seconds(AWAIT_S, False))),
        )
        scaled = router_scaled_object_manifest(name, args)
        self.hpa, self.scaled_object = None, None
        if scaled is not None:
            self.scaled_object = scaled_object(name, scaled, child(depends_on=[self.deployment]))
        else:
            hpa = cpu_hpa_manifest(
                name, args.namespace, pod_labels, args.min_replicas, args.max_replicas, args.target_cpu_utilization
            )
            self.hpa = k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-hpa", metadata=hpa["metadata"], spec=hpa["spec"], opts=child(depends_on=[self.deployment])
            )
        pdb = pod_disruption_budget_manifest(name, args.namespace, pod_labels, pod_labels, max_unavailable=1)
        self.pdb = k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb", metadata=pdb["metadata"], spec=pdb["spec"], opts=child()
        )
        self.url = router_url(name, args.namespace)
        self.register_outputs({"url": self.url})
