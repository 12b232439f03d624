"""Every scaler driven to its maximum: the nodes its replicas need fit what the pools can hold.

The worker groups' KEDA ScaledObjects (``maxReplicaCount`` = maxGroups) are built for the prod
stack with the capacity stanza (data/prod-capacity.yaml); their maxima become node and GPU
demand per pool, which must fit both the pools' supply (components.config.capacity.pool_supply)
and the Karpenter NodePools' GPU limits.
"""

from __future__ import annotations

import copy
import json
from collections import defaultdict
from pathlib import Path

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
from components.config.platform import KarpenterConfig
from components.platform.karpenter import node_pool, system_node_pool
from components.platform.keda import deployment_scaled_object, lws_scaled_object, scaled_object_max
from disaggctl.synth import read_stack_config

PROJECT_DIR = Path(__file__).resolve().parents[2]
STANZA = yaml.safe_load((Path(__file__).parent / "data" / "prod-capacity.yaml").read_text())


def proposed_prod():
    _, raw, _ = read_stack_config(PROJECT_DIR, "prod")
    sections = {k: json.loads(v) if v[:1] in "[{" else v for k, v in raw.items()}
    sections["disagg:cluster"]["eks"]["gpuNodePools"] = copy.deepcopy(STANZA["cluster"]["gpuNodePools"])
    sections["disagg:cluster"]["eks"]["systemNodeGroup"] = copy.deepcopy(STANZA["cluster"]["systemNodeGroup"])
    sections["disagg:platform"] = copy.deepcopy(STANZA["platform"])
    return load_stack_config({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in sections.items()})


def test_every_worker_scaler_at_its_maximum_fits_its_pool() -> None:
    config = proposed_prod()
    pools = {pool.name: pool for pool in config.cluster.eks.gpu_node_pools}
    drain = stream_drain_seconds(1024, 0.05)
    nodes: dict[str, int] = defaultdict(int)
    gpus: dict[str, int] = defaultdict(int)
    for deployment in config.deployments:
        for role, group in deployment.worker_groups().items():
            lo = group.min_groups if group.min_groups is not None else group.groups
            hi = group.max_groups if group.max_groups is not None else group.groups
            scaled = lws_scaled_object(
                f"{deployment.name}-{role}", config.namespace, f"{deployment.name}-{role}", max(lo, 1), hi,
                config.platform.keda.prometheus_url, 4, 0.75, drain,
            )
            at_max = scaled_object_max(scaled)
            pool = pools[group.pool]
            demand = GroupDemand(f"{deployment.name}.{role}", group.pool, at_max, lo, group.pods_per_group,
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


def test_the_committed_prod_worker_scaler_does_not_fit() -> None:
    _, raw, _ = read_stack_config(PROJECT_DIR, "prod")
    config = load_stack_config(raw)
    h100 = next(pool for pool in config.cluster.eks.gpu_node_pools if pool.name == "h100")
    needed = 0
    for role, group in config.deployments[0].worker_groups().items():  # llama-70b: prefill, decode
        demand = GroupDemand(role, "h100", group.max_groups, group.min_groups, group.pods_per_group, group.gpus_per_pod, True)
        needed += nodes_needed(demand, 8)
    assert needed == 8 > pool_supply(h100).nodes == 4


def test_every_frontend_scaler_at_its_maximum_fits_the_system_pool() -> None:
    config = proposed_prod()
    system = config.cluster.eks.system_node_group
    demand = 0.0
    for deployment in config.deployments:
        frontend = deployment.frontend
        scaled = deployment_scaled_object(
            f"{deployment.name}-frontend", config.namespace, f"{deployment.name}-frontend",
            frontend.min_replicas, frontend.max_replicas, config.platform.keda.prometheus_url, 64,
            stream_drain_seconds(1024, 0.05), frontend.target_cpu_utilization,
        )
        demand += scaled_object_max(scaled) * cpu_quantity(frontend.resources.cpu)
    assert demand == 160
    managed = system.desired_size * (system.vcpus - NODE_RESERVED_CPU)
    added = int(system_node_pool(system, KarpenterConfig())["spec"]["limits"]["cpu"])
    assert demand <= managed + added * (system.vcpus - NODE_RESERVED_CPU) / system.vcpus
