"""The one way this project installs a Helm chart: :class:`ChartComponent`, which owns the release.

Every chart component (GPU Operator, Network Operator, EFA device plugin, LeaderWorkerSet,
Prometheus Adapter, Karpenter, KEDA, AWS Load Balancer Controller, kube-prometheus-stack,
metrics-server) subclasses it and keeps only
its chart, its values function and its checks (plus, where the chart needs them, the resources
the release waits for and those that need the release: a namespace, custom resources of the
chart's CRDs). OCI charts carry their registry in the chart reference; classic repositories are
passed as ``repositoryOpts``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.contract import ClusterHandle
from components.config.platform import ChartConfig, PlatformConfig


def chart_release(
    resource_name: str,
    chart: ChartConfig,
    release_name: str,
    namespace: str,
    values: Mapping[str, Any],
    provider: pulumi.ProviderResource | None,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
    create_namespace: bool = False,
) -> k8s.helm.v3.Release:
    """A Helm release of ``chart`` named ``release_name`` in ``namespace`` with ``values``."""
    repo = chart.repository_url()
    return k8s.helm.v3.Release(
        resource_name,
        k8s.helm.v3.ReleaseArgs(
            name=release_name,
            chart=chart.chart_ref(),
            version=chart.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repo) if repo else None,
            namespace=namespace,
            create_namespace=create_namespace or None,
            values=dict(values),
        ),
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=list(depends_on)),
    )


class ChartComponent(pulumi.ComponentResource):
    """One pinned Helm release (``<name>-release``) and what must exist around it.

    A subclass sets ``TYPE_TOKEN`` and ``RELEASE_NAME`` and implements :meth:`chart` and
    :meth:`chart_values`; the other methods are hooks with defaults. The order is fixed: checks,
    values, :meth:`before_release`, the release, :meth:`after_release`, ``register_outputs``.
    """

    TYPE_TOKEN: ClassVar[str]
    RELEASE_NAME: ClassVar[str]
    CREATE_NAMESPACE: ClassVar[bool] = False
    """Let Helm create the release's namespace (the chart's own namespace, e.g. KEDA's)."""

    release: k8s.helm.v3.Release
    namespace: str
    values: dict
    """The Helm values sent (plain data, for inspection and tests)."""

    def __init__(
        self,
        name: str,
        handle: ClusterHandle,
        config: PlatformConfig,
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(self.TYPE_TOKEN, name, None, opts)
        self.check(handle, config)
        self.namespace = self.release_namespace(config)
        self.values = self.chart_values(handle, config)
        waits_for = self.before_release(name, handle, list(depends_on))
        self.release = chart_release(
            f"{name}-release", self.chart(config), self.RELEASE_NAME, self.namespace, self.values,
            handle.provider, self, depends_on=waits_for, create_namespace=self.CREATE_NAMESPACE,
        )
        extra = self.after_release(name, handle, config)
        self.register_outputs({**self.outputs(), **extra})

    def chart(self, config: PlatformConfig) -> ChartConfig:
        """The pinned chart (its ``ChartConfig`` in the platform configuration)."""
        raise NotImplementedError

    def chart_values(self, handle: ClusterHandle, config: PlatformConfig) -> dict:
        """The Helm values (a pure function of the cluster and the configuration)."""
        raise NotImplementedError

    def check(self, handle: ClusterHandle, config: PlatformConfig) -> None:
        """Raise ``ValueError`` (one line: what, where, the fix) when the chart cannot go on this cluster."""

    def release_namespace(self, config: PlatformConfig) -> str:
        """Where the release goes (default: the platform namespace)."""
        return config.namespace

    def before_release(
        self, name: str, handle: ClusterHandle, depends_on: list[pulumi.Resource]
    ) -> list[pulumi.Resource]:
        """Declare what the release needs first; returns what the release depends on."""
        return depends_on

    def after_release(self, name: str, handle: ClusterHandle, config: PlatformConfig) -> dict[str, Any]:
        """Declare what needs the release (e.g. custom resources of its CRDs); returns extra outputs."""
        return {}

    def outputs(self) -> dict[str, Any]:
        """The outputs every chart component registers."""
        return {"release": self.release.name, "namespace": self.namespace}
