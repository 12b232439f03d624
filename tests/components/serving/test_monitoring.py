"""What Prometheus scrapes of each deployment, and the dashboards: PodMonitors against the pinned
CRD and against the pods the stacks really declare; dashboards against committed expected files."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import jsonschema
import pytest

from components.platform.keda import FRONTEND_IN_FLIGHT, KV_CACHE_UTILIZATION, WAITING_REQUESTS
from components.serving.dashboards import dashboard_json, deployment_dashboard
from components.serving.llmapi.monitors import pod_monitors as llmapi_pod_monitors
from components.serving.monitoring import dashboard_config_map
from components.serving.triton.monitors import pod_monitors as triton_pod_monitors
from disaggctl.synth.program import run_program

PROJECT_DIR = Path(__file__).resolve().parents[3]
DATA = Path(__file__).parent / "data"
PODMONITOR = json.loads(
    (PROJECT_DIR / "tests/components/platform/data/podmonitor-kube-prometheus-stack-88.5.3.schema.json").read_text()
)
LWS = "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def deployment_pod_monitors(deployment: str, namespace: str, runtime: str) -> list[dict]:
    return (llmapi_pod_monitors if runtime == "llmapi" else triton_pod_monitors)(deployment, namespace)


@cache
def synthesized(stack: str):
    return run_program(PROJECT_DIR, stack)


def pod_templates(stack: str, namespace: str) -> dict[str, dict]:
    """Every pod template the stack declares in ``namespace``, by ``<object>/<kind of pod>``."""
    out: dict[str, dict] = {}
    for r in synthesized(stack).resources:
        meta = r.inputs.get("metadata") or {}
        if meta.get("namespace") != namespace:
            continue
        if r.type == DEPLOYMENT:
            out[f"{meta['name']}/pod"] = r.inputs["spec"]["template"]
        elif r.type == LWS:
            lws = r.inputs["spec"]["leaderWorkerTemplate"]
            out[f"{meta['name']}/leader"] = lws.get("leaderTemplate") or lws["workerTemplate"]
            if "leaderTemplate" in lws and lws["size"] > 1:  # size 1: no worker pods exist
                out[f"{meta['name']}/worker"] = lws["workerTemplate"]
    return out


def selects(selector: dict, labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def port_names(template: dict) -> set[str]:
    return {p["name"] for c in template["spec"]["containers"] for p in c.get("ports", [])}


@pytest.mark.parametrize(("deployment", "runtime"), [("llama-8b", "llmapi"), ("llama-8b-engine", "engine")])
def test_pod_monitors_match_the_pinned_crd(deployment, runtime) -> None:
    schema = PODMONITOR["openAPIV3Schema"]
    for manifest in deployment_pod_monitors(deployment, "llm-prod", runtime):
        assert [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(manifest)] == []
        assert manifest["spec"]["namespaceSelector"] == {"matchNames": ["llm-prod"]}


@pytest.mark.parametrize(
    ("stack", "namespace", "deployment", "runtime", "scraped"),
    [
        ("dev", "llm-dev", "llama-8b", "llmapi", {
            "llama-8b-cpu-tiers": {"llama-8b-frontend/pod", "llama-8b-router/pod"},
            "llama-8b-trtllm-serve": {"llama-8b-workers/leader"},
        }),
        ("prod", "llm-prod", "llama-70b", "llmapi", {
            "llama-70b-cpu-tiers": {"llama-70b-frontend/pod", "llama-70b-router/pod"},
            "llama-70b-trtllm-serve": {"llama-70b-prefill/leader", "llama-70b-decode/leader"},
        }),
        ("prod", "llm-prod", "llama-8b-engine", "engine", {
            "llama-8b-engine-triton": {"llama-8b-engine-frontend/pod", "llama-8b-engine-workers/leader"},
        }),
    ],
)  # fmt: skip
def test_every_tier_of_a_real_stack_is_scraped_on_a_port_it_exposes(stack, namespace, deployment, runtime, scraped):
    templates = pod_templates(stack, namespace)
    found = {}
    for monitor in deployment_pod_monitors(deployment, namespace, runtime):
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        selected = {
            name for name, t in templates.items()
            if selects(monitor["spec"]["selector"], t["metadata"]["labels"]) and endpoint["port"] in port_names(t)
        }  # fmt: skip
        found[monitor["metadata"]["name"]] = selected
    assert found == scraped


def test_the_stacks_declare_the_monitors_and_dashboards() -> None:
    for stack, count in (("dev", 2), ("prod", 5)):
        resources = synthesized(stack).resources
        monitors = [r for r in resources if r.type == "kubernetes:monitoring.coreos.com/v1:PodMonitor"]
        assert len(monitors) == count
        dashboards = [
            r for r in resources
            if r.type == "kubernetes:core/v1:ConfigMap" and r.inputs["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
        ]  # fmt: skip
        assert len(dashboards) == {"dev": 1, "prod": 3}[stack]


@pytest.mark.parametrize(
    ("deployment", "namespace", "runtime", "roles"),
    [("llama-8b", "llm-dev", "llmapi", ["workers"]), ("llama-70b", "llm-prod", "llmapi", ["prefill", "decode"]),
     ("llama-8b-engine", "llm-prod", "engine", ["workers"])],
)  # fmt: skip
def test_dashboards_are_the_committed_expected_files(deployment, namespace, runtime, roles) -> None:
    """Regenerate after a deliberate change: python -m tests.components.serving.data.regenerate_dashboards."""
    expected = (DATA / f"dashboard-{deployment}.json").read_text()
    assert dashboard_json(deployment_dashboard(deployment, namespace, runtime, roles)) == expected


def test_the_stack_ships_the_same_dashboard_the_function_builds() -> None:
    (config_map,) = [
        r for r in synthesized("dev").resources
        if r.type == "kubernetes:core/v1:ConfigMap" and r.name == "llama-8b-dashboard"
    ]  # fmt: skip
    expected = dashboard_config_map("llama-8b", "llm-dev", deployment_dashboard("llama-8b", "llm-dev", "llmapi", ["workers"]))
    assert config_map.inputs["data"] == expected["data"]
    assert config_map.inputs["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_the_llmapi_dashboard_has_every_panel_an_operator_needs() -> None:
    dashboard = deployment_dashboard("llama-70b", "llm-prod", "llmapi", ["prefill", "decode"])
    panels = {p["title"]: [t["expr"] for t in p["targets"]] for p in dashboard["panels"]}
    assert set(panels) == {
        "Requests/s", "Time to first token", "Inter-token latency", "Tokens/s", "Queue depth", "KV-cache use",
        "GPU utilisation per tier",
    }  # fmt: skip
    assert all("frontend_time_to_first_token_seconds_bucket" in e for e in panels["Time to first token"])
    # ITL comes from the generating tier only: prefill groups emit one token per request
    assert len(panels["Inter-token latency"]) == 3
    assert all("llama-70b-decode-" in e for e in panels["Inter-token latency"])
    assert any("router_outstanding_requests" in e for e in panels["Queue depth"])
    assert any(WAITING_REQUESTS in e for e in panels["Queue depth"])
    assert any(KV_CACHE_UTILIZATION in e for e in panels["KV-cache use"])
    assert [e.split("{")[0] for e in panels["GPU utilisation per tier"]] == ["avg(DCGM_FI_DEV_GPU_UTIL"] * 2
    assert FRONTEND_IN_FLIGHT not in json.dumps(panels)  # the scaler gauge is not a panel of its own
    for panel in dashboard["panels"]:
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


def test_dashboard_series_select_on_namespace_and_pod() -> None:
    dashboard = deployment_dashboard("llama-8b", "llm-dev", "llmapi", ["workers"])
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            assert 'namespace="llm-dev",pod=~"llama-8b-' in target["expr"], target["expr"]


def test_the_tiers_admit_scrapes_from_the_namespace_prometheus_runs_in() -> None:
    from components.config import load_stack_config
    from components.serving.llmapi.args import stack_inputs
    from disaggctl.synth.program import read_stack_config

    _, raw, _ = read_stack_config(PROJECT_DIR, "dev")
    raw["disagg:platform"] = json.dumps({"monitoring": {"namespace": "observability"}})
    config = load_stack_config(raw)
    assert stack_inputs(config, config.deployments[0])["monitoring_namespaces"] == ("observability",)
    # and as committed, the serving NetworkPolicies name the chart's namespace
    (policy,) = [
        r for r in synthesized("dev").resources
        if r.type == "kubernetes:networking.k8s.io/v1:NetworkPolicy" and r.name == "llama-8b-network-policies-router"
    ]  # fmt: skip
    assert "monitoring" in json.dumps(policy.inputs["spec"]["ingress"])
