"""DeploymentMonitoring: what Prometheus scrapes of one deployment, and its Grafana dashboard.

PodMonitors (``monitoring.coreos.com/v1``, the CRD kube-prometheus-stack 88.5.3 installs:
tests/components/platform/data/podmonitor-kube-prometheus-stack-88.5.3.schema.json) select the deployment's
pods by their standard labels; the Prometheus Operator gives every target ``namespace`` and ``pod``
labels, which the KEDA and adapter queries select on. The dashboard is a ConfigMap the Grafana
sidecar loads (label ``grafana_dashboard: "1"``, any namespace). Both need the Prometheus
Operator's CRDs and Grafana: the component is created with ``depends_on`` the platform.

=============  =================================  ===========  =========================
runtime        pods (``app.kubernetes.io/…``)      port         path
=============  =================================  ===========  =========================
llmapi         component frontend, router          ``http``     ``/metrics``
llmapi         component trtllm-serve (leaders)    ``http``     ``/prometheus/metrics``
engine         name triton (frontend, leaders)     ``metrics``  ``/metrics``
=============  =================================  ===========  =========================
"""

from __future__ import annotations

from typing import Any, Literal, cast

import pulumi
import pulumi_kubernetes as k8s

from components.platform.monitoring import DASHBOARD_LABEL
from components.serving.cpu_tier import METRICS_PATH as CPU_TIER_METRICS_PATH
from components.serving.dashboards import dashboard_json, deployment_dashboard
from components.serving.labels import PART_OF
from components.serving.llmapi import frontend as llmapi_frontend
from components.serving.llmapi import router as llmapi_router
from components.serving.llmapi import workers as llmapi_workers

TYPE_TOKEN = "disagg:serving:DeploymentMonitoring"
API_VERSION = "monitoring.coreos.com/v1"
SCRAPE_INTERVAL = "15s"
"""As often as KEDA polls (``components.platform.keda.POLLING_INTERVAL_S``)."""
TRITON_METRICS = ("metrics", "/metrics")
"""Port name and path of Triton's metrics (components/serving/pods.py METRICS_PORT 8002)."""


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


def deployment_pod_monitors(deployment: str, namespace: str, runtime: Literal["llmapi", "engine"]) -> list[dict]:
    """The PodMonitors of one deployment."""
    meta = {"app.kubernetes.io/instance": deployment, "app.kubernetes.io/part-of": PART_OF}
    if runtime == "engine":
        port, path = TRITON_METRICS
        selector = {"matchLabels": {"app.kubernetes.io/name": "triton", "app.kubernetes.io/instance": deployment}}
        return [pod_monitor(f"{deployment}-triton", namespace, selector, port, path, meta)]
    app = llmapi_frontend.APP
    cpu = {
        "matchLabels": {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": deployment},
        "matchExpressions": [{
            "key": "app.kubernetes.io/component",
            "operator": "In",
            "values": [llmapi_frontend.COMPONENT, llmapi_router.COMPONENT],
        }],
    }
    leaders = {"matchLabels": {
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/instance": deployment,
        "app.kubernetes.io/component": llmapi_workers.LEADER_COMPONENT,
    }}
    return [
        pod_monitor(f"{deployment}-cpu-tiers", namespace, cpu, "http", CPU_TIER_METRICS_PATH, meta),
        pod_monitor(f"{deployment}-trtllm-serve", namespace, leaders, "http", llmapi_workers.METRICS_PATH, meta),
    ]


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
    """The PodMonitors and the dashboard ConfigMap of one deployment."""

    def __init__(
        self,
        name: str,
        namespace: str,
        runtime: Literal["llmapi", "engine"],
        roles: list[str],
        grafana: bool = True,
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
            for manifest in deployment_pod_monitors(name, namespace, runtime)
        ]
        self.dashboard: k8s.core.v1.ConfigMap | None = None
        if grafana:
            manifest = dashboard_config_map(name, namespace, deployment_dashboard(name, namespace, runtime, roles))
            self.dashboard = k8s.core.v1.ConfigMap(
                f"{name}-dashboard",
                metadata=cast(Any, manifest["metadata"]),
                data=manifest["data"],
                opts=child,
            )
        self.register_outputs({"podMonitors": [m["metadata"]["name"] for m in deployment_pod_monitors(name, namespace, runtime)]})
