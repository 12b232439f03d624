"""What every cluster component exposes, so the layers above are cloud-agnostic.

``AwsGpuCluster`` (EKS + EFA) and ``ExistingCluster`` (kubeconfig, InfiniBand/RoCE) both
provide a :class:`ClusterHandle`; operators, engine builds and Triton stacks only use this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s

Fabric = Literal["efa", "infiniband", "roce", "none"]

GPU_RESOURCE = "nvidia.com/gpu"
EFA_RESOURCE = "vpc.amazonaws.com/efa"


@dataclass(frozen=True)
class Toleration:
    key: str
    effect: str = "NoSchedule"
    operator: str = "Exists"
    value: str | None = None

    def to_k8s(self) -> dict[str, str]:
        """The toleration as a pod-spec dict."""
        out = {"key": self.key, "operator": self.operator, "effect": self.effect}
        if self.value is not None and self.operator == "Equal":
            out["value"] = self.value
        return out


@dataclass(frozen=True)
class NodePool:
    """A group of nodes pods can be scheduled on, described in scheduling terms."""

    name: str
    gpus_per_node: int
    gpu_memory_gib: int
    """Memory of one GPU."""
    node_selector: dict[str, str]
    gpu_arch: str | None = None
    """'ampere', 'ada', 'hopper' or 'blackwell' (decides e.g. FP8 support)."""
    tolerations: tuple[Toleration, ...] = ()
    fabric: Fabric = "none"
    efa_interfaces: int = 0
    """EFA interfaces per node (AWS); pods request them as ``vpc.amazonaws.com/efa``."""
    rdma_resource: str | None = None
    """Extended resource for RDMA on IB/RoCE (e.g. ``rdma/rdma_shared_device_a``)."""
    instance_type: str | None = None

    def fabric_resources(self, share: float = 1.0) -> dict[str, str]:
        """Extended resources a pod using ``share`` of the node's fabric requests."""
        if self.fabric == "efa" and self.efa_interfaces:
            return {EFA_RESOURCE: str(max(1, int(self.efa_interfaces * share)))}
        if self.fabric in ("infiniband", "roce") and self.rdma_resource:
            return {self.rdma_resource: "1"}
        return {}


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
