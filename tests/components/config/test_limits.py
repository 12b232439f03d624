"""The real limits (components/config/limits.py): region and zone names, and each quota at its edge.

Each quota is shown twice: the largest value it allows passes, one more is refused with its message
(the figures are the documented limits written out, not read from the module).
"""

from __future__ import annotations

from typing import Any

import pytest

from components.config import StackConfig
from components.config.cluster import EksConfig
from components.config.limits import region_problem, zone_problem
from components.config.validation import check_eks, check_stack

EKS = "disagg:cluster.eks"


# -- regions and zones ---------------------------------------------------------------------------


def test_a_region_with_eks_passes_and_one_without_a_close_name_gets_an_example() -> None:
    assert region_problem("us-west-2") is None
    assert region_problem("mars") == (
        "'mars' is not an AWS region with EKS (https://docs.aws.amazon.com/general/latest/gr/eks.html): "
        "fix it, e.g. us-west-2"
    )


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("us-west-2a", None),
        # no region part at all
        ("uswest2a", "'uswest2a' is not an availability zone name (region + letter a-f): fix it, e.g. us-west-2a"),
        # the right region, a letter no region has
        ("us-west-2g", "'us-west-2g' is not an availability zone name (region + letter a-f): fix it, e.g. us-west-2a"),
        # a valid letter after a misspelt region: this region's zone with that letter is suggested
        ("us-wset-2b", "'us-wset-2b' is not an availability zone name (region + letter a-f): did you mean 'us-west-2b'?"),
        ("us-east-1a", "'us-east-1a' is not in region 'us-west-2': use zones such as us-west-2a"),
    ],
)
def test_zone_names(zone: str, expected: str | None) -> None:
    assert zone_problem(zone, "us-west-2") == expected


# -- EKS quotas, through the loader's cluster checks ---------------------------------------------


def eks(pools: int = 1, pool_max_size: int = 1, **fields: Any) -> EksConfig:
    """A cluster whose GPU pools (g6.xlarge, no EFA, so no zone and no share of a GPU subnet) pass
    every check unless ``fields`` or the pool count push a quota."""
    return EksConfig.model_validate(
        {
            "region": "us-west-2",
            "availabilityZones": ["us-west-2a", "us-west-2b"],
            "publicAccessCidrs": ["100.20.0.0/24"],
            "gpuNodePools": [
                {"name": f"g{i}", "instanceType": "g6.xlarge", "efa": False, "placementGroup": False, "maxSize": pool_max_size}
                for i in range(pools)
            ],
            **fields,
        }
    )


def test_30_managed_node_groups_pass_and_31_are_refused() -> None:
    assert check_eks(eks(pools=29)) == []
    assert check_eks(eks(pools=30)) == [
        f"{EKS}.gpuNodePools: 30 pools + the system group exceed EKS's 30 managed node groups per cluster: merge pools"
    ]


def test_450_nodes_per_node_group_pass_and_451_are_refused() -> None:
    assert check_eks(eks(systemNodeGroup={"maxSize": 450})) == []
    assert check_eks(eks(pool_max_size=450)) == []
    assert check_eks(eks(systemNodeGroup={"maxSize": 451})) == [
        f"{EKS}.systemNodeGroup.maxSize: 451 nodes exceed EKS's 450 nodes per managed node group: lower it, or split the pool"
    ]
    assert check_eks(eks(pool_max_size=451)) == [
        f"{EKS}.gpuNodePools[0].maxSize: 451 nodes exceed EKS's 450 nodes per managed node group: lower it, or split the pool"
    ]


def test_40_public_access_cidrs_pass_and_41_are_refused() -> None:
    assert check_eks(eks(publicAccessCidrs=[f"100.20.{i}.0/24" for i in range(40)])) == []
    assert check_eks(eks(publicAccessCidrs=[f"100.20.{i}.0/24" for i in range(41)])) == [
        f"{EKS}.publicAccessCidrs: 41 CIDRs, EKS accepts at most 40: merge ranges"
    ]


def test_5000_nodes_at_max_size_pass_and_5001_are_refused() -> None:
    # 12 pools × 400 nodes + the system group's maxSize
    assert check_eks(eks(pools=12, pool_max_size=400, systemNodeGroup={"maxSize": 200})) == []
    assert check_eks(eks(pools=12, pool_max_size=400, systemNodeGroup={"maxSize": 201})) == [
        f"{EKS}: node groups reach 5001 nodes at maxSize, more than a Kubernetes cluster holds (5000): lower the maxSizes"
    ]


def test_a_64_tib_disk_passes_and_one_gib_more_is_refused() -> None:
    assert check_eks(eks(systemNodeGroup={"diskSizeGib": 65536})) == []
    assert check_eks(eks(systemNodeGroup={"diskSizeGib": 65537})) == [
        f"{EKS}.systemNodeGroup.diskSizeGib: 65537 exceeds the largest EBS volume (65536 GiB): lower it"
    ]
    pool = {"name": "g", "instanceType": "g6.xlarge", "efa": False, "placementGroup": False}
    assert check_eks(eks(gpuNodePools=[{**pool, "diskSizeGib": 65536}])) == []
    assert check_eks(eks(gpuNodePools=[{**pool, "diskSizeGib": 65537}])) == [
        f"{EKS}.gpuNodePools[0].diskSizeGib: 65537 exceeds the largest EBS volume (65536 GiB): lower it"
    ]


def test_the_fsx_quota_of_100800_gib_passes_and_the_next_capacity_is_refused() -> None:
    assert check_eks(eks(storage={"sizeGib": 100800})) == []
    assert check_eks(eks(storage={"sizeGib": 103200})) == [  # FSx capacities are multiples of 2400
        f"{EKS}.storage.sizeGib: 103200 GiB exceeds the FSx for Lustre storage quota (100800 GiB): lower it"
    ]


# -- pods and requests, through the stack checks --------------------------------------------------

EKS_CLUSTER = {
    "name": "c",
    "eks": {
        "region": "us-west-2", "availabilityZones": ["us-west-2a", "us-west-2b"], "publicAccessCidrs": ["100.20.0.0/24"],
        "gpuNodePools": [{"name": "h100", "instanceType": "p5.48xlarge", "availabilityZone": "us-west-2a", "maxSize": 2}],
    },
}  # fmt: skip
"""A new cluster; its system node group keeps the default maxSize 4."""


def existing_cluster(pool: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """An existing cluster (kubeconfig text, passed as a secret below) with one 8-GPU pool."""
    gpu_pool = {"name": "h100", "gpusPerNode": 8, "gpuMemoryGib": 80, "gpuArch": "hopper",
                "nodeSelector": {"nvidia.com/gpu.product": "H100"}, **(pool or {})}  # fmt: skip
    existing = {"kubeconfig": "apiVersion: v1\nkind: Config\n", "storageClass": "nfs", "gpuPools": [gpu_pool], **fields}
    return {"name": "onprem", "provider": "existing", "existing": existing}


def problems(cluster: dict[str, Any], frontend: dict[str, Any] | None = None) -> list[str]:
    """check_stack on one deployment of two 8-GPU pods on pool h100 (the loader's other checks aside)."""
    config = StackConfig.model_validate(
        {
            "cluster": cluster,
            "engines": {"llama-70b": {"model": "llama-3.1-70b-instruct", "tpSize": 8, "ppSize": 2}},
            "deployments": [
                {
                    "name": "llama-70b",
                    "frontend": {"serviceType": "ClusterIP", **(frontend or {})},
                    "workers": {"engine": "llama-70b", "pool": "h100", "groups": 1, "podsPerGroup": 2, "gpusPerPod": 8},
                }
            ],
        }
    )
    return check_stack(config, frozenset({"disagg:cluster"}))


def test_the_unchanged_stacks_pass() -> None:
    assert problems(EKS_CLUSTER) == []
    assert problems(existing_cluster()) == []


def test_frontends_fit_the_system_group_at_110_pods_per_node() -> None:
    assert problems(EKS_CLUSTER, {"maxReplicas": 440}) == []
    assert problems(EKS_CLUSTER, {"maxReplicas": 441}) == [
        "disagg:deployments[0].frontend.maxReplicas: 441 frontends cannot fit the system node group (maxSize 4 × "
        "110 pods per node): lower maxReplicas or raise systemNodeGroup.maxSize"
    ]


def test_frontends_of_an_existing_cluster_fit_150000_pods() -> None:
    assert problems(existing_cluster(), {"maxReplicas": 150_000}) == []
    assert problems(existing_cluster(), {"maxReplicas": 150_001}) == [
        "disagg:deployments[0].frontend.maxReplicas: 150001 is more pods than a Kubernetes cluster holds (150000): lower it"
    ]


def test_existing_storage_of_1_pib_passes_and_one_gib_more_is_refused() -> None:
    assert problems(existing_cluster(storageSizeGib=1024 * 1024)) == []
    assert problems(existing_cluster(storageSizeGib=1024 * 1024 + 1)) == [
        "disagg:cluster.existing.storageSizeGib: 1048577 GiB is more than 1 PiB: lower it"
    ]


def test_gpu_memory_of_288_gib_passes_and_289_is_refused() -> None:
    assert problems(existing_cluster({"gpuMemoryGib": 288})) == []
    assert problems(existing_cluster({"gpuMemoryGib": 289})) == [
        "disagg:cluster.existing.gpuPools[0].gpuMemoryGib: 289 GiB is more than any GPU has (288): give the memory of one GPU"
    ]


def test_requests_up_to_1920_cpus_and_32_tib_pass_and_beyond_are_refused() -> None:
    assert problems(EKS_CLUSTER, {"resources": {"cpu": "1920", "memory": "32Ti"}}) == []
    assert problems(EKS_CLUSTER, {"resources": {"cpu": "1921", "memory": str(32 * 2**40 + 1)}}) == [
        "disagg:deployments[0].frontend.resources.cpu: '1921' is more CPU than any node has (1920 vCPUs): lower it",
        "disagg:deployments[0].frontend.resources.memory: '35184372088833' is more memory than any node has (32Ti): lower it",
    ]
