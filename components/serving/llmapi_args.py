"""Stack configuration → :class:`LlmApiDeploymentArgs`: the one place config meets llmapi serving.

Pure: given a deployment's config, the cluster's pools and the prepared model directory, it
returns the component's args. Tiers whose resources the stack does not set get sizes that fit
their process (the frontend and router are single asyncio processes, so the engine runtime's
8-CPU defaults would be reserved and never used).
"""

from __future__ import annotations

from typing import Any

from components.cluster.contract import NodePool
from components.config.deployment import ModelDeploymentConfig, WorkerGroupConfig
from components.serving.llmapi_deployment import LlmApiDeploymentArgs, TierSpec, WorkerGroupSpec
from engines.llm_api import GROUP_ROLES, llm_api_yaml

FRONTEND_DEFAULT = TierSpec(min_replicas=2, max_replicas=8, cpu="2", memory="4Gi")
ROUTER_DEFAULT = TierSpec(min_replicas=2, max_replicas=4, cpu="2", memory="2Gi")


def worker_group_spec(role: str, group: WorkerGroupConfig, pool: NodePool) -> WorkerGroupSpec:
    """One role's groups: layout, bounds, autoscaling and the LLM API YAML of its server role."""
    return WorkerGroupSpec(
        pool=pool,
        pods_per_group=group.pods_per_group,
        gpus_per_pod=group.gpus_per_pod or pool.gpus_per_node,
        llm_api_yaml=llm_api_yaml(group.llm_api, role=GROUP_ROLES[role]),
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
) -> LlmApiDeploymentArgs:
    """The args of ``deployment`` (runtime llmapi); config was validated, so lookups succeed."""
    groups = deployment.worker_groups()
    workers = {role: worker_group_spec(role, g, gpu_pools[g.pool]) for role, g in groups.items()}
    frontend, orchestrator = deployment.frontend, deployment.orchestrator
    frontend_tier = TierSpec(
        min_replicas=frontend.min_replicas,
        max_replicas=frontend.max_replicas,
        target_cpu_utilization=frontend.target_cpu_utilization,
        cpu=frontend.resources.cpu if "resources" in frontend.model_fields_set else FRONTEND_DEFAULT.cpu,
        memory=frontend.resources.memory if "resources" in frontend.model_fields_set else FRONTEND_DEFAULT.memory,
    )
    router_max = orchestrator.max_replicas if orchestrator.max_replicas is not None else 2 * orchestrator.replicas
    router_tier = TierSpec(
        min_replicas=orchestrator.replicas,
        max_replicas=max(router_max, orchestrator.replicas),
        cpu=orchestrator.resources.cpu if "resources" in orchestrator.model_fields_set else ROUTER_DEFAULT.cpu,
        memory=orchestrator.resources.memory
        if "resources" in orchestrator.model_fields_set
        else ROUTER_DEFAULT.memory,
    )
    return LlmApiDeploymentArgs(
        namespace=namespace,
        mode=deployment.mode,
        worker_image=worker_image,
        frontend_image=frontend_image,
        model_dir=model_dir,
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
    )
