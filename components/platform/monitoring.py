"""Monitoring: kube-prometheus-stack (pinned), the Prometheus the scalers query and Grafana.

The Prometheus it runs selects every ServiceMonitor and PodMonitor of the cluster (the chart's
``*SelectorNilUsesHelmValues`` off), so the serving layer's PodMonitors and the GPU Operator's DCGM
ServiceMonitor need no release label; the operator's ``prometheus-operated`` Service in
``monitoring.namespace`` is KEDA's and the metrics adapter's default URL
(:meth:`~components.config.platform.MonitoringConfig.prometheus_url`). Targets found through
PodMonitors and ServiceMonitors carry ``namespace`` and ``pod`` labels (the operator relabels
``__meta_kubernetes_namespace`` and ``__meta_kubernetes_pod_name`` into them:
``generatePodMonitorConfig`` in pkg/prometheus/promcfg.go of prometheus-operator v0.93.0
@b9090747e04d; the chart's appVersion v0.93.1 is not in the snapshot read), which the scaler
queries select on. Grafana keeps the chart's sidecar, which loads every ConfigMap
labelled ``grafana_dashboard: "1"`` in any namespace (the serving layer's dashboards); its admin
password is the one the grafana chart generates into a Secret when none is set (the chart's
``prom-operator`` default is not in 88.5.3's values). Alertmanager is off: no receivers are declared.

Keys: kube-prometheus-stack 88.5.3 ``values.yaml`` (prometheus-community/helm-charts
ea930baeebeb, tests/components/platform/data/kube-prometheus-stack-88.5.3.values-keys.json).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.contract import ClusterHandle
from components.config.platform import ChartConfig, MonitoringConfig, PlatformConfig
from components.config.scheduling import NodePool
from components.platform.gpu_operator import system_node_selector
from components.platform.helm_release import ChartComponent

TYPE_TOKEN = "disagg:platform:Monitoring"
RELEASE_NAME = "kube-prometheus-stack"
DASHBOARD_LABEL = ("grafana_dashboard", "1")
"""Label (key, value) of the ConfigMaps the Grafana sidecar loads (the chart's
``grafana.sidecar.dashboards.label`` / ``labelValue`` defaults, set explicitly here)."""
DATASOURCE_UID = "prometheus"
"""UID of the Prometheus datasource the chart provisions (``grafana.sidecar.datasources.uid``)."""
NAMESPACE_LABELS = {
    "app.kubernetes.io/part-of": "disagg-inference",
    "pod-security.kubernetes.io/enforce": "privileged",
}
"""The node exporter DaemonSet uses the host's network and PID namespaces."""


def kube_prometheus_stack_values(config: MonitoringConfig, system_pool: NodePool | None = None) -> dict:
    """Helm values of the kube-prometheus-stack chart."""
    selector = system_node_selector(system_pool)
    spec: dict = {
        "retention": config.retention,
        "serviceMonitorSelectorNilUsesHelmValues": False,
        "podMonitorSelectorNilUsesHelmValues": False,
        "ruleSelectorNilUsesHelmValues": False,
        "probeSelectorNilUsesHelmValues": False,
        "scrapeConfigSelectorNilUsesHelmValues": False,
    }
    operator: dict = {}
    if selector:
        spec["nodeSelector"] = dict(selector)
        operator["nodeSelector"] = dict(selector)
        operator["admissionWebhooks"] = {"patch": {"nodeSelector": dict(selector)}}
    values: dict = {
        "crds": {"enabled": True},
        "alertmanager": {"enabled": False},
        "prometheus": {"prometheusSpec": spec},
        "grafana": {
            "enabled": config.grafana,
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": DASHBOARD_LABEL[0],
                    "labelValue": DASHBOARD_LABEL[1],
                    "searchNamespace": "ALL",
                },
                "datasources": {"enabled": True, "uid": DATASOURCE_UID},
            },
        },
    }
    if operator:
        values["prometheusOperator"] = operator
    return values


class Monitoring(ChartComponent):
    """The monitoring Namespace and the kube-prometheus-stack release in it (CRDs of
    monitoring.coreos.com included: PodMonitors and ServiceMonitors depend on :attr:`release`)."""

    TYPE_TOKEN = TYPE_TOKEN
    RELEASE_NAME = RELEASE_NAME

    namespace_resource: k8s.core.v1.Namespace

    def chart(self, config: PlatformConfig) -> ChartConfig:
        return config.monitoring.chart

    def chart_values(self, handle: ClusterHandle, config: PlatformConfig) -> dict:
        return kube_prometheus_stack_values(config.monitoring, handle.system_pool)

    def release_namespace(self, config: PlatformConfig) -> str:
        return config.monitoring.namespace

    def before_release(
        self, name: str, handle: ClusterHandle, depends_on: list[pulumi.Resource]
    ) -> list[pulumi.Resource]:
        self.namespace_resource = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=self.namespace, labels=dict(NAMESPACE_LABELS)),
            opts=pulumi.ResourceOptions(parent=self, provider=handle.provider, depends_on=depends_on),
        )
        return [self.namespace_resource]
