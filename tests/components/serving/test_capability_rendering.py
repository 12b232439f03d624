"""Rendering per TensorRT-LLM generation (runtime/capabilities.py): args, env, metric queries."""

from __future__ import annotations

import re

import pytest
import yaml

from components.config.images import DEFAULT_GENERATION, DEFAULT_TRTLLM_IMAGE, trtllm_generation
from components.platform.keda import ROUTER_METRICS
from components.serving.llmapi.workers import leader_worker_set_manifest, workers_scaled_object_manifest
from engines.llm_api import CacheTransceiverOptions, LlmApiOptions, llm_api_yaml
from runtime.capabilities import GENERATIONS, capabilities, generation_of

PROM = "http://prometheus:9090"
METRIC = re.compile(r"\b([a-z_]+)\{")


def test_default_generation_is_the_default_image_s() -> None:
    assert trtllm_generation(DEFAULT_TRTLLM_IMAGE, None) == DEFAULT_GENERATION == generation_of("1.2.1")


@pytest.mark.parametrize(("version", "generation"), [("1.0.0", "1.0"), ("1.1.0rc5", "1.1"), ("1.2.1", "1.2"), ("1.3.0rc24", "1.3")])
def test_versions_fall_in_their_generation(version: str, generation: str) -> None:
    assert generation_of(version) == generation


def test_a_generation_outside_the_table_is_refused() -> None:
    with pytest.raises(ValueError, match="generation '0.21' is not in the capability table"):
        generation_of("0.21.0")


@pytest.mark.parametrize("generation", GENERATIONS)
def test_kv_transfer_timeout_rendered_only_where_the_table_proves_it(generation: str) -> None:
    options = LlmApiOptions(cache_transceiver_config=CacheTransceiverOptions(backend="NIXL"))
    rendered = yaml.safe_load(llm_api_yaml(options, role="context", kv_transfer_timeout=capabilities(generation).kv_transfer_timeout_ms))["cache_transceiver_config"]
    if capabilities(generation).kv_transfer_timeout_ms:
        assert rendered["kv_transfer_timeout_ms"] == 60000
    else:
        assert "kv_transfer_timeout_ms" not in rendered


def test_an_explicit_kv_transfer_timeout_on_a_release_without_it_cites_the_row() -> None:
    options = LlmApiOptions(cache_transceiver_config=CacheTransceiverOptions(backend="NIXL", kv_transfer_timeout_ms=30000))
    assert "kv_transfer_timeout_ms: 30000" in llm_api_yaml(options, role="generation", kv_transfer_timeout=True)
    with pytest.raises(ValueError, match=r"not an option of the image's TensorRT-LLM release \(runtime/capabilities\.py row"):
        llm_api_yaml(options, role="generation", kv_transfer_timeout=False)


@pytest.mark.parametrize("generation", GENERATIONS)
@pytest.mark.parametrize("role", ["workers", "prefill", "decode"])
def test_every_metric_a_scaler_or_drain_queries_is_the_router_s_or_proven(llmapi_workers_args, generation, role) -> None:
    from components.cluster.contract import NodePool  # noqa: F401 - the fixture's pool type

    yaml_text = "tensor_parallel_size: 4\nmax_batch_size: 64\nmax_num_tokens: 4096\nreturn_perf_metrics: true\nenable_iter_perf_stats: true\n"
    if role != "workers":
        yaml_text += "cache_transceiver_config:\n  backend: NIXL\n"
    args = llmapi_workers_args(
        role=role, autoscaling=True, min_groups=1, max_groups=3, keda_prometheus_url=PROM,
        trtllm_generation=generation, llm_api_yaml=yaml_text,
    )  # fmt: skip
    caps = capabilities(generation)
    scaled = workers_scaled_object_manifest("llama-" + role, args)
    queried = {m for t in scaled["spec"]["triggers"] for m in METRIC.findall(t["metadata"]["query"])}
    lws = leader_worker_set_manifest("llama-" + role, args, "/models/m")
    command = lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]["lifecycle"]["preStop"]
    drained = set(command["exec"]["command"][6:]) if caps.request_gauges else set(METRIC.findall(command["exec"]["command"][4]))
    for metric in queried | drained:
        assert metric in ROUTER_METRICS or metric in caps.worker_metrics(), (generation, role, metric)
    assert "router_outstanding_requests" in queried
    assert ("router_outstanding_prompt_tokens" in queried) == (role == "prefill")
    assert ("trtllm_num_requests_waiting" in queried) == caps.request_gauges


@pytest.mark.parametrize("generation", GENERATIONS)
def test_leaders_are_scraped_only_where_the_endpoint_is_proven(llmapi_workers_args, generation) -> None:
    args = llmapi_workers_args(trtllm_generation=generation)
    lws = leader_worker_set_manifest("llama-workers", args, "/models/m")
    annotations = lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["metadata"]["annotations"]
    assert ("prometheus.io/path" in annotations) == capabilities(generation).prometheus_endpoint


def test_workers_may_reach_prometheus_only_when_their_drain_asks_it() -> None:
    from components.serving.llmapi.deployment import llmapi_network_tiers

    with_drain = llmapi_network_tiers("llama", ["prefill", "decode"], ("monitoring",), "http://prometheus-operated.monitoring.svc:9090")
    without = llmapi_network_tiers("llama", ["prefill", "decode"], ("monitoring",), None)
    prefill = next(t for t in with_drain if t.name == "llama-prefill")
    plain = next(t for t in without if t.name == "llama-prefill")
    extra = [r for r in prefill.egress if r not in plain.egress]
    assert extra == [
        {"peers": [{"namespaceSelector": {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["monitoring"]}]}}],
         "ports": [{"protocol": "TCP", "port": 9090}]}
    ]
