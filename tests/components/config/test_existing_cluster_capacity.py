"""Existing clusters: what they must provide (nodes for the scalers' maxima, load balancers) is checked."""

from __future__ import annotations

from datetime import datetime, timezone

from components.config import StackConfig
from components.config.capacity import check_capacity

NOW = datetime(2026, 11, 27, tzinfo=timezone.utc)


def stack(max_nodes: int | None, load_balancers: bool | None, service_type: str = "LoadBalancer") -> StackConfig:
    pool: dict = {
        "name": "h100", "gpusPerNode": 8, "gpuMemoryGib": 80, "gpuArch": "hopper",
        "nodeSelector": {"nvidia.com/gpu.product": "H100"},
    }
    if max_nodes is not None:
        pool["maxNodes"] = max_nodes
    existing: dict = {"kubeconfig": "apiVersion: v1\nkind: Config\n", "storageClass": "nfs", "gpuPools": [pool]}
    if load_balancers is not None:
        existing["loadBalancerServices"] = load_balancers
    return StackConfig.model_validate(
        {
            "cluster": {"name": "onprem", "provider": "existing", "existing": existing},
            "engines": {"llama-70b": {"model": "llama-3.1-70b-instruct", "tpSize": 8, "ppSize": 2}},
            "deployments": [
                {
                    "name": "llama-70b",
                    "frontend": {"serviceType": service_type},
                    "workers": {"engine": "llama-70b", "pool": "h100", "groups": 1, "minGroups": 1,
                                "maxGroups": 3, "podsPerGroup": 2, "gpusPerPod": 8},
                }
            ],
        }
    )


def test_too_few_nodes_is_refused() -> None:
    problems = check_capacity(stack(4, True), NOW).problems
    assert problems == [
        "disagg:cluster.existing.gpuPools[0].maxNodes: the worker groups on pool 'h100' need 6 nodes at "
        "their maximum, but the pool has at most 4: lower maxGroups or add nodes to the pool"
    ]


def test_unknown_node_count_and_load_balancer_are_warned() -> None:
    report = check_capacity(stack(None, None), NOW)
    assert report.problems == []
    assert [w.split(":")[1] for w in report.warnings[:2]] == [
        "cluster.existing.gpuPools[0].maxNodes",
        "deployments[0].frontend.serviceType",
    ]


def test_load_balancer_service_without_an_implementation_is_refused() -> None:
    problems = check_capacity(stack(6, False), NOW).problems
    assert len(problems) == 1 and problems[0].startswith("disagg:deployments[0].frontend.serviceType: LoadBalancer, but")
    assert check_capacity(stack(6, False, "ClusterIP"), NOW).problems == []
