"""HorizontalPodAutoscaler metric entries and PodDisruptionBudgets."""

from __future__ import annotations

from collections.abc import Mapping

from components.serving.labels import metadata
from components.serving.resources import quantity


def pods_metric(name: str, average_value: float) -> dict:
    """An HPA ``Pods`` metric (custom metrics API, served by Prometheus Adapter)."""
    return {
        "type": "Pods",
        "pods": {
            "metric": {"name": name},
            "target": {"type": "AverageValue", "averageValue": quantity(average_value)},
        },
    }


def pod_disruption_budget_manifest(
    name: str, namespace: str, object_labels: Mapping[str, str], selector: Mapping[str, str], max_unavailable: int
) -> dict:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(name, namespace, object_labels),
        "spec": {
            "maxUnavailable": max_unavailable,
            "selector": {"matchLabels": dict(selector)},
        },
    }
