"""Grafana dashboards as code: the picture of one deployment an operator opens first (pure).

One dashboard per deployment, in Grafana's JSON model (schemaVersion 39), on the Prometheus
datasource kube-prometheus-stack provisions (uid ``prometheus``):

=====================  ========================================================================
panel                  series (source)
=====================  ========================================================================
requests/s             ``frontend_requests_total`` by code (runtime/frontend.py)
TTFT p50/p90/p99       ``frontend_time_to_first_token_seconds`` histogram (runtime/frontend.py)
ITL p50/p90/p99        ``trtllm_time_per_output_token_seconds`` histogram of the generating
                       leaders (tensorrt_llm/metrics/collector.py @050f80def8df)
tokens/s               ``frontend_output_tokens_total``, ``frontend_prompt_tokens_total``
queue depth            ``router_outstanding_requests`` by pool (runtime/router.py) and
                       ``trtllm_num_requests_waiting`` per tier (collector.py)
KV-cache use           ``trtllm_kv_cache_utilization`` per tier (collector.py)
GPU utilisation        ``DCGM_FI_DEV_GPU_UTIL`` per tier (DCGM exporter; ``pod`` is the pod
                       holding the GPU: the GPU Operator's ServiceMonitor keeps its labels)
=====================  ========================================================================

Engine-runtime deployments (Triton) get the same layout from Triton's own series
(``nv_inference_request_success``, ``nv_inference_pending_request_count``,
``nv_trt_llm_kv_cache_block_metrics``); Triton exports no TTFT/ITL histograms, so those panels are
left out there. The committed expected files (tests/components/serving/data/dashboard-*.json) are this
function's output: a change to a panel is a reviewed diff.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Literal

from components.platform.monitoring import DATASOURCE_UID

SCHEMA_VERSION = 39
"""Grafana dashboard JSON model version (Grafana 11; the kube-prometheus-stack 88 Grafana loads it)."""
PERCENTILES = (0.5, 0.9, 0.99)
DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
GENERATING_ROLES = ("workers", "decode")
"""Groups that produce output tokens (ITL is theirs); prefill groups only produce the first."""


def _sel(namespace: str, pods: str) -> str:
    return f'namespace="{namespace}",pod=~"{pods}"'


def tier_pods(deployment: str, role: str) -> str:
    """Regex of every pod of one worker tier: ``<deployment>-<role>-<group>[-<index>]`` (the
    LeaderWorkerSet ``<deployment>-<role>``, kubernetes-sigs/lws pod naming)."""
    return f"{deployment}-{role}-[0-9]+(-[0-9]+)?"


def cpu_tier_pods(deployment: str, component: str) -> str:
    """Regex of a Deployment's pods ``<deployment>-<component>-<hash>-<suffix>``."""
    return f"{deployment}-{component}-[a-z0-9]+-[a-z0-9]+"


def _target(expr: str, legend: str, ref: str) -> dict:
    return {"datasource": dict(DATASOURCE), "expr": expr, "legendFormat": legend, "refId": ref}


def _panel(panel_id: int, title: str, unit: str, targets: list[dict], x: int, y: int, description: str = "") -> dict:
    panel: dict = {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "datasource": dict(DATASOURCE),
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
        "targets": targets,
    }
    if description:
        panel["description"] = description
    return panel


def _refs() -> Sequence[str]:
    return [chr(ord("A") + i) for i in range(26)]


def _quantiles(metric: str, selector: str, label: str) -> list[dict]:
    return [
        _target(
            f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{{{selector}}}[5m])))",
            f"{label} p{round(q * 100)}",
            ref,
        )
        for q, ref in zip(PERCENTILES, _refs(), strict=False)
    ]


def llmapi_panels(deployment: str, namespace: str, roles: Sequence[str]) -> list[dict]:
    """The panels of an LLM API deployment (frontend, router, trtllm-serve tiers)."""
    frontend = _sel(namespace, cpu_tier_pods(deployment, "frontend"))
    router = _sel(namespace, cpu_tier_pods(deployment, "router"))
    refs = _refs()
    generating = [r for r in roles if r in GENERATING_ROLES]
    itl: list[dict] = []
    for role in generating:
        itl += _quantiles("trtllm_time_per_output_token_seconds", _sel(namespace, tier_pods(deployment, role)), role)
    for i, target in enumerate(itl):
        target["refId"] = refs[i]
    per_tier = [(role, _sel(namespace, tier_pods(deployment, role)), refs[i]) for i, role in enumerate(roles)]
    return [
        _panel(1, "Requests/s", "reqps", [
            _target(f"sum by (code) (rate(frontend_requests_total{{{frontend}}}[1m]))", "{{code}}", "A"),
        ], 0, 0),
        _panel(2, "Time to first token", "s", _quantiles("frontend_time_to_first_token_seconds", frontend, "TTFT"),
               12, 0, "At the frontend: request received to first streamed bytes."),
        _panel(3, "Inter-token latency", "s", itl, 0, 8,
               "trtllm-serve time per output token on the generating groups."),
        _panel(4, "Tokens/s", "short", [
            _target(f"sum(rate(frontend_output_tokens_total{{{frontend}}}[1m]))", "output", "A"),
            _target(f"sum(rate(frontend_prompt_tokens_total{{{frontend}}}[1m]))", "prompt", "B"),
        ], 12, 8),
        _panel(5, "Queue depth", "short", [
            _target(f"sum by (pool) (router_outstanding_requests{{{router}}})", "router {{pool}}", "A"),
            *[
                _target(f"sum(trtllm_num_requests_waiting{{{sel}}})", f"{role} waiting", refs[i + 1])
                for i, (role, sel, _) in enumerate(per_tier)
            ],
        ], 0, 16, "Requests the router holds per pool, and requests waiting in each tier's executors."),
        _panel(6, "KV-cache use", "percentunit", [
            _target(f"avg(trtllm_kv_cache_utilization{{{sel}}})", f"{role} mean", ref) for role, sel, ref in per_tier
        ] + [
            _target(f"max(trtllm_kv_cache_utilization{{{sel}}})", f"{role} max", refs[len(per_tier) + i])
            for i, (role, sel, _) in enumerate(per_tier)
        ], 12, 16),
        _gpu_panel(7, per_tier, 0, 24),
    ]


def _gpu_panel(panel_id: int, per_tier: list[tuple[str, str, str]], x: int, y: int) -> dict:
    return _panel(panel_id, "GPU utilisation per tier", "percent", [
        _target(f"avg(DCGM_FI_DEV_GPU_UTIL{{{sel}}})", role, ref) for role, sel, ref in per_tier
    ], x, y, "DCGM exporter, averaged over the tier's GPUs.")


def engine_panels(deployment: str, namespace: str, roles: Sequence[str]) -> list[dict]:
    """The panels of an engine-runtime deployment (Triton frontend and orchestrators)."""
    frontend = _sel(namespace, cpu_tier_pods(deployment, "frontend"))
    refs = _refs()
    per_tier = [(role, _sel(namespace, tier_pods(deployment, role)), refs[i]) for i, role in enumerate(roles)]
    return [
        _panel(1, "Requests/s", "reqps", [
            _target(f"sum(rate(nv_inference_request_success{{{frontend}}}[1m]))", "success", "A"),
            _target(f"sum(rate(nv_inference_request_failure{{{frontend}}}[1m]))", "failure", "B"),
        ], 0, 0),
        _panel(2, "Queue depth", "short", [
            _target(f"sum(nv_inference_pending_request_count{{{sel}}})", f"{role} pending", ref)
            for role, sel, ref in per_tier
        ], 12, 0, "Triton: TTFT and inter-token latency are not exported by this runtime."),
        _panel(3, "KV-cache use", "percentunit", [
            _target(
                f'sum(nv_trt_llm_kv_cache_block_metrics{{kv_cache_block_type="used",{sel}}}) / '
                f'clamp_min(sum(nv_trt_llm_kv_cache_block_metrics{{kv_cache_block_type="max",{sel}}}), 1)',
                role, ref,
            )
            for role, sel, ref in per_tier
        ], 0, 8),
        _gpu_panel(4, per_tier, 12, 8),
    ]


def deployment_dashboard(
    deployment: str, namespace: str, runtime: Literal["llmapi", "engine"], roles: Sequence[str]
) -> dict:
    """The Grafana dashboard of one deployment (a stable uid, so Grafana updates it in place)."""
    panels = (llmapi_panels if runtime == "llmapi" else engine_panels)(deployment, namespace, list(roles))
    return {
        "uid": f"disagg-{namespace}-{deployment}"[:40],
        "title": f"{deployment} ({namespace})",
        "tags": ["disagg-inference", runtime],
        "timezone": "utc",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "panels": panels,
    }


def dashboard_json(dashboard: dict) -> str:
    """The ConfigMap payload: stable key order, so an unchanged dashboard is an unchanged input."""
    return json.dumps(dashboard, indent=1, sort_keys=True) + "\n"
