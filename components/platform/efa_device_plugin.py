"""EfaDevicePlugin: the AWS EFA Kubernetes device plugin (``vpc.amazonaws.com/efa``) on EFA GPU nodes.

The chart schedules its DaemonSet by instance type (node affinity on
``node.kubernetes.io/instance-type``); the list is narrowed to the instance types of the
cluster's EFA pools, and the DaemonSet tolerates the GPU pools' taints (``nvidia.com/gpu``).
"""

from __future__ import annotations

from collections.abc import Mapping

from components.cluster.contract import ClusterHandle
from components.config.platform import ChartConfig, PlatformConfig
from components.config.scheduling import NodePool
from components.platform.gpu_operator import gpu_node_tolerations
from components.platform.helm_release import ChartComponent

TYPE_TOKEN = "disagg:platform:EfaDevicePlugin"
RELEASE_NAME = "aws-efa-k8s-device-plugin"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"


def efa_device_plugin_values(gpu_pools: Mapping[str, NodePool]) -> dict:
    """Helm values of the aws-efa-k8s-device-plugin chart for these GPU pools."""
    values: dict = {"tolerations": gpu_node_tolerations(gpu_pools)}
    instance_types = sorted(
        {p.instance_type for p in gpu_pools.values() if p.fabric == "efa" and p.instance_type}
    )
    if instance_types:
        values["supportedInstanceLabels"] = {"keys": [INSTANCE_TYPE_LABEL], "values": instance_types}
    return values


class EfaDevicePlugin(ChartComponent):
    """The aws-efa-k8s-device-plugin Helm release in ``config.namespace``."""

    TYPE_TOKEN = TYPE_TOKEN
    RELEASE_NAME = RELEASE_NAME

    def chart(self, config: PlatformConfig) -> ChartConfig:
        return config.efa_device_plugin.chart

    def chart_values(self, handle: ClusterHandle, config: PlatformConfig) -> dict:
        return efa_device_plugin_values(handle.gpu_pools)
