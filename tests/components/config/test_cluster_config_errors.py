"""Impossible cluster configurations are refused before anything is declared, with exact messages."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from components.config import ConfigError, load_stack_config
from components.config.cluster import ClusterConfig, GpuNodePoolConfig
from components.config.instance_types import INSTANCE_TYPES
from disaggctl.synth.program import read_stack_config

PROJECT_DIR = Path(__file__).resolve().parents[3]
CR = "cr-0a1b2c3d4e5f60718"
POOL = "disagg:cluster.eks.gpuNodePools[0]"
EKS = "disagg:cluster.eks"


def problems_after(edit: Callable[[dict[str, Any]], None]) -> list[str]:
    """Problems of the dev stack after ``edit`` changed its ``disagg:cluster`` section."""
    _, raw, _ = read_stack_config(PROJECT_DIR, "dev")
    cluster = copy.deepcopy(json.loads(raw["disagg:cluster"]))
    edit(cluster)
    raw = {**raw, "disagg:cluster": json.dumps(cluster)}
    with pytest.raises(ConfigError) as error:
        load_stack_config(raw)
    return error.value.problems


def pool_edit(**fields: Any) -> Callable[[dict[str, Any]], None]:
    """Set (value) or remove (None) keys of the dev stack's GPU pool."""

    def edit(cluster: dict[str, Any]) -> None:
        pool = cluster["eks"]["gpuNodePools"][0]
        for key, value in fields.items():
            if value is None:
                pool.pop(key, None)
            else:
                pool[key] = value

    return edit


def eks_edit(**fields: Any) -> Callable[[dict[str, Any]], None]:
    def edit(cluster: dict[str, Any]) -> None:
        cluster["eks"].update(fields)

    return edit


CASES = [
    (
        "EFA on a type without EFA",
        pool_edit(instanceType="g5.xlarge"),
        f"{POOL}: instance type 'g5.xlarge' has no EFA interfaces, but efa is true: set efa: false or use an "
        "EFA-capable type (e.g. p4d.24xlarge, p5.48xlarge)",
    ),
    (
        "unknown instance type",
        pool_edit(instanceType="p9.huge"),
        f"{POOL}.instanceType: instance type 'p9.huge' is not a GPU instance type this project knows: use one "
        f"of {', '.join(sorted(INSTANCE_TYPES))} (or add it to components/config/instance_types.py)",
    ),
    (
        "placement group without a zone",
        pool_edit(availabilityZone=None),
        f"{POOL}: placementGroup needs availabilityZone (a cluster placement group lives in one AZ): set "
        "availabilityZone or placementGroup: false",
    ),
    (
        "EFA without a zone",
        pool_edit(availabilityZone=None, placementGroup=False),
        f"{POOL}: efa needs availabilityZone (EFA traffic does not cross subnets, and each zone has its own "
        "subnet): set availabilityZone or efa: false",
    ),
    (
        "zone outside the region",
        eks_edit(availabilityZones=["us-east-1a", "us-east-1b"]),
        f"{EKS}: availability zone 'us-east-1a' is not in region 'us-west-2': use zones such as us-west-2a",
    ),
    (
        "pool zone not among the cluster's zones",
        pool_edit(availabilityZone="us-west-2d"),
        f"{EKS}: pool 'a100' availabilityZone 'us-west-2d' is not one of availabilityZones (us-west-2a, "
        "us-west-2b, us-west-2c): add it there or pick one of them",
    ),
    (
        "capacity block without reservation id",
        pool_edit(capacityType="capacity-block", placementGroup=False),
        f"{POOL}: capacityType 'capacity-block' needs capacityReservationId (the cr-… id of the Capacity "
        "Block): add it",
    ),
    (
        "capacity block in a placement group",
        pool_edit(capacityType="capacity-block", capacityReservationId=CR, placementGroup=True),
        f"{POOL}: capacityType 'capacity-block' cannot use placementGroup (a Capacity Block is already "
        "co-located, and EC2 refuses to launch it into another placement group): set placementGroup: false",
    ),
    (
        "spot with a reservation",
        pool_edit(capacityType="spot", capacityReservationId=CR),
        f"{POOL}: capacityReservationId cannot be used with capacityType 'spot': use on-demand or "
        "capacity-block, or remove the reservation",
    ),
    (
        "malformed reservation id",
        pool_edit(capacityReservationId="reservation-1"),
        f"{POOL}: capacityReservationId 'reservation-1' is not a reservation id (cr- followed by hex "
        "digits): copy it from the EC2 console",
    ),
    (
        "public endpoint without CIDRs",
        eks_edit(publicAccessCidrs=[]),
        f"{EKS}: endpointPublicAccess needs publicAccessCidrs (the API would be open to the internet): list "
        "the egress CIDRs of the machines running pulumi up and kubectl",
    ),
    (
        "private-only endpoint the deployer cannot reach",
        eks_edit(endpointPublicAccess=False, publicAccessCidrs=[]),
        f"{EKS}: endpointPublicAccess is false, but deployerAccess is public-endpoint: pulumi up could not "
        "reach the API server it creates (the VPC is new; nothing runs inside it): set endpointPublicAccess: "
        "true with publicAccessCidrs: [<your egress CIDR>], or deployerAccess: in-vpc when pulumi up runs "
        "inside the VPC",
    ),
    (
        "in-VPC deployer without the private endpoint",
        eks_edit(deployerAccess="in-vpc", endpointPrivateAccess=False),
        f"{EKS}: deployerAccess is in-vpc, but endpointPrivateAccess is false: pulumi up inside the VPC "
        "reaches the API server only through the private endpoint: set endpointPrivateAccess: true",
    ),
    (
        "FSx size that is not a valid capacity",
        eks_edit(storage={"kind": "fsx-lustre", "sizeGib": 1300}),
        f"{EKS}.storage: sizeGib 1300 is not a valid FSx for Lustre capacity: use 1200, 2400 or a "
        "multiple of 2400",
    ),
    (
        "admin principal that is an assumed-role session",
        eks_edit(adminPrincipalArns=["arn:aws:sts::123456789012:assumed-role/admins/alice"]),
        f"{EKS}.adminPrincipalArns: adminPrincipalArns entry 'arn:aws:sts::123456789012:assumed-role/admins/alice' "
        "is not an IAM role or user ARN (arn:aws:iam::<account>:role/<name> or :user/<name>): copy it from "
        "the IAM console (an assumed-role sts ARN will not do)",
    ),
    (
        "unpinned Kubernetes version",
        eks_edit(kubernetesVersion="latest"),
        f"{EKS}.kubernetesVersion: kubernetesVersion 'latest' must be a pinned minor version such as "
        '"1.35" (quoted in YAML)',
    ),
    (
        "add-on version that is not an EKS build",
        eks_edit(addonVersions={"vpc-cni": "1.20"}),
        f"{EKS}.addonVersions: addonVersions.vpc-cni: '1.20' is not an EKS add-on version: use the form "
        "v1.19.2-eksbuild.1 (aws eks describe-addon-versions --addon-name vpc-cni)",
    ),
    (
        "add-on this project does not install",
        eks_edit(addonVersions={"metrics-server": "v0.8.0-eksbuild.1"}),
        f"{EKS}.addonVersions: addonVersions: unknown add-on 'metrics-server': use one of vpc-cni, "
        "kube-proxy, eks-pod-identity-agent, coredns, aws-fsx-csi-driver, aws-mountpoint-s3-csi-driver",
    ),
]


@pytest.mark.parametrize(("edit", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_impossible_cluster_is_refused(edit: Callable[[dict[str, Any]], None], expected: str) -> None:
    assert problems_after(edit) == [expected]


def test_model_validate_reports_the_same_problem() -> None:
    with pytest.raises(ValidationError) as error:
        ClusterConfig.model_validate(
            {
                "name": "c",
                "eks": {
                    "region": "us-west-2",
                    "availabilityZones": ["us-west-2a", "us-west-2b"],
                    "gpuNodePools": [{"name": "g5", "instanceType": "g5.xlarge", "availabilityZone": "us-west-2a"}],
                },
            }
        )
    (problem,) = error.value.errors()
    assert problem["loc"] == ("eks", "gpuNodePools", 0)
    assert "instance type 'g5.xlarge' has no EFA interfaces, but efa is true" in problem["msg"]


def test_capacity_block_leaves_out_the_placement_group_by_default() -> None:
    pool = GpuNodePoolConfig.model_validate(
        {"name": "h100", "instanceType": "p5.48xlarge", "availabilityZone": "us-east-2a", "capacityType": "capacity-block", "capacityReservationId": CR}
    )
    assert pool.placement_group is False
    on_demand = GpuNodePoolConfig.model_validate({"name": "h100", "instanceType": "p5.48xlarge", "availabilityZone": "us-east-2a"})
    assert on_demand.placement_group is True


def test_a_pool_without_efa_needs_no_zone() -> None:
    pool = GpuNodePoolConfig.model_validate({"name": "l4", "instanceType": "g6.xlarge", "efa": False, "placementGroup": False})
    assert pool.availability_zone is None
    assert pool.node_pool().fabric == "none"
