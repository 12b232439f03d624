"""metrics_adapter_values: the shared autoscaling rules, Prometheus location, upstream chart keys."""

from __future__ import annotations

import pytest

from components.config.platform import MetricsAdapterConfig, PlatformConfig
from components.platform.autoscaling_metrics import (
    KV_CACHE_UTILIZATION,
    LLMAPI_KV_CACHE_UTILIZATION,
    LLMAPI_WAITING_REQUESTS,
    QUEUE_TIME_MS,
    WAITING_REQUESTS,
    adapter_rules,
)
from components.platform.metrics_adapter import metrics_adapter_values, prometheus_location

PROM = PlatformConfig().monitoring.prometheus_url()


def test_rules_are_the_shared_autoscaling_rules():
    rules = metrics_adapter_values(MetricsAdapterConfig(enabled=True), None, PROM)["rules"]
    assert rules["default"] is False
    assert rules["custom"] == [rule.to_values() for rule in adapter_rules()]
    assert [r["name"]["as"] for r in rules["custom"]] == [
        QUEUE_TIME_MS, KV_CACHE_UTILIZATION, WAITING_REQUESTS, LLMAPI_KV_CACHE_UTILIZATION, LLMAPI_WAITING_REQUESTS,
    ]  # fmt: skip


def test_llmapi_rules_read_the_upstream_trtllm_serve_gauges():
    rules = {r.name: r for r in adapter_rules()}
    kv, waiting = rules[LLMAPI_KV_CACHE_UTILIZATION], rules[LLMAPI_WAITING_REQUESTS]
    assert kv.series_query == 'trtllm_kv_cache_utilization{namespace!="",pod!=""}'
    assert kv.metrics_query == "max(trtllm_kv_cache_utilization{<<.LabelMatchers>>}) by (<<.GroupBy>>)"
    assert waiting.metrics_query == "sum(trtllm_num_requests_waiting{<<.LabelMatchers>>}) by (<<.GroupBy>>)"


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
    values = metrics_adapter_values(MetricsAdapterConfig(enabled=True), clusters.system_pool, PROM)
    assert values["nodeSelector"] == {"disagg.dev/pool": "system"}


def test_every_value_set_exists_in_the_upstream_chart(upstream, clusters):
    table = upstream.key_table("prometheus-adapter-5.3.0.values-keys.json")
    values = metrics_adapter_values(MetricsAdapterConfig(enabled=True), clusters.system_pool, PROM)
    assert upstream.unknown_values(values, table) == []


def test_the_adapter_defaults_to_the_stacks_prometheus_and_an_explicit_url_wins():
    assert PlatformConfig().adapter_prometheus_url() == "http://prometheus-operated.monitoring.svc:9090"
    values = metrics_adapter_values(MetricsAdapterConfig(enabled=True), None, PROM)
    assert values["prometheus"] == {"url": "http://prometheus-operated.monitoring.svc", "port": 9090, "path": ""}
    explicit = MetricsAdapterConfig(enabled=True, prometheus_url="https://prom.example.internal/api")
    assert metrics_adapter_values(explicit, None, PROM)["prometheus"]["url"] == "https://prom.example.internal"
