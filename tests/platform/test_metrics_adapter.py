"""metrics_adapter_values: the shared autoscaling rules, Prometheus location, upstream chart keys."""

from __future__ import annotations

import pytest

from components.config.platform import MetricsAdapterConfig
from components.platform.autoscaling_metrics import (
    KV_CACHE_UTILIZATION,
    QUEUE_TIME_MS,
    WAITING_REQUESTS,
    adapter_rules,
)
from components.platform.metrics_adapter import metrics_adapter_values, prometheus_location


def test_rules_are_the_shared_autoscaling_rules():
    rules = metrics_adapter_values(MetricsAdapterConfig(enabled=True))["rules"]
    assert rules["default"] is False
    assert rules["custom"] == [rule.to_values() for rule in adapter_rules()]
    assert [r["name"]["as"] for r in rules["custom"]] == [QUEUE_TIME_MS, KV_CACHE_UTILIZATION, WAITING_REQUESTS]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "http://prometheus-operated.monitoring.svc:9090",
            {"url": "http://prometheus-operated.monitoring.svc", "port": 9090, "path": ""},
        ),
        ("https://prom.example.internal/api/", {"url": "https://prom.example.internal", "port": 443, "path": "/api"}),
        ("http://kube-prometheus-stack-prometheus.monitoring", {"url": "http://kube-prometheus-stack-prometheus.monitoring", "port": 80, "path": ""}),
    ],
)
def test_prometheus_url_splits_into_the_chart_fields(url, expected):
    assert prometheus_location(url) == expected


def test_adapter_runs_on_the_system_pool(clusters):
    values = metrics_adapter_values(MetricsAdapterConfig(enabled=True), clusters.system_pool)
    assert values["nodeSelector"] == {"disagg.dev/pool": "system"}


def test_every_value_set_exists_in_the_upstream_chart(upstream, clusters):
    table = upstream.key_table("prometheus-adapter-5.3.0.values-keys.json")
    values = metrics_adapter_values(MetricsAdapterConfig(enabled=True), clusters.system_pool)
    assert upstream.unknown_values(values, table) == []
