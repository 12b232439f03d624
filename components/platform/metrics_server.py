"""MetricsServer: the resource metrics API (``metrics.k8s.io``) that CPU triggers and HPAs read.

The chart (kubernetes-sigs/metrics-server, chart 3.13.0 = metrics-server v0.8.0, tag
``metrics-server-helm-chart-3.13.0`` @1a64100c33ac) rather than the EKS community add-on: one way on
EKS and on existing clusters, with its values checked against the chart's keys
(tests/components/platform/data/metrics-server-3.13.0.values-keys.json). It runs in kube-system, where
upstream's manifests put it (the APIService points there), on the system pool.
"""

from __future__ import annotations

from components.cluster.contract import ClusterHandle
from components.config.platform import ChartConfig, PlatformConfig
from components.config.scheduling import NodePool
from components.platform.gpu_operator import system_node_selector
from components.platform.helm_release import ChartComponent

TYPE_TOKEN = "disagg:platform:MetricsServer"
RELEASE_NAME = "metrics-server"
NAMESPACE = "kube-system"


def metrics_server_values(system_pool: NodePool | None = None) -> dict:
    """Helm values of the metrics-server chart: two replicas on the system pool (the resource
    metrics API is down while its only replica restarts, and every HPA with it)."""
    values: dict = {"replicas": 2, "podDisruptionBudget": {"enabled": True, "minAvailable": 1}}
    selector = system_node_selector(system_pool)
    if selector:
        values["nodeSelector"] = selector
    return values


class MetricsServer(ChartComponent):
    """The metrics-server Helm release in kube-system."""

    TYPE_TOKEN = TYPE_TOKEN
    RELEASE_NAME = RELEASE_NAME

    def chart(self, config: PlatformConfig) -> ChartConfig:
        return config.metrics_server.chart

    def chart_values(self, handle: ClusterHandle, config: PlatformConfig) -> dict:
        return metrics_server_values(handle.system_pool)

    def release_namespace(self, config: PlatformConfig) -> str:
        return NAMESPACE
