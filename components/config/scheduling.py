"""What a node pool offers, in scheduling terms: its fabric, GPUs, taints and extended resources.

The stack configuration describes its pools with these types (``ClusterConfig.node_pools()``); the
cluster components expose them in their ``ClusterHandle`` and every layer above schedules on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
    max_nodes: int | None = None
    """The most nodes the pool ever has (EKS maxSize, an existing pool's maxNodes); None: unknown.
    Components check their worker groups against it (serving.llmapi.checks)."""

    def fabric_resources(self, share: float = 1.0) -> dict[str, str]:
        """Extended resources a pod using ``share`` of the node's fabric requests."""
        if self.fabric == "efa" and self.efa_interfaces:
            return {EFA_RESOURCE: str(max(1, int(self.efa_interfaces * share)))}
        if self.fabric in ("infiniband", "roce") and self.rdma_resource:
            return {self.rdma_resource: "1"}
        return {}
