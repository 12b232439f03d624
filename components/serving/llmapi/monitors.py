"""PodMonitors of an LLM API deployment: the frontend and router on ``/metrics``, the trtllm-serve
group leaders on ``/prometheus/metrics`` (the workers of multi-node groups serve no HTTP)."""

from __future__ import annotations

from components.serving.cpu_tier import METRICS_PATH as CPU_TIER_METRICS_PATH
from components.serving.llmapi import frontend, router, workers
from components.serving.monitoring import monitor_labels, pod_monitor


def pod_monitors(deployment: str, namespace: str) -> list[dict]:
    """The PodMonitors of one llmapi deployment."""
    instance = {"app.kubernetes.io/name": frontend.APP, "app.kubernetes.io/instance": deployment}
    cpu_tiers = {
        "matchLabels": dict(instance),
        "matchExpressions": [
            {"key": "app.kubernetes.io/component", "operator": "In", "values": [frontend.COMPONENT, router.COMPONENT]}
        ],
    }
    leaders = {"matchLabels": {**instance, "app.kubernetes.io/component": workers.LEADER_COMPONENT}}
    labels = monitor_labels(deployment)
    return [
        pod_monitor(f"{deployment}-cpu-tiers", namespace, cpu_tiers, "http", CPU_TIER_METRICS_PATH, labels),
        pod_monitor(f"{deployment}-trtllm-serve", namespace, leaders, "http", workers.METRICS_PATH, labels),
    ]
