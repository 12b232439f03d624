"""Platform operators: which are installed follows from the cluster's fabric; charts are pinned."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from ..cluster_contract import Fabric
from .base import ConfigModel


class ChartConfig(ConfigModel):
    """A pinned Helm chart."""

    chart: str
    repository: str
    """Helm repository URL, or an ``oci://`` registry path (then ``chart`` is the last element)."""
    version: str

    @field_validator("version")
    @classmethod
    def _pinned(cls, version: str) -> str:
        if not version or version in ("latest", "*") or any(c in version for c in "<>=^~*x "):
            raise ValueError(f"chart version '{version}' is not pinned: use an exact version")
        return version


class GpuOperatorConfig(ConfigModel):
    """NVIDIA GPU Operator (always installed when the cluster has GPU pools)."""

    chart: ChartConfig = ChartConfig(
        chart="gpu-operator", repository="https://helm.ngc.nvidia.com/nvidia", version="v25.10.0"
    )
    driver: bool | None = None
    """Install the GPU driver; default: off on EKS (the AL2023 NVIDIA AMI ships it), on elsewhere."""
    toolkit: bool | None = None
    """Install the container toolkit; default as ``driver``."""
    mig_strategy: Literal["none", "single", "mixed"] = "none"
    dcgm_exporter: bool = True
    service_monitor: bool = False
    """Create a Prometheus Operator ServiceMonitor for DCGM (needs its CRDs on the cluster)."""
    gpudirect_rdma: bool | None = None
    """GPUDirect RDMA (nvidia-peermem); default: on for InfiniBand/RoCE fabrics."""


class RdmaSharedDeviceConfig(ConfigModel):
    """Which NICs the RDMA shared device plugin exposes (its resource name comes from the cluster)."""

    vendors: list[str] = ["15b3"]
    """PCI vendor ids (15b3: Mellanox/NVIDIA)."""
    if_names: list[str] = []
    """Interface names (e.g. ibp1s0); empty: select by vendor and link type."""
    link_types: list[Literal["infiniband", "ether"]] = []
    """Default: infiniband for IB fabrics, ether for RoCE."""
    rdma_hca_max: int = Field(default=63, ge=1, le=1000)
    """Pods that may share one RDMA device."""


class SecondaryNetworkConfig(ConfigModel):
    """Multus + IPAM for a secondary (RDMA) pod network."""

    enabled: bool = False
    ipam: Literal["whereabouts", "nv-ipam"] = "nv-ipam"


class NetworkOperatorConfig(ConfigModel):
    """NVIDIA Network Operator + NicClusterPolicy (installed on InfiniBand/RoCE fabrics)."""

    chart: ChartConfig = ChartConfig(
        chart="network-operator", repository="https://helm.ngc.nvidia.com/nvidia", version="25.7.0"
    )
    ofed_driver: bool = False
    """Deploy the DOCA/MOFED driver container (off when hosts already have it)."""
    rdma_shared_device: RdmaSharedDeviceConfig = RdmaSharedDeviceConfig()
    secondary_network: SecondaryNetworkConfig = SecondaryNetworkConfig()


class EfaDevicePluginConfig(ConfigModel):
    """AWS EFA Kubernetes device plugin (installed on EFA fabrics)."""

    chart: ChartConfig = ChartConfig(
        chart="aws-efa-k8s-device-plugin", repository="https://aws.github.io/eks-charts", version="v0.5.14"
    )


class LeaderWorkerSetConfig(ConfigModel):
    """LeaderWorkerSet controller (always installed: workers are LWS groups)."""

    chart: ChartConfig = ChartConfig(
        chart="lws", repository="oci://registry.k8s.io/lws/charts", version="0.7.0"
    )


class PlatformConfig(ConfigModel):
    """Operators installed on the cluster; the defaults are right for every supported fabric."""

    gpu_operator: GpuOperatorConfig = GpuOperatorConfig()
    network_operator: NetworkOperatorConfig = NetworkOperatorConfig()
    efa_device_plugin: EfaDevicePluginConfig = EfaDevicePluginConfig()
    leader_worker_set: LeaderWorkerSetConfig = LeaderWorkerSetConfig()
    namespace: str = "gpu-platform"
    """Namespace of the operators (LWS keeps its own, lws-system)."""

    def components_for(self, fabric: Fabric) -> list[str]:
        """Names of the operators installed on a cluster with ``fabric``."""
        names = ["gpu-operator"]
        if fabric in ("infiniband", "roce"):
            names.append("network-operator")
        if fabric == "efa":
            names.append("efa-device-plugin")
        names.append("leader-worker-set")
        return names

    def check_against(self, fabric: Fabric, provider: str) -> list[str]:
        """Settings that contradict the cluster (one message each)."""
        problems: list[str] = []
        if self.gpu_operator.gpudirect_rdma and fabric not in ("infiniband", "roce"):
            problems.append(
                f"gpuOperator.gpudirectRdma is true but the cluster's fabric is '{fabric}' "
                "(GPUDirect RDMA via nvidia-peermem needs InfiniBand/RoCE): remove the setting"
            )
        if provider == "eks" and self.gpu_operator.driver:
            problems.append(
                "gpuOperator.driver is true on EKS, whose AL2023 NVIDIA AMI already ships the "
                "driver: remove the setting"
            )
        link_types = set(self.network_operator.rdma_shared_device.link_types)
        expected = {"infiniband": "infiniband", "roce": "ether"}.get(fabric)
        if expected and link_types and link_types != {expected}:
            problems.append(
                f"networkOperator.rdmaSharedDevice.linkTypes {sorted(link_types)} do not match the "
                f"'{fabric}' fabric: use [{expected}] or leave it empty"
            )
        return problems
