"""MetricsAdapter: Prometheus Adapter serving the custom pod metrics the tiers' HPAs scale on.

Its rules are :func:`components.platform.autoscaling_metrics.adapter_rules`, the module the serving
components' HorizontalPodAutoscalers take their metric names from, so the two cannot drift.
Only those rules are served (``rules.default`` off): resource metrics come from metrics-server.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.contract import ClusterHandle
from components.config.platform import MetricsAdapterConfig, PlatformConfig
from components.config.scheduling import NodePool
from components.platform.autoscaling_metrics import adapter_rules
from components.platform.gpu_operator import system_node_selector
from components.platform.helm_release import chart_release

TYPE_TOKEN = "disagg:platform:MetricsAdapter"
RELEASE_NAME = "prometheus-adapter"


def prometheus_location(url: str) -> dict:
    """The chart's ``prometheus`` block (``url`` without port, ``port``, ``path``) for ``url``."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return {"url": f"{parts.scheme}://{parts.hostname}", "port": port, "path": parts.path.rstrip("/")}


def metrics_adapter_values(config: MetricsAdapterConfig, system_pool: NodePool | None = None) -> dict:
    """Helm values of the prometheus-adapter chart."""
    values: dict = {
        "prometheus": prometheus_location(config.prometheus_url),
        "rules": {"default": False, "custom": [rule.to_values() for rule in adapter_rules()]},
    }
    selector = system_node_selector(system_pool)
    if selector:
        values["nodeSelector"] = selector
    return values


class MetricsAdapter(pulumi.ComponentResource):
    """The prometheus-adapter Helm release in ``config.namespace``."""

    release: k8s.helm.v3.Release
    namespace: str
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
        chart = config.metrics_adapter.chart
        self.namespace = config.namespace
        self.values = metrics_adapter_values(config.metrics_adapter, handle.system_pool)
        self.release = chart_release(
            f"{name}-release", chart, RELEASE_NAME, self.namespace, self.values,
            handle.provider, self, depends_on=list(depends_on),
        )
        self.register_outputs({"release": self.release.name, "namespace": self.namespace})
