"""GpuOperator: the NVIDIA GPU Operator, with values that follow the cluster's platform and fabric.

* EKS (AL2023 NVIDIA AMI): the AMI ships the driver and the container toolkit, so the operator
  installs neither; elsewhere it installs both. The device plugin, GPU feature discovery and the
  DCGM exporter always come from the operator.
* InfiniBand/RoCE: GPUDirect RDMA (``driver.rdma``: nvidia-peermem in the driver container),
  using the hosts' MOFED unless the Network Operator deploys the DOCA driver. With the driver
  off (preinstalled), nvidia-peermem must be loaded on the hosts instead.
* GPU nodes carry the ``nvidia.com/gpu:NoSchedule`` taint: every operand DaemonSet (and the NFD
  worker) tolerates the GPU pools' taints; the operator labels GPU nodes itself, so operands land
  only there. The operator and the NFD master/gc run on the system pool.
"""

from __future__ import annotations

from collections.abc import Mapping

from components.cluster.contract import ClusterHandle
from components.config.platform import RDMA_FABRICS, ChartConfig, PlatformConfig
from components.config.scheduling import GPU_RESOURCE, Fabric, NodePool, Toleration
from components.platform.helm_release import ChartComponent

TYPE_TOKEN = "disagg:platform:GpuOperator"
RELEASE_NAME = "gpu-operator"
CONTROL_PLANE_TOLERATION = {
    "key": "node-role.kubernetes.io/control-plane",
    "operator": "Equal",
    "value": "",
    "effect": "NoSchedule",
}
"""Kept on the NFD worker (upstream default) so control-plane nodes are labelled too."""


def gpu_node_tolerations(gpu_pools: Mapping[str, NodePool]) -> list[dict[str, str]]:
    """Tolerations a DaemonSet needs to run on every GPU node: the pools' taints, sorted.

    Always contains the ``nvidia.com/gpu`` NoSchedule toleration (every GPU node has that taint).
    """
    tolerations = {Toleration(key=GPU_RESOURCE)}
    for pool in gpu_pools.values():
        tolerations.update(pool.tolerations)
    return [
        t.to_k8s()
        for t in sorted(tolerations, key=lambda t: (t.key, t.effect, t.operator, t.value or ""))
    ]


def system_node_selector(system_pool: NodePool | None) -> dict[str, str]:
    """Where controllers (operator Deployments) go; empty: anywhere."""
    return dict(sorted((system_pool.node_selector if system_pool else {}).items()))


def gpu_operator_values(
    config: PlatformConfig,
    fabric: Fabric,
    provider: str,
    gpu_pools: Mapping[str, NodePool] | None = None,
    system_pool: NodePool | None = None,
) -> dict:
    """Helm values of the gpu-operator chart for a cluster with ``fabric`` on ``provider``."""
    gpu = config.gpu_operator
    tolerations = gpu_node_tolerations(gpu_pools or {})
    rdma = gpu.gpudirect_rdma_enabled(fabric)
    driver: dict = {"enabled": gpu.driver_enabled(provider), "rdma": {"enabled": rdma}}
    if rdma:
        ofed_from_operator = fabric in RDMA_FABRICS and config.network_operator.ofed_driver
        driver["rdma"]["useHostMofed"] = not ofed_from_operator
    nfd: dict = {"worker": {"tolerations": [dict(CONTROL_PLANE_TOLERATION), *tolerations]}}
    values: dict = {
        "nfd": {"enabled": gpu.nfd},
        "driver": driver,
        "toolkit": {"enabled": gpu.toolkit_enabled(provider)},
        "devicePlugin": {"enabled": gpu.device_plugin},
        "dcgmExporter": {
            "enabled": gpu.dcgm_exporter,
            "serviceMonitor": {"enabled": config.dcgm_service_monitor(), "honorLabels": True},
        },
        "mig": {"strategy": gpu.mig_strategy},
        "migManager": {"enabled": gpu.mig_strategy != "none"},
        "daemonsets": {"tolerations": tolerations},
        "node-feature-discovery": nfd,
    }
    selector = system_node_selector(system_pool)
    if selector:
        values["operator"] = {"nodeSelector": selector}
        nfd["master"] = {"nodeSelector": selector}
        nfd["gc"] = {"nodeSelector": selector}
    return values


class GpuOperator(ChartComponent):
    """The gpu-operator Helm release in ``config.namespace``."""

    TYPE_TOKEN = TYPE_TOKEN
    RELEASE_NAME = RELEASE_NAME

    def chart(self, config: PlatformConfig) -> ChartConfig:
        return config.gpu_operator.chart

    def chart_values(self, handle: ClusterHandle, config: PlatformConfig) -> dict:
        return gpu_operator_values(config, handle.fabric, handle.platform, handle.gpu_pools, handle.system_pool)
