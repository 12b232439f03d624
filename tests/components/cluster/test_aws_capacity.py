"""AwsGpuCluster and node autoscaling: Karpenter pools, Capacity Block schedules, reservation
placement groups, the load balancer controller role; the platform installs what the handle asks."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pytest

from components.cluster.aws import AwsGpuCluster
from components.cluster.aws_iam import INTERRUPTION_EVENTS
from components.config.platform import PlatformConfig
from components.platform.operators import PlatformOperators

BLOCK = {"start": "2099-12-01T11:30:00Z", "end": "2099-12-15T11:30:00Z", "instanceCount": 4}
CR = "cr-0a1b2c3d4e5f60718"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
SCHEDULE = "aws:autoscaling/schedule:Schedule"
CUSTOM = "kubernetes:karpenter.sh/v1:NodePool"


@pytest.fixture
def build_with_platform(declare):
    def run(config, platform: PlatformConfig | None = None):
        def program():
            provider = aws.Provider("aws", region=config.region)
            cluster = AwsGpuCluster("llm-test", config, pulumi.ResourceOptions(providers={"aws": provider}))
            operators = PlatformOperators("llm-test-platform", cluster.handle, platform or PlatformConfig())
            return cluster, operators

        return declare(program)

    return run


def test_karpenter_pool_has_no_node_group_and_the_platform_installs_its_node_pool(
    build_with_platform, make_eks, make_pool
) -> None:
    config = make_eks(
        gpuNodePools=[
            make_pool(maxSize=4, capacityType="capacity-block", capacityReservationId=CR,
                      capacityBlock=BLOCK, autoscaler="karpenter", minSize=0, desiredSize=0),
        ]
    )
    (cluster, operators), declared = build_with_platform(config)
    assert [r.name for r in declared.of_type(NODE_GROUP)] == ["llm-test-system"]
    assert "karpenter" in operators.installed and "load-balancer-controller" in operators.installed
    queue = declared.one("aws:sqs/queue:Queue")
    assert (queue.inputs["messageRetentionSeconds"], queue.inputs["sqsManagedSseEnabled"]) == (300, True)
    rules = declared.of_type("aws:cloudwatch/eventRule:EventRule")
    assert sorted(json.loads(r.inputs["eventPattern"])["detail-type"][0] for r in rules) == sorted(
        p["detail-type"][0] for p in INTERRUPTION_EVENTS.values()
    )
    association = declared.one("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == ("kube-system", "karpenter")
    release = declared.named("llm-test-platform-karpenter-release")
    assert release.inputs["chart"] == "oci://public.ecr.aws/karpenter/karpenter"
    assert release.inputs["version"] == "1.14.1"
    node_class = declared.named("llm-test-platform-karpenter-h100-node-class")
    assert node_class.inputs["spec"]["capacityReservationSelectorTerms"] == [{"id": CR}]
    assert len(node_class.inputs["spec"]["networkInterfaces"]) == 33


def test_managed_pool_on_a_block_starts_at_zero_with_two_scheduled_actions(declare, make_eks, make_pool) -> None:
    """EKS User Guide, "Create a managed node group with Capacity Blocks for ML"."""
    config = make_eks(
        gpuNodePools=[
            make_pool(maxSize=4, capacityType="capacity-block", capacityReservationId=CR,
                      capacityBlock=BLOCK, minSize=0, desiredSize=0),
        ]
    )

    def program():
        provider = aws.Provider("aws", region=config.region)
        return AwsGpuCluster("llm-test", config, pulumi.ResourceOptions(providers={"aws": provider}))

    _, declared = declare(program)
    group = declared.named("llm-test-h100-node-group")
    assert group.inputs["scalingConfig"] == {"minSize": 0, "desiredSize": 0, "maxSize": 4}
    actions = {r.inputs["scheduledActionName"]: r.inputs for r in declared.of_type(SCHEDULE)}
    assert {name: (a["startTime"], a["minSize"], a["desiredCapacity"]) for name, a in actions.items()} == {
        "llm-test-h100-block-start": ("2099-12-01T11:30:00Z", 4, 4),
        "llm-test-h100-block-end": ("2099-12-15T10:30:00Z", 0, 0),
    }


def test_reservation_pool_launches_into_the_reservations_placement_group(declare, make_eks, make_pool) -> None:
    """EC2 User Guide, "Capacity Reservations for cluster placement groups"."""
    config = make_eks(gpuNodePools=[make_pool(capacityReservationId=CR, placementGroupName="odcr-pg")])

    def program():
        provider = aws.Provider("aws", region=config.region)
        return AwsGpuCluster("llm-test", config, pulumi.ResourceOptions(providers={"aws": provider}))

    cluster, declared = declare(program)
    assert declared.of_type("aws:ec2/placementGroup:PlacementGroup") == []
    # the system group has its own launch template (IMDSv2, hop limit 1) and no placement
    template = declared.named("llm-test-h100-launch-template")
    assert template.inputs["placement"] == {"groupName": "odcr-pg"}
    assert cluster.handle.aws.placement_groups == {"h100": "odcr-pg"}


def test_load_balancer_controller_role_trusts_its_service_account_only(declare, make_eks, make_pool) -> None:
    config = make_eks(gpuNodePools=[make_pool()])

    def program():
        provider = aws.Provider("aws", region=config.region)
        return AwsGpuCluster("llm-test", config, pulumi.ResourceOptions(providers={"aws": provider}))

    _, declared = declare(program)
    role = declared.named("llm-test-lb-controller-role")
    trust = json.loads(declared.resolve(role.inputs["assumeRolePolicy"]))
    (statement,) = trust["Statement"]
    subject = next(v for k, v in statement["Condition"]["StringEquals"].items() if k.endswith(":sub"))
    assert subject == "system:serviceaccount:kube-system:aws-load-balancer-controller"
