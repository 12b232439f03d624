"""Custom pod metrics the tiers scale on, and the Prometheus Adapter rules that serve them.

The serving components write HorizontalPodAutoscalers against these metric names; the platform
installs Prometheus Adapter with :func:`adapter_rules` so the names exist. Both import this
module, so a renamed metric cannot drift between the two. Source series are the ones Triton
and its TensorRT-LLM backend export on ``/metrics`` (port 8002).
"""

from __future__ import annotations

from dataclasses import dataclass

QUEUE_TIME_MS = "triton_queue_time_ms"
"""Average time a request waited in Triton's queue over the last minute, per pod (ms)."""
KV_CACHE_UTILIZATION = "trtllm_kv_cache_utilization"
"""Fraction of the TRT-LLM paged KV-cache blocks in use, per pod (0–1)."""
WAITING_REQUESTS = "trtllm_waiting_requests"
"""Requests the TRT-LLM batch manager holds waiting for a slot, per pod."""

# LLM API runtime: trtllm-serve exports these gauges itself on /prometheus/metrics (with
# ``return_perf_metrics: true``): tensorrt_llm/metrics/collector.py @050f80def8df (names),
# tensorrt_llm/serve/openai_server.py @00057725d9a6 (``mount_metrics`` at /prometheus/metrics).
LLMAPI_KV_CACHE_UTILIZATION = "llmapi_kv_cache_utilization"
"""Fraction of the KV cache in use on a trtllm-serve leader (upstream gauge trtllm_kv_cache_utilization)."""
LLMAPI_WAITING_REQUESTS = "llmapi_requests_waiting"
"""Requests queued on a trtllm-serve leader (upstream gauge trtllm_num_requests_waiting)."""
UPSTREAM_KV_CACHE_UTILIZATION = "trtllm_kv_cache_utilization"
UPSTREAM_REQUESTS_WAITING = "trtllm_num_requests_waiting"


@dataclass(frozen=True)
class AdapterRule:
    """One ``rules.custom`` entry of the prometheus-adapter chart."""

    name: str
    series_query: str
    metrics_query: str

    def to_values(self) -> dict[str, object]:
        return {
            "seriesQuery": self.series_query,
            "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
            "name": {"as": self.name},
            "metricsQuery": self.metrics_query,
        }


def adapter_rules() -> list[AdapterRule]:
    """Rules exposing the metrics above as ``pods`` metrics of the custom metrics API."""
    by_pod = "by (<<.GroupBy>>)"
    return [
        AdapterRule(
            QUEUE_TIME_MS,
            'nv_inference_queue_duration_us{namespace!="",pod!=""}',
            f"sum(rate(nv_inference_queue_duration_us{{<<.LabelMatchers>>}}[1m])) {by_pod} / 1000"
            f" / clamp_min(sum(rate(nv_inference_request_success{{<<.LabelMatchers>>}}[1m])) {by_pod}, 1)",
        ),
        AdapterRule(
            KV_CACHE_UTILIZATION,
            'nv_trt_llm_kv_cache_block_metrics{namespace!="",pod!=""}',
            f'sum(nv_trt_llm_kv_cache_block_metrics{{kv_cache_block_type="used",<<.LabelMatchers>>}}) {by_pod}'
            f' / clamp_min(sum(nv_trt_llm_kv_cache_block_metrics{{kv_cache_block_type="max",'
            f"<<.LabelMatchers>>}}) {by_pod}, 1)",
        ),
        AdapterRule(
            WAITING_REQUESTS,
            'nv_trt_llm_request_metrics{namespace!="",pod!=""}',
            f'sum(nv_trt_llm_request_metrics{{request_type="waiting",<<.LabelMatchers>>}}) {by_pod}',
        ),
        AdapterRule(
            LLMAPI_KV_CACHE_UTILIZATION,
            f'{UPSTREAM_KV_CACHE_UTILIZATION}{{namespace!="",pod!=""}}',
            f"max({UPSTREAM_KV_CACHE_UTILIZATION}{{<<.LabelMatchers>>}}) {by_pod}",
        ),
        AdapterRule(
            LLMAPI_WAITING_REQUESTS,
            f'{UPSTREAM_REQUESTS_WAITING}{{namespace!="",pod!=""}}',
            f"sum({UPSTREAM_REQUESTS_WAITING}{{<<.LabelMatchers>>}}) {by_pod}",
        ),
    ]
