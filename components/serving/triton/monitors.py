"""PodMonitor of an engine-runtime deployment: every Triton pod of it (frontend, group leaders) on
its ``metrics`` port (8002, ``components.serving.pods.METRICS_PORT``), path ``/metrics``."""

from __future__ import annotations

from components.serving.labels import ENGINE_APP
from components.serving.monitoring import monitor_labels, pod_monitor


def pod_monitors(deployment: str, namespace: str) -> list[dict]:
    """The PodMonitor of one engine deployment."""
    selector = {"matchLabels": {"app.kubernetes.io/name": ENGINE_APP, "app.kubernetes.io/instance": deployment}}
    return [pod_monitor(f"{deployment}-triton", namespace, selector, "metrics", "/metrics", monitor_labels(deployment))]
