"""LeaderWorkerSet: the LWS controller (chart from registry.k8s.io) in its own namespace, lws-system.

Helm installs the chart's CRDs only on first install; when the chart version is raised, apply
the new CRDs first (``helm pull … --untar && kubectl apply --server-side -f lws/crds``).
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.contract import ClusterHandle
from components.config.platform import LWS_NAMESPACE, PlatformConfig
from components.config.scheduling import NodePool
from components.platform.gpu_operator import system_node_selector
from components.platform.helm_release import chart_release

TYPE_TOKEN = "disagg:platform:LeaderWorkerSet"
RELEASE_NAME = "lws"


def leader_worker_set_values(system_pool: NodePool | None = None) -> dict:
    """Helm values of the lws chart: the controller runs on the system pool."""
    selector = system_node_selector(system_pool)
    return {"nodeSelector": selector} if selector else {}


class LeaderWorkerSet(pulumi.ComponentResource):
    """The lws-system Namespace and the lws Helm release in it."""

    namespace: str
    namespace_resource: k8s.core.v1.Namespace
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
        chart = config.leader_worker_set.chart
        self.namespace = LWS_NAMESPACE
        self.values = leader_worker_set_values(handle.system_pool)
        self.namespace_resource = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=self.namespace, labels={"app.kubernetes.io/part-of": "disagg-inference"}
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=handle.provider, depends_on=list(depends_on)),
        )
        self.release = chart_release(
            f"{name}-release", chart, RELEASE_NAME, self.namespace, self.values,
            handle.provider, self, depends_on=[self.namespace_resource],
        )
        self.register_outputs({"release": self.release.name, "namespace": self.namespace})
