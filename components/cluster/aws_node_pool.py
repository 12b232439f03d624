"""AwsGpuNodePool: one EKS managed node group of GPU instances, launched from a launch template.

The launch template carries what a plain managed node group cannot: every EFA interface of the
instance type (:func:`~components.cluster.instance_types.efa_interface_layout`) with the EFA security
group, the cluster placement group, and capacity reservation / Capacity Block targeting. The
node group uses EKS's AL2023 NVIDIA accelerated AMI (``amiType AL2023_x86_64_NVIDIA``: NVIDIA
driver, container toolkit and EFA driver included, bootstrap done by EKS), so the template has
no image or user data. The instance type is set in the template (Capacity Blocks require it
there), never on the node group.

Nodes are labelled ``disagg.dev/pool=<pool>`` (plus the pool's labels) and tainted
``nvidia.com/gpu:NoSchedule`` so only GPU pods (which tolerate it) land on them.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict

from components.cluster.aws_iam import MAX_METADATA_HOPS
from components.cluster.contract import NodePool
from components.cluster.instance_types import InstanceType, efa_interface_layout
from components.config.cluster import GPU_TAINT, GpuNodePoolConfig

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
                min_size=pool.min_size, desired_size=pool.desired_size, max_size=pool.max_size
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            labels=pool.node_labels(),
            taints=[aws.eks.NodeGroupTaintArgs(**taint) for taint in node_group_taints()],
            tags=tags,
            opts=child,
        )
        self.node_group_name = self.node_group.node_group_name
        self.register_outputs(
            {
                "launchTemplateId": self.launch_template.id,
                "placementGroup": self.placement_group.name if self.placement_group else None,
                "nodeGroupName": self.node_group_name,
            }
        )
