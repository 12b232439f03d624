"""kube-prometheus-stack and metrics-server: values against the pinned charts, what KEDA queries,
and the order the CRDs need."""

from __future__ import annotations

import pytest

from components.config.platform import MonitoringConfig, PlatformConfig
from components.platform.metrics_server import metrics_server_values
from components.platform.monitoring import DASHBOARD_LABEL, DATASOURCE_UID, kube_prometheus_stack_values

KPS_TABLE = "kube-prometheus-stack-88.5.3.values-keys.json"


def test_every_value_set_exists_in_the_pinned_chart(upstream, clusters) -> None:
    table = upstream.key_table(KPS_TABLE)
    for grafana in (True, False):
        values = kube_prometheus_stack_values(MonitoringConfig(grafana=grafana), clusters.system_pool)
        assert upstream.unknown_values(values, table) == []


def test_prometheus_selects_every_monitor_of_the_cluster() -> None:
    """The serving PodMonitors and the GPU Operator's ServiceMonitor carry no release label: with
    the chart's default (NilUsesHelmValues true) Prometheus would select none of them."""
    spec = kube_prometheus_stack_values(MonitoringConfig())["prometheus"]["prometheusSpec"]
    assert spec["serviceMonitorSelectorNilUsesHelmValues"] is False
    assert spec["podMonitorSelectorNilUsesHelmValues"] is False
    assert spec["retention"] == "15d"


def test_grafana_loads_labelled_dashboards_from_every_namespace_through_the_prometheus_datasource() -> None:
    grafana = kube_prometheus_stack_values(MonitoringConfig())["grafana"]
    dashboards = grafana["sidecar"]["dashboards"]
    assert (dashboards["label"], dashboards["labelValue"]) == DASHBOARD_LABEL == ("grafana_dashboard", "1")
    assert dashboards["searchNamespace"] == "ALL"
    assert grafana["sidecar"]["datasources"]["uid"] == DATASOURCE_UID
    assert "adminPassword" not in grafana  # the grafana chart generates one into a Secret


def test_controllers_run_on_the_system_pool(clusters) -> None:
    values = kube_prometheus_stack_values(MonitoringConfig(), clusters.system_pool)
    system = {"disagg.dev/pool": "system"}
    assert values["prometheus"]["prometheusSpec"]["nodeSelector"] == system
    assert values["prometheusOperator"]["nodeSelector"] == system
    assert values["prometheusOperator"]["admissionWebhooks"]["patch"]["nodeSelector"] == system


def test_keda_queries_the_operators_prometheus_service_by_default() -> None:
    """prometheus-operator names the governing Service of every Prometheus it runs
    ``prometheus-operated`` (pkg/prometheus/server/statefulset.go @v0.93.0), in its namespace."""
    assert PlatformConfig().keda_prometheus_url() == "http://prometheus-operated.monitoring.svc:9090"
    moved = PlatformConfig.model_validate({"monitoring": {"namespace": "observability"}})
    assert moved.keda_prometheus_url() == "http://prometheus-operated.observability.svc:9090"
    explicit = PlatformConfig.model_validate({"keda": {"enabled": True, "prometheusUrl": "http://amp-proxy.obs:8005"}})
    assert explicit.keda_prometheus_url() == "http://amp-proxy.obs:8005"


def test_keda_without_any_prometheus_is_refused_with_one_line() -> None:
    config = PlatformConfig.model_validate({"monitoring": {"enabled": False}, "keda": {"enabled": True}})
    assert config.check_against("efa", "eks") == [
        "keda.enabled is true but no Prometheus is there to query (monitoring.enabled is false and "
        "keda.prometheusUrl is unset): enable monitoring or set keda.prometheusUrl"
    ]


def test_retention_must_be_a_prometheus_duration() -> None:
    with pytest.raises(ValueError, match="is not a Prometheus duration: use e.g. 15d"):
        MonitoringConfig(retention="two weeks")


def test_metrics_server_values_exist_in_the_pinned_chart(upstream, clusters) -> None:
    values = metrics_server_values(clusters.system_pool)
    assert upstream.unknown_values(values, upstream.key_table("metrics-server-3.13.0.values-keys.json")) == []
    assert values == {
        "replicas": 2,
        "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
        "nodeSelector": {"disagg.dev/pool": "system"},
    }


def deploy(mocks, clusters, config: PlatformConfig):
    from components.platform import PlatformOperators

    return mocks.run(lambda: PlatformOperators(
        "llm-platform", clusters.handle("efa", provider=mocks.provider()), config
    ))  # fmt: skip


def test_the_gpu_operator_waits_for_the_monitoring_crds_and_both_can_be_switched_off(mocks, clusters) -> None:
    out = deploy(mocks, clusters, PlatformConfig())
    releases = out.releases()
    assert releases["kube-prometheus-stack"].inputs["values"]["crds"] == {"enabled": True}
    assert releases["kube-prometheus-stack"].urn in releases["gpu-operator"].dependencies
    assert releases["metrics-server"].inputs["namespace"] == "kube-system"
    off = PlatformConfig.model_validate({"monitoring": {"enabled": False}, "metricsServer": {"enabled": False}})
    releases = deploy(mocks, clusters, off).releases()
    assert {"kube-prometheus-stack", "metrics-server"}.isdisjoint(releases)
    assert releases["gpu-operator"].inputs["values"]["dcgmExporter"]["serviceMonitor"]["enabled"] is False
