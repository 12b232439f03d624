"""LeaderWorkerSet: the LWS controller (chart from registry.k8s.io) in its own namespace, lws-system.

Helm installs the chart's CRDs only on first install; when the chart version is raised, apply
the new CRDs first (``helm pull … --untar && kubectl apply --server-side -f lws/crds``).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.contract import ClusterHandle
from components.config.platform import LWS_NAMESPACE, ChartConfig, PlatformConfig
from components.config.scheduling import NodePool
from components.platform.gpu_operator import system_node_selector
from components.platform.helm_release import ChartComponent

TYPE_TOKEN = "disagg:platform:LeaderWorkerSet"
RELEASE_NAME = "lws"


def leader_worker_set_values(system_pool: NodePool | None = None) -> dict:
    """Helm values of the lws chart: the controller runs on the system pool."""
    selector = system_node_selector(system_pool)
    return {"nodeSelector": selector} if selector else {}


class LeaderWorkerSet(ChartComponent):
    """The lws-system Namespace and the lws Helm release in it."""

    TYPE_TOKEN = TYPE_TOKEN
    RELEASE_NAME = RELEASE_NAME

    namespace_resource: k8s.core.v1.Namespace

    def chart(self, config: PlatformConfig) -> ChartConfig:
        return config.leader_worker_set.chart

    def chart_values(self, handle: ClusterHandle, config: PlatformConfig) -> dict:
        return leader_worker_set_values(handle.system_pool)

    def release_namespace(self, config: PlatformConfig) -> str:
        return LWS_NAMESPACE

    def before_release(
        self, name: str, handle: ClusterHandle, depends_on: list[pulumi.Resource]
    ) -> list[pulumi.Resource]:
        self.namespace_resource = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=self.namespace, labels={"app.kubernetes.io/part-of": "disagg-inference"}
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=handle.provider, depends_on=depends_on),
        )
        return [self.namespace_resource]
