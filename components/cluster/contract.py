"""What every cluster component exposes, so the layers above are cloud-agnostic.

``AwsGpuCluster`` (EKS + EFA) and ``ExistingCluster`` (kubeconfig, InfiniBand/RoCE) both
provide a :class:`ClusterHandle`; operators, engine builds and Triton stacks only use this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s

from components.config.scheduling import Fabric, NodePool


@dataclass(frozen=True)
class SharedStorage:
    """A ReadWriteMany volume engines and weights live on."""

    storage_class: str
    size_gib: int
    kind: str
    """'fsx-lustre', 's3-mountpoint', 'nfs', or 'existing'."""


@dataclass
class AwsClusterInfo:
    """What platform components installed on EKS need from AWS (outputs of AwsGpuCluster)."""

    region: str
    cluster_name: pulumi.Output[str]
    vpc_id: pulumi.Output[str]
    node_role_name: pulumi.Output[str]
    """The node role; Karpenter's EC2NodeClasses launch nodes with it (it has an access entry)."""
    pool_subnet_ids: dict[str, pulumi.Output[str]] = field(default_factory=dict)
    """GPU pool -> the subnet of its zone."""
    pool_security_group_ids: dict[str, list[pulumi.Output[str] | str]] = field(default_factory=dict)
    """GPU pool -> the security groups of its interfaces (cluster SG, + EFA SG on EFA pools)."""
    placement_groups: dict[str, str] = field(default_factory=dict)
    """GPU pool -> name of the cluster placement group its nodes launch into."""
    karpenter_pools: tuple[Any, ...] = ()
    """The ``GpuNodePoolConfig`` of every pool with ``autoscaler: karpenter``."""
    karpenter_system: Any | None = None
    """The ``SystemNodeGroupConfig`` when Karpenter adds CPU nodes to the system pool."""
    system_subnet_ids: list[pulumi.Output[str] | str] = field(default_factory=list)
    """The private subnets (one per zone) CPU nodes launch into."""
    system_security_group_ids: list[pulumi.Output[str] | str] = field(default_factory=list)
    karpenter_interruption_queue: pulumi.Output[str] | None = None
    """SQS queue of EC2 interruption events (None: no Karpenter pool)."""
    karpenter_dependencies: tuple[pulumi.Resource, ...] = ()
    """The controller's IAM role, policies and Pod Identity association (install after them)."""
    load_balancer_controller_role_arn: pulumi.Output[str] | None = None
    """IRSA role of the AWS Load Balancer Controller's service account."""


@dataclass
class ClusterHandle:
    """Outputs of a cluster component, consumed by everything above it."""

    name: str
    provider: k8s.Provider
    kubeconfig: pulumi.Output[str]
    fabric: Fabric
    system_pool: NodePool
    gpu_pools: dict[str, NodePool] = field(default_factory=dict)
    storage: SharedStorage | None = None
    platform: Literal["eks", "existing"] = "eks"
    aws: AwsClusterInfo | None = None
    """AWS specifics for EKS-only platform components (Karpenter, load balancer controller)."""
