"""MetricsAdapter: Prometheus Adapter serving the custom pod metrics the tiers' HPAs scale on.

Its rules are :func:`components.platform.autoscaling_metrics.adapter_rules`, the module the serving
components' HorizontalPodAutoscalers take their metric names from, so the two cannot drift.
Only those rules are served (``rules.default`` off): resource metrics come from metrics-server.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from components.cluster.contract import ClusterHandle
from components.config.platform import ChartConfig, MetricsAdapterConfig, PlatformConfig
from components.config.scheduling import NodePool
from components.platform.autoscaling_metrics import adapter_rules
from components.platform.gpu_operator import system_node_selector
from components.platform.helm_release import ChartComponent

TYPE_TOKEN = "disagg:platform:MetricsAdapter"
RELEASE_NAME = "prometheus-adapter"


def prometheus_location(url: str) -> dict:
    """The chart's ``prometheus`` block (``url`` without port, ``port``, ``path``) for ``url``."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return {"url": f"{parts.scheme}://{parts.hostname}", "port": port, "path": parts.path.rstrip("/")}


def metrics_adapter_values(
    config: MetricsAdapterConfig, system_pool: NodePool | None = None, prometheus_url: str | None = None
) -> dict:
    """Helm values of the prometheus-adapter chart; ``prometheus_url``: where the Prometheus is
    when ``config`` names none (``PlatformConfig.adapter_prometheus_url``)."""
    url = config.prometheus_url or prometheus_url
    if url is None:
        raise ValueError("platform.metricsAdapter.prometheusUrl is unset and monitoring is off: set one of them")
    values: dict = {
        "prometheus": prometheus_location(url),
        "rules": {"default": False, "custom": [rule.to_values() for rule in adapter_rules()]},
    }
    selector = system_node_selector(system_pool)
    if selector:
        values["nodeSelector"] = selector
    return values


class MetricsAdapter(ChartComponent):
    """The prometheus-adapter Helm release in ``config.namespace``."""

    TYPE_TOKEN = TYPE_TOKEN
    RELEASE_NAME = RELEASE_NAME

    def chart(self, config: PlatformConfig) -> ChartConfig:
        return config.metrics_adapter.chart

    def chart_values(self, handle: ClusterHandle, config: PlatformConfig) -> dict:
        return metrics_adapter_values(config.metrics_adapter, handle.system_pool, config.adapter_prometheus_url())
