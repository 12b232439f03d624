"""DeploymentMonitoring: what Prometheus scrapes of one deployment, and its Grafana dashboard.

PodMonitors (``monitoring.coreos.com/v1``, the CRD kube-prometheus-stack 88.5.3 installs:
tests/components/platform/data/podmonitor-kube-prometheus-stack-88.5.3.schema.json) select the deployment's
pods by their standard labels; the Prometheus Operator gives every target ``namespace`` and ``pod``
labels, which the KEDA and adapter queries select on. The dashboard is a ConfigMap the Grafana
sidecar loads (label ``grafana_dashboard: "1"``, any namespace). Both need the Prometheus
Operator's CRDs and Grafana: the component is created with ``depends_on`` the platform.

Which pods, ports and paths is each runtime's own knowledge (``llmapi.monitors``,
``triton.monitors``):

=============  =================================  ===========  =========================
runtime        pods (``app.kubernetes.io/…``)      port         path
=============  =================================  ===========  =========================
llmapi         component frontend, router          ``http``     ``/metrics``
llmapi         component trtllm-serve (leaders)    ``http``     ``/prometheus/metrics``
engine         name triton (frontend, leaders)     ``metrics``  ``/metrics``
=============  =================================  ===========  =========================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from components.platform.monitoring import DASHBOARD_LABEL
from components.serving.dashboards import dashboard_json
from components.serving.labels import PART_OF

TYPE_TOKEN = "disagg:serving:DeploymentMonitoring"
API_VERSION = "monitoring.coreos.com/v1"
SCRAPE_INTERVAL = "15s"
"""As often as KEDA polls (``components.platform.keda.POLLING_INTERVAL_S``)."""


def monitor_labels(deployment: str) -> dict[str, str]:
    """Labels of a deployment's PodMonitors."""
    return {"app.kubernetes.io/instance": deployment, "app.kubernetes.io/part-of": PART_OF}


def pod_monitor(
    name: str, namespace: str, selector: dict, port: str, path: str, labels: dict[str, str]
) -> dict:
    """One PodMonitor scraping ``port``/``path`` of the pods ``selector`` matches in ``namespace``."""
    return {
        "apiVersion": API_VERSION,
        "kind": "PodMonitor",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "selector": selector,
            "namespaceSelector": {"matchNames": [namespace]},
            "podMetricsEndpoints": [{"port": port, "path": path, "interval": SCRAPE_INTERVAL}],
        },
    }


def dashboard_config_map(deployment: str, namespace: str, dashboard: dict) -> dict:
    """The ConfigMap the Grafana sidecar loads the dashboard from."""
    key, value = DASHBOARD_LABEL
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"{deployment}-dashboard",
            "namespace": namespace,
            "labels": {key: value, "app.kubernetes.io/instance": deployment, "app.kubernetes.io/part-of": PART_OF},
        },
        "data": {f"{deployment}.json": dashboard_json(dashboard)},
    }


class DeploymentMonitoring(pulumi.ComponentResource):
    """The PodMonitors (from the runtime's ``pod_monitors``) and the dashboard ConfigMap of one
    deployment."""

    def __init__(
        self,
        name: str,
        namespace: str,
        pod_monitors: Sequence[dict],
        dashboard: dict | None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(TYPE_TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.pod_monitors = [
            k8s.apiextensions.CustomResource(
                manifest["metadata"]["name"],
                api_version=manifest["apiVersion"],
                kind=manifest["kind"],
                metadata=manifest["metadata"],
                spec=manifest["spec"],
                opts=child,
            )
            for manifest in pod_monitors
        ]
        self.dashboard: k8s.core.v1.ConfigMap | None = None
        if dashboard is not None:
            manifest = dashboard_config_map(name, namespace, dashboard)
            self.dashboard = k8s.core.v1.ConfigMap(
                f"{name}-dashboard", metadata=cast(Any, manifest["metadata"]), data=manifest["data"], opts=child
            )
        self.register_outputs({"podMonitors": [m["metadata"]["name"] for m in pod_monitors]})
