"""AwsGpuNodePool: one EKS managed node group of GPU instances, launched from a launch template.

The launch template carries what a plain managed node group cannot: every EFA interface of the
instance type (:func:`~components.config.instance_types.efa_interface_layout`) with the EFA security
group, the cluster placement group, and capacity reservation / Capacity Block targeting. The
node group uses EKS's AL2023 NVIDIA accelerated AMI (``amiType AL2023_x86_64_NVIDIA``: NVIDIA
driver, container toolkit and EFA driver included, bootstrap done by EKS), so the template has
no image or user data. The instance type is set in the template (Capacity Blocks require it
there), never on the node group.

Nodes are labelled ``disagg.dev/pool=<pool>`` (plus the pool's labels) and tainted
``nvidia.com/gpu:NoSchedule`` so only GPU pods (which tolerate it) land on them.

Capacity Blocks (EKS User Guide, "Create a managed node group with Capacity Blocks for ML"): the
node group is created at size 0 and two scheduled actions on its Auto Scaling group scale it to
the block's size when the block starts and back to 0 ``drainMarginMinutes`` before EC2 begins
terminating the instances (30 minutes before the end). A placement group named by
``placementGroupName`` (the one a reservation was created in) is used, not created. Pools with
``autoscaler: karpenter`` get only their placement group here: Karpenter launches their nodes
(:mod:`components.platform.karpenter`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict

from components.cluster.aws_iam import MAX_METADATA_HOPS
from components.config.cluster import GPU_TAINT, GpuNodePoolConfig
from components.config.instance_types import InstanceType, efa_interface_layout
from components.config.scheduling import NodePool

TYPE_TOKEN = "disagg:cluster:AwsGpuNodePool"
AMI_TYPE = "AL2023_x86_64_NVIDIA"
ROOT_DEVICE = "/dev/xvda"

_CAPACITY_TYPES = {"on-demand": "ON_DEMAND", "spot": "SPOT", "capacity-block": "CAPACITY_BLOCK"}
_TAINT_EFFECTS = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}

StrInput = pulumi.Output[str] | str


def node_group_capacity_type(pool: GpuNodePoolConfig) -> str:
    """The node group's ``capacityType`` for the pool's ``capacityType``."""
    return _CAPACITY_TYPES[pool.capacity_type]


def node_group_taints() -> list[dict[str, str]]:
    """Taints of every GPU node group, in the EKS API's terms (effect ``NO_SCHEDULE``)."""
    return [{"key": GPU_TAINT.key, "effect": _TAINT_EFFECTS[GPU_TAINT.effect]}]


def placement_group_name(cluster_name: str, pool_name: str) -> str:
    """Name of a pool's cluster placement group (unique per account and region)."""
    return f"{cluster_name}-{pool_name}"


def efa_network_interfaces(
    instance: InstanceType, security_group_ids: list[StrInput]
) -> list[aws.ec2.LaunchTemplateNetworkInterfaceArgs]:
    """Launch-template network interfaces attaching every EFA interface of ``instance``."""
    return [
        aws.ec2.LaunchTemplateNetworkInterfaceArgs(
            network_card_index=slot.network_card_index,
            device_index=slot.device_index,
            interface_type=slot.interface_type,
            security_groups=list(security_group_ids),
            delete_on_termination="true",
        )
        for slot in efa_interface_layout(instance)
    ]


@dataclass(frozen=True)
class ScheduledScaling:
    """One scheduled action on the node group's Auto Scaling group."""

    name: str
    at: datetime
    min_size: int
    max_size: int
    desired_size: int

    def start_time(self) -> str:
        return self.at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def capacity_block_schedule(pool: GpuNodePoolConfig, now: datetime | None = None) -> list[ScheduledScaling]:
    """Scale-out at the block's start, scale-in to zero before EC2 terminates its instances.

    An action whose time has passed is left out (Auto Scaling refuses start times in the past);
    :func:`node_group_sizes` then starts the group at the block's size.
    """
    block = pool.capacity_block
    if block is None or pool.autoscaler != "none":
        return []
    now = now or datetime.now(timezone.utc)
    size = min(pool.max_size, block.instance_count)
    actions = [
        ScheduledScaling("block-start", block.start, size, size, size),
        ScheduledScaling("block-end", block.scale_in_at(), 0, size, 0),
    ]
    return [action for action in actions if action.at > now]


def node_group_sizes(pool: GpuNodePoolConfig, now: datetime | None = None) -> tuple[int, int, int]:
    """``(min, desired, max)`` of the managed node group when it is created or updated."""
    block = pool.capacity_block
    if block is None:
        return pool.min_size, pool.desired_size, pool.max_size
    now = now or datetime.now(timezone.utc)
    size = min(pool.max_size, block.instance_count)
    active = block.start <= now < block.scale_in_at()
    return (size, size, size) if active else (0, 0, size)


def placement_group_for(cluster_name: str, pool: GpuNodePoolConfig) -> str | None:
    """Name of the cluster placement group the pool's nodes launch into (None: none)."""
    if pool.placement_group_name:
        return pool.placement_group_name
    return placement_group_name(cluster_name, pool.name) if pool.placement_group else None


def _first_asg_name(resources: Any) -> str:
    for resource in resources or []:
        for group in getattr(resource, "autoscaling_groups", None) or []:
            if getattr(group, "name", None):
                return str(group.name)
    return ""


class AwsGpuNodePoolArgs(BaseModel):
    """One GPU pool of a cluster and what it attaches to."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    pool: GpuNodePoolConfig
    cluster_name: str
    """The EKS cluster's name (names the placement group and tags)."""
    eks_cluster_name: StrInput
    """The cluster's name as an output of the EKS cluster, so the node group waits for it."""
    kubernetes_version: StrInput
    node_role_arn: StrInput
    subnet_ids: list[StrInput]
    """One subnet (the pool's zone) for pinned pools; the private subnets otherwise."""
    security_group_ids: list[StrInput]
    """On every interface: the cluster security group, plus the EFA security group on EFA pools."""


class AwsGpuNodePool(pulumi.ComponentResource):
    """Placement group, launch template and EKS managed node group of one GPU pool."""

    node_pool: NodePool
    """The pool in scheduling terms (selector, taint, GPUs, EFA interfaces)."""
    launch_template: aws.ec2.LaunchTemplate
    placement_group: aws.ec2.PlacementGroup | None
    node_group: aws.eks.NodeGroup
    node_group_name: pulumi.Output[str]

    def __init__(self, name: str, args: AwsGpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        pool = args.pool
        instance = pool.instance
        child = pulumi.ResourceOptions(parent=self)
        tags = {"Name": f"{args.cluster_name}-{pool.name}", "disagg.dev/pool": pool.name}
        self.node_pool = pool.node_pool()

        self.placement_group = None
        placement = None
        if pool.placement_group:
            self.placement_group = aws.ec2.PlacementGroup(
                f"{name}-placement-group",
                name=placement_group_name(args.cluster_name, pool.name),
                strategy="cluster",
                tags=tags,
                opts=child,
            )
            placement = aws.ec2.LaunchTemplatePlacementArgs(group_name=self.placement_group.name)
        elif pool.placement_group_name:
            placement = aws.ec2.LaunchTemplatePlacementArgs(group_name=pool.placement_group_name)
        self.schedule: list[aws.autoscaling.Schedule] = []
        if pool.autoscaler == "karpenter":
            self.launch_template = None  # type: ignore[assignment]
            self.node_group = None  # type: ignore[assignment]
            self.node_group_name = None  # type: ignore[assignment]
            self.register_outputs(
                {"placementGroup": self.placement_group.name if self.placement_group else pool.placement_group_name}
            )
            return

        capacity_reservation = None
        if pool.capacity_reservation_id is not None:
            capacity_reservation = aws.ec2.LaunchTemplateCapacityReservationSpecificationArgs(
                capacity_reservation_target=aws.ec2.LaunchTemplateCapacityReservationSpecificationCapacityReservationTargetArgs(
                    capacity_reservation_id=pool.capacity_reservation_id
                )
            )
        market = None
        if pool.capacity_type == "capacity-block":
            market = aws.ec2.LaunchTemplateInstanceMarketOptionsArgs(market_type="capacity-block")

        self.launch_template = aws.ec2.LaunchTemplate(
            f"{name}-launch-template",
            description=f"GPU pool {pool.name} of EKS cluster {args.cluster_name} ({pool.instance_type})",
            instance_type=pool.instance_type,
            network_interfaces=efa_network_interfaces(instance, args.security_group_ids) if pool.efa else None,
            vpc_security_group_ids=None if pool.efa else list(args.security_group_ids),
            placement=placement,
            capacity_reservation_specification=capacity_reservation,
            instance_market_options=market,
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name=ROOT_DEVICE,
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=pool.disk_size_gib,
                        volume_type="gp3",
                        iops=6000,
                        throughput=500,
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=MAX_METADATA_HOPS,
                instance_metadata_tags="disabled",
            ),
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=tags)
                for kind in ("instance", "volume", "network-interface")
            ],
            update_default_version=True,
            tags=tags,
            opts=child,
        )

        sizes = node_group_sizes(pool)
        self.node_group = aws.eks.NodeGroup(
            f"{name}-node-group",
            cluster_name=args.eks_cluster_name,
            version=args.kubernetes_version,
            node_role_arn=args.node_role_arn,
            subnet_ids=list(args.subnet_ids),
            ami_type=AMI_TYPE,
            capacity_type=node_group_capacity_type(pool),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=self.launch_template.id,
                version=self.launch_template.latest_version.apply(str),
            ),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=sizes[0], desired_size=sizes[1], max_size=sizes[2]
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            labels=pool.node_labels(),
            taints=[aws.eks.NodeGroupTaintArgs(**taint) for taint in node_group_taints()],
            tags=tags,
            # on a Capacity Block the scheduled actions move the sizes; Pulumi must not undo them
            opts=pulumi.ResourceOptions(
                parent=self,
                ignore_changes=["scalingConfig.minSize", "scalingConfig.desiredSize"] if pool.capacity_block else None,
            ),
        )
        self.node_group_name = self.node_group.node_group_name
        asg_name = self.node_group.resources.apply(_first_asg_name)
        for action in capacity_block_schedule(pool):
            self.schedule.append(
                aws.autoscaling.Schedule(
                    f"{name}-{action.name}",
                    scheduled_action_name=f"{args.cluster_name}-{pool.name}-{action.name}",
                    autoscaling_group_name=asg_name,
                    start_time=action.start_time(),
                    min_size=action.min_size,
                    max_size=action.max_size,
                    desired_capacity=action.desired_size,
                    opts=child,
                )
            )
        self.register_outputs(
            {
                "launchTemplateId": self.launch_template.id,
                "placementGroup": self.placement_group.name if self.placement_group else None,
                "nodeGroupName": self.node_group_name,
            }
        )
