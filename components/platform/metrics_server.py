"""MetricsServer: the resource metrics API (``metrics.k8s.io``) that CPU triggers and HPAs read.

The chart (kubernetes-sigs/metrics-server, chart 3.13.0 = metrics-server v0.8.0, tag
``metrics-server-helm-chart-3.13.0`` @1a64100c33ac) rather than the EKS community add-on: one way on
EKS and on existing clusters, with its values checked against the chart's keys
(tests/components/platform/data/metrics-server-3.13.0.values-keys.json). It runs in kube-system, where
upstream's manifests put it (the APIService points there), on the system pool.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.contract import ClusterHandle, NodePool
from components.config.platform import PlatformConfig
from components.platform.gpu_operator import system_node_selector
from components.platform.helm_release import chart_release

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


class MetricsServer(pulumi.ComponentResource):
    """The metrics-server Helm release in kube-system."""

    release: k8s.helm.v3.Release
    values: dict

    def __init__(
        self,
        name: str,
        handle: ClusterHandle,
        config: PlatformConfig,
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(TYPE_TOKEN, name, None, opts)
        self.values = metrics_server_values(handle.system_pool)
        self.release = chart_release(
            f"{name}-release", config.metrics_server.chart, RELEASE_NAME, NAMESPACE, self.values,
            handle.provider, self, depends_on=list(depends_on),
        )
        self.register_outputs({"release": self.release.name})
