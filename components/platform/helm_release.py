"""The one way this project installs a Helm chart: a pinned ``ChartConfig``, values, a namespace.

Every chart component (GPU Operator, Network Operator, EFA device plugin, LeaderWorkerSet,
Prometheus Adapter, Karpenter, KEDA, AWS Load Balancer Controller) keeps only its values function
and its checks, and calls :func:`chart_release`. OCI charts carry their registry in the chart
reference; classic repositories are passed as ``repositoryOpts``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config.platform import ChartConfig


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
