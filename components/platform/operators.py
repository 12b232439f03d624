"""PlatformOperators: the operators every stack needs, chosen by the cluster's fabric.

=====================  ====================================================================
monitoring.enabled     kube-prometheus-stack (Prometheus Operator and CRDs, Prometheus,
                         Grafana): first, so the DCGM ServiceMonitor's CRD exists (default on)
metricsServer.enabled  metrics-server (the resource metrics API; default on)
always                 NVIDIA GPU Operator, LeaderWorkerSet controller
InfiniBand / RoCE      + NVIDIA Network Operator and its NicClusterPolicy
EFA (AWS)              + AWS EFA device plugin
metricsAdapter.enabled + Prometheus Adapter (custom metrics for the tiers' HPAs)
keda.enabled           + KEDA (the tiers' ScaledObjects: Prometheus queries, LWS scale)
EKS                    + AWS Load Balancer Controller (unless loadBalancerController.enabled
                         is false), + Karpenter when a GPU pool has ``autoscaler: karpenter``
=====================  ====================================================================

Everything is installed with the cluster's Kubernetes provider into ``config.namespace``
(created here), except LWS, which keeps ``lws-system``. Use :attr:`PlatformOperators.releases`
(or the component itself) in ``depends_on`` of anything that needs the operators' CRDs or
device resources.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.contract import ClusterHandle
from components.config.platform import PlatformConfig
from components.platform.efa_device_plugin import EfaDevicePlugin
from components.platform.gpu_operator import GpuOperator
from components.platform.karpenter import Karpenter
from components.platform.keda import Keda
from components.platform.leader_worker_set import LeaderWorkerSet
from components.platform.load_balancer_controller import AwsLoadBalancerController, should_install
from components.platform.metrics_adapter import MetricsAdapter
from components.platform.metrics_server import MetricsServer
from components.platform.monitoring import Monitoring
from components.platform.network_operator import NetworkOperator

TYPE_TOKEN = "disagg:platform:PlatformOperators"
NAMESPACE_LABELS = {
    "app.kubernetes.io/part-of": "disagg-inference",
    "pod-security.kubernetes.io/enforce": "privileged",
}
"""The operators' DaemonSets are privileged (drivers, device plugins, host networking)."""


class PlatformOperators(pulumi.ComponentResource):
    """GPU Operator, Network Operator or EFA device plugin, LWS and (optionally) Prometheus Adapter."""

    installed: list[str]
    """Names of the installed operators, in install order (``PlatformConfig.components_for``)."""
    releases: list[pulumi.CustomResource]
    """The Helm releases (and the NicClusterPolicy), in install order: for ``depends_on``."""
    namespace: str
    monitoring: Monitoring | None
    metrics_server: MetricsServer | None
    gpu_operator: GpuOperator
    network_operator: NetworkOperator | None
    efa_device_plugin: EfaDevicePlugin | None
    leader_worker_set: LeaderWorkerSet
    metrics_adapter: MetricsAdapter | None
    karpenter: Karpenter | None
    keda: Keda | None
    load_balancer_controller: AwsLoadBalancerController | None

    def __init__(
        self,
        name: str,
        handle: ClusterHandle,
        config: PlatformConfig,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(TYPE_TOKEN, name, None, opts)
        problems = config.check_against(handle.fabric, handle.platform)
        if problems:
            raise ValueError(
                f"platform configuration contradicts cluster '{handle.name}':\n"
                + "\n".join(f"  - {p}" for p in problems)
            )
        self.installed = config.components_for(handle.fabric)
        if handle.aws is not None and (handle.aws.karpenter_pools or handle.aws.karpenter_system is not None):
            self.installed.append("karpenter")
        if config.keda.enabled:
            self.installed.append("keda")
        if should_install(config, handle):
            self.installed.append("load-balancer-controller")
        self.namespace = config.namespace
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=self.namespace, labels=dict(NAMESPACE_LABELS)),
            opts=pulumi.ResourceOptions(parent=self, provider=handle.provider),
        )
        child = pulumi.ResourceOptions(parent=self)
        self.releases = []

        self.monitoring = None
        crds: list[pulumi.Resource] = []
        if "monitoring" in self.installed:
            self.monitoring = Monitoring(f"{name}-monitoring", handle, config, opts=child)
            self.releases.append(self.monitoring.release)
            crds.append(self.monitoring.release)

        self.metrics_server = None
        if "metrics-server" in self.installed:
            self.metrics_server = MetricsServer(f"{name}-metrics-server", handle, config, opts=child)
            self.releases.append(self.metrics_server.release)

        self.gpu_operator = GpuOperator(
            f"{name}-gpu-operator", handle, config, depends_on=[namespace, *crds], opts=child
        )
        self.releases.append(self.gpu_operator.release)

        self.network_operator = None
        if "network-operator" in self.installed:
            # after the GPU Operator: its NFD brings the NodeFeatureRule CRD the chart uses
            self.network_operator = NetworkOperator(
                f"{name}-network-operator",
                handle,
                config,
                depends_on=[namespace, self.gpu_operator.release],
                opts=child,
            )
            self.releases += [self.network_operator.release, self.network_operator.nic_cluster_policy]

        self.efa_device_plugin = None
        if "efa-device-plugin" in self.installed:
            self.efa_device_plugin = EfaDevicePlugin(
                f"{name}-efa-device-plugin", handle, config, depends_on=[namespace], opts=child
            )
            self.releases.append(self.efa_device_plugin.release)

        self.leader_worker_set = LeaderWorkerSet(f"{name}-leader-worker-set", handle, config, opts=child)
        self.releases.append(self.leader_worker_set.release)

        self.metrics_adapter = None
        if "metrics-adapter" in self.installed:
            self.metrics_adapter = MetricsAdapter(
                f"{name}-metrics-adapter", handle, config, depends_on=[namespace], opts=child
            )
            self.releases.append(self.metrics_adapter.release)

        self.karpenter = None
        if "karpenter" in self.installed:
            self.karpenter = Karpenter(f"{name}-karpenter", handle, config, opts=child)
            self.releases += [self.karpenter.release, *self.karpenter.node_pools.values()]

        self.keda = None
        if "keda" in self.installed:
            self.keda = Keda(f"{name}-keda", handle, config, opts=child)
            self.releases.append(self.keda.release)

        self.load_balancer_controller = None
        if "load-balancer-controller" in self.installed:
            self.load_balancer_controller = AwsLoadBalancerController(
                f"{name}-load-balancer-controller", handle, config, opts=child
            )
            self.releases.append(self.load_balancer_controller.release)

        self.register_outputs({"installed": self.installed, "namespace": self.namespace})
