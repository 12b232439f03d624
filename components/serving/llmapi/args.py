"""Stack configuration → :class:`LlmApiDeploymentArgs`: the one place config meets llmapi serving.

Pure: given a deployment's config, the cluster's pools and the prepared model directory, it
returns the component's args. Tiers whose resources the stack does not set get sizes that fit
their process (the frontend and router are single asyncio processes, so the engine runtime's
8-CPU defaults would be reserved and never used).
"""

from __future__ import annotations

from typing import Any

from components.config.capacity import llmapi_group_memory_gib
from components.config.deployment import ModelDeploymentConfig, WorkerGroupConfig, serves_kv_events
from components.config.images import DEFAULT_GENERATION
from components.config.models import ModelSourceConfig
from components.config.scheduling import NodePool
from components.config.serving_tiers import TierSettings, deployment_tiers, serving_drain_seconds
from components.serving.llmapi.deployment import LlmApiDeploymentArgs, TierSpec, WorkerGroupSpec
from components.serving.llmapi.frontend import ApiKeySpec


def stack_inputs(config: Any, deployment: ModelDeploymentConfig) -> dict[str, Any]:
    """What ``deployment`` takes from the rest of the stack (``config``: a StackConfig): KEDA, the
    drain of its longest stream, its groups' host memory, its public exposure, the namespace
    Prometheus scrapes from, and its tiers' timeouts and admission (derived from its workload where unset)."""
    pools = config.cluster.node_pools()
    memory: dict[str, int] = {}
    for role, group in deployment.worker_groups().items():
        pool = pools.get(group.pool)
        gpus = group.gpus_per_pod or (pool.gpus_per_node if pool is not None else 1)
        gib = llmapi_group_memory_gib(config, group, gpus)
        if gib is not None:
            memory[role] = gib
    public = config.platform.security.public_frontends.get(deployment.name)
    exposed = not deployment.frontend.internal_load_balancer
    model_key = next((g.model for g in deployment.worker_groups().values() if g.model), None)
    return {
        "model": config.models.get(model_key) if model_key else None,
        "keda_prometheus_url": config.platform.keda_prometheus_url() if config.platform.keda.enabled else None,
        "monitoring_namespaces": (config.platform.monitoring.namespace,),
        "trtllm_generation": config.trtllm_generation(),
        "nixl_plugins_dir": config.images.nixl_plugins_dir,
        "drain_seconds": serving_drain_seconds(config, deployment),
        "group_memory_gib": memory,
        "load_balancer_source_ranges": tuple(public.source_ranges) if public is not None and exposed else (),
        "tiers": deployment_tiers(config, deployment),
        "kv_events": routes_by_kv_events(deployment, config.images.trtllm, config.images.trtllm_version),
        "api_key": (
            ApiKeySpec(header=public.auth.header, secret_name=public.auth.key.secret_name, secret_key=public.auth.key.secret_key)
            if public is not None and exposed
            else None
        ),
    }


def routes_by_kv_events(deployment: ModelDeploymentConfig, trtllm_image: str, declared_version: str | None) -> bool:
    """Whether the router polls the workers' KV-cache events: kv-aware routing with ``kvEvents`` on, or
    auto on an image the capability table proves (``on`` on any other image was refused by the loader)."""
    routing = deployment.orchestrator.routing
    if routing.policy != "kv-aware" or routing.kv_events == "off":
        return False
    return routing.kv_events == "on" or serves_kv_events(trtllm_image, declared_version)


def worker_group_spec(
    role: str,
    group: WorkerGroupConfig,
    pool: NodePool,
    memory_gib: int | None = None,
    event_buffer_max_size: int = 0,
) -> WorkerGroupSpec:
    """One role's groups: layout, bounds, autoscaling, its typed LLM API options (with a KV-cache
    event buffer when the router reads the events; the deployment renders them for the server role
    and the image's generation) and, when known, the host memory its ranks use (/dev/shm included)."""
    sized: dict[str, Any] = {"memory": f"{memory_gib}Gi", "memory_includes_shm": True} if memory_gib is not None else {}
    options = group.llm_api
    if event_buffer_max_size and not options.kv_cache_config.event_buffer_max_size:
        kv = options.kv_cache_config.model_copy(update={"event_buffer_max_size": event_buffer_max_size})
        options = options.model_copy(update={"kv_cache_config": kv})
    return WorkerGroupSpec(
        **sized,
        pool=pool,
        pods_per_group=group.pods_per_group,
        gpus_per_pod=group.gpus_per_pod or pool.gpus_per_node,
        llm_api=options,
        groups=group.groups,
        min_groups=group.min_groups,
        max_groups=group.max_groups,
        autoscaling=group.autoscaling.enabled,
        target_kv_cache_utilization=group.autoscaling.target_kv_cache_utilization,
        shm_size=group.shm_size,
    )


def llmapi_deployment_args(
    deployment: ModelDeploymentConfig,
    *,
    namespace: Any,
    worker_image: str,
    frontend_image: str | None,
    model_dir: Any,
    gpu_pools: dict[str, NodePool],
    system_pool: NodePool,
    claim_name: Any,
    mount_path: str,
    runtime_files: dict[str, str],
    aws_load_balancer: bool,
    custom_metrics: bool,
    load_balancer_source_ranges: tuple[str, ...] = (),
    keda_prometheus_url: str | None = None,
    drain_seconds: int = 60,
    group_memory_gib: dict[str, int] | None = None,
    api_key: ApiKeySpec | None = None,
    model: ModelSourceConfig | None = None,
    monitoring_namespaces: tuple[str, ...] = ("monitoring",),
    trtllm_generation: str = DEFAULT_GENERATION,
    nixl_plugins_dir: str | None = None,
    kv_events: bool = False,
    tiers: dict[str, TierSettings] | None = None,
) -> LlmApiDeploymentArgs:
    """The args of ``deployment`` (runtime llmapi); config was validated, so lookups succeed.
    The keyword arguments after ``custom_metrics`` are :func:`stack_inputs`."""
    groups = deployment.worker_groups()
    memory = group_memory_gib or {}
    routing = deployment.orchestrator.routing
    # the servers where prefixes live publish events (upstream's generation path publishes none)
    events = {role: routing.event_buffer_max_size if kv_events and role in ("workers", "prefill") else 0
              for role in groups}
    workers = {
        role: worker_group_spec(role, g, gpu_pools[g.pool], memory.get(role), events[role])
        for role, g in groups.items()
    }
    holder = groups.get("prefill") or groups.get("workers")
    frontend, orchestrator = deployment.frontend, deployment.orchestrator
    frontend_resources = deployment.frontend_resources()
    frontend_tier = TierSpec(
        min_replicas=frontend.min_replicas,
        max_replicas=frontend.max_replicas,
        target_cpu_utilization=frontend.target_cpu_utilization,
        cpu=frontend_resources.cpu,
        memory=frontend_resources.memory,
    )
    router_resources = deployment.router_resources()
    assert router_resources is not None  # runtime llmapi
    router_tier = TierSpec(
        min_replicas=orchestrator.replicas,
        max_replicas=deployment.router_max_replicas(),
        cpu=router_resources.cpu,
        memory=router_resources.memory,
    )
    return LlmApiDeploymentArgs(
        namespace=namespace,
        mode=deployment.mode,
        worker_image=worker_image,
        frontend_image=frontend_image,
        # images.frontend serves both CPU tiers: an image with uvloop speeds both relays up
        router_image=frontend_image,
        model_dir=model_dir,
        model=model,
        served_model_name=frontend.served_model_name or deployment.name,
        # the frontend caps prompt + output at the shortest sequence any server accepts
        max_seq_len=min(g.llm_api.max_seq_len for g in groups.values()),
        default_max_tokens=orchestrator.default_max_tokens,
        workers=workers,
        frontend=frontend_tier,
        router=router_tier,
        system_pool=system_pool,
        claim_name=claim_name,
        mount_path=mount_path,
        runtime_files=runtime_files,
        service_type=frontend.service_type,
        public=not frontend.internal_load_balancer,
        load_balancer_source_ranges=load_balancer_source_ranges,
        aws_load_balancer=aws_load_balancer,
        custom_metrics=custom_metrics,
        keda_prometheus_url=keda_prometheus_url,
        drain_seconds=drain_seconds,
        api_key=api_key,
        monitoring_namespaces=monitoring_namespaces,
        trtllm_generation=trtllm_generation,
        nixl_plugins_dir=nixl_plugins_dir,
        routing=routing,
        kv_events=kv_events,
        tiers=tiers or {},
        tokens_per_block=holder.llm_api.kv_cache_config.tokens_per_block if holder is not None else 32,
    )
