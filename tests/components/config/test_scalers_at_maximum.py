"""Every scaler driven to its maximum: the nodes its replicas need fit what the pools can hold.

The KEDA ScaledObjects the committed prod synthesizes (``maxReplicaCount`` = maxGroups for worker
groups, maxReplicas for the CPU tiers) are read from its synth output; their maxima become node,
GPU and CPU demand per pool, which must fit both the pools' supply
(components.config.capacity.pool_supply) and the Karpenter NodePools' limits.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from components.config import load_stack_config
from components.config.capacity import (
    NODE_RESERVED_CPU,
    GroupDemand,
    cpu_quantity,
    nodes_needed,
    pool_supply,
    stream_drain_seconds,
)
from components.config.cluster import GpuNodePoolConfig
from components.config.platform import KarpenterConfig
from components.platform.karpenter import node_pool, system_node_pool
from disaggctl.synth.program import kubernetes_manifest, read_stack_config, run_program

PROJECT_DIR = Path(__file__).resolve().parents[3]


def scaled_object_max(scaled_object: dict) -> int:
    """The most replicas a KEDA ScaledObject will ever ask for."""
    return int(scaled_object["spec"]["maxReplicaCount"])


def committed(stack: str = "prod"):
    _, raw, _ = read_stack_config(PROJECT_DIR, stack)
    return load_stack_config(raw)


@pytest.fixture(scope="module")
def prod_scaled_objects() -> dict[str, dict]:
    """The ScaledObjects of prod's synth, by name (what KEDA will drive)."""
    result = run_program(PROJECT_DIR, "prod")
    objects = {}
    for resource in result.resources:
        if resource.type == "kubernetes:keda.sh/v1alpha1:ScaledObject":
            manifest = kubernetes_manifest(resource)
            assert manifest is not None
            # declared after the KEDA release (the platform): its CRD must exist first
            assert any(d.endswith("::llm-prod-platform-keda-release") for d in resource.dependencies)
            objects[manifest["metadata"]["name"]] = manifest
    return objects


def test_every_autoscaled_tier_of_prod_has_a_scaled_object(prod_scaled_objects) -> None:
    assert sorted(prod_scaled_objects) == [
        "llama-70b-decode", "llama-70b-frontend", "llama-70b-pd-frontend", "llama-70b-pd-router",
        "llama-70b-prefill", "llama-70b-router", "llama-8b-engine-frontend",
    ]  # fmt: skip


def test_every_worker_scaler_at_its_maximum_fits_its_pool(prod_scaled_objects) -> None:
    config = committed()
    pools = {pool.name: pool for pool in config.cluster.eks.gpu_node_pools}
    nodes: dict[str, int] = defaultdict(int)
    gpus: dict[str, int] = defaultdict(int)
    for deployment in config.deployments:
        for role, group in deployment.worker_groups().items():
            lo = group.min_groups if group.min_groups is not None else group.groups
            name = f"{deployment.name}-{role}"
            # a group without autoscaling stays at `groups`: its "scaler" is the LWS replicas
            at_max = scaled_object_max(prod_scaled_objects[name]) if name in prod_scaled_objects else group.groups
            pool = pools[group.pool]
            demand = GroupDemand(name, group.pool, at_max, lo, group.pods_per_group,
                                 group.gpus_per_pod or pool.instance.gpus, pool.efa)
            nodes[group.pool] += nodes_needed(demand, pool.instance.gpus)
            gpus[group.pool] += at_max * group.pods_per_group * demand.gpus_per_pod
    # h100: llama-70b prefill 16 × 2 GPUs (4 nodes) + decode 4 × 8 GPUs (4); h200: llama-70b-pd
    # prefill 22 × 1 GPU (3) + decode 5 × 2 GPUs (2), llama-8b-engine (1)
    assert dict(nodes) == {"h100": 8, "h200": 6}
    for name, needed in nodes.items():
        pool = pools[name]
        assert needed <= pool_supply(pool).nodes, f"{name}: {needed} nodes > {pool_supply(pool)}"
        limit = int(node_pool(pool, KarpenterConfig())["spec"]["limits"]["nvidia.com/gpu"])
        assert gpus[name] <= limit, f"{name}: {gpus[name]} GPUs > NodePool limit {limit}"


def test_the_pre_capacity_h100_pool_cannot_hold_the_committed_scalers() -> None:
    """The issue's measurement: the h100 pool as shipped before (a managed group fixed at 4 nodes)
    cannot hold llama-70b's worker scalers at their maximum; the committed Karpenter pool can."""
    before = yaml.safe_load((Path(__file__).parent / "data" / "prod-before-capacity.yaml").read_text())
    fixed = GpuNodePoolConfig.model_validate(before["cluster"]["gpuNodePools"][0])
    config = committed()
    needed = 0
    for role, group in config.deployments[0].worker_groups().items():  # llama-70b: prefill, decode
        demand = GroupDemand(role, "h100", group.max_groups, group.min_groups, group.pods_per_group, group.gpus_per_pod, True)
        needed += nodes_needed(demand, 8)
    h100 = next(pool for pool in config.cluster.eks.gpu_node_pools if pool.name == "h100")
    assert needed == 8 > pool_supply(fixed).nodes == 4
    assert pool_supply(h100).nodes == 8


def test_every_cpu_scaler_at_its_maximum_fits_the_system_pool(prod_scaled_objects) -> None:
    config = committed()
    system = config.cluster.eks.system_node_group
    demand = 0.0
    for deployment in config.deployments:
        for key, _, resources in deployment.cpu_tiers():
            name = f"{deployment.name}-{'frontend' if key == 'frontend' else 'router'}"
            demand += scaled_object_max(prod_scaled_objects[name]) * cpu_quantity(resources.cpu)
    assert demand == 84
    managed = system.desired_size * (system.vcpus - NODE_RESERVED_CPU)
    added = int(system_node_pool(system, KarpenterConfig())["spec"]["limits"]["cpu"])
    assert demand <= managed + added * (system.vcpus - NODE_RESERVED_CPU) / system.vcpus


def test_every_scaled_object_drains_at_least_its_deployments_longest_stream(prod_scaled_objects) -> None:
    config = committed()
    for deployment in config.deployments:
        drain = stream_drain_seconds(
            max(1, min(g.llm_api.max_seq_len for g in deployment.worker_groups().values()) - 1), 0.05
        ) if deployment.runtime == "llmapi" else None
        for name, scaled in prod_scaled_objects.items():
            if not name.startswith(f"{deployment.name}-") or drain is None:
                continue
            if name.startswith("llama-70b-pd") and deployment.name == "llama-70b":
                continue
            behavior = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
            assert behavior["policies"][0]["periodSeconds"] == min(1800, drain), name


def test_dev_synthesizes_within_its_system_pool() -> None:
    assert committed("dev").capacity_report().problems == []
