"""LlmApiFrontend and LlmApiRouter: command lines, Services, HPAs, pods, components."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
from pydantic import ValidationError

from components.serving.cpu_tier import cpu_hpa_manifest
from components.serving.llmapi.frontend import (
    ApiKeySpec,
    LlmApiFrontend,
    LlmApiFrontendArgs,
    frontend_command,
    frontend_deployment_manifest,
    frontend_pdb_manifest,
    frontend_service_manifest,
)
from components.serving.llmapi.router import (
    LlmApiRouter,
    LlmApiRouterArgs,
    router_command,
    router_deployment_manifest,
    router_url,
)
from components.serving.runtime_package import runtime_volume
from tests.components.serving.conftest import RUNTIME_FILES, SYSTEM, broken

RUNTIME = {"runtime_volume": runtime_volume("llama-runtime", RUNTIME_FILES), "runtime_hash": "abc"}


def frontend(**overrides) -> LlmApiFrontendArgs:
    fields: dict[str, Any] = {
        "instance": "llama", "namespace": "llm", "image": "nvcr.io/nvidia/tensorrt-llm/release:1.2.0", "pool": SYSTEM,
        "router_url": "http://llama-router.llm.svc.cluster.local:8000", "served_model_name": "llama-8b",
        "tokenizer": "/models/m", "max_seq_len": 8192, "default_max_tokens": 256, "claim_name": "models", **RUNTIME,
    }  # fmt: skip
    return LlmApiFrontendArgs(**{**fields, **overrides})


def router(**overrides) -> LlmApiRouterArgs:
    fields: dict[str, Any] = {
        "instance": "llama", "namespace": "llm", "image": "nvcr.io/nvidia/tensorrt-llm/release:1.2.0", "pool": SYSTEM,
        "workers_url": "dns://llama-workers-leaders.llm.svc.cluster.local:8000", **RUNTIME,
    }  # fmt: skip
    return LlmApiRouterArgs(**{**fields, **overrides})


def test_frontend_command_line_is_the_contracts():
    assert frontend_command(frontend(), "/models/m") == [
        "python3", "-m", "runtime.frontend", "--host", "0.0.0.0", "--port", "8000",
        "--router", "http://llama-router.llm.svc.cluster.local:8000", "--served-model-name", "llama-8b",
        "--tokenizer", "/models/m", "--max-seq-len", "8192", "--default-max-tokens", "256",
        "--shutdown-timeout", "60",
    ]  # fmt: skip
    keyed = frontend(api_key=ApiKeySpec(secret_name="llama-key"), drain_seconds=92)
    assert frontend_command(keyed, "/models/m")[-6:] == [
        "--shutdown-timeout", "92", "--api-key-file", "/var/run/secrets/disagg/frontend-api-key/key",
        "--api-key-header", "x-api-key",
    ]  # fmt: skip


def test_router_command_lines_for_both_modes():
    assert router_command(router()) == [
        "python3", "-m", "runtime.router", "--host", "0.0.0.0", "--port", "8000",
        "--workers", "dns://llama-workers-leaders.llm.svc.cluster.local:8000", "--refresh-seconds", "2",
        "--shutdown-timeout", "60", "--trtllm-version", "1.2",
    ]  # fmt: skip
    pd = router(workers_url=None, context_url="dns://c:8000", generation_url="dns://g:8000", trtllm_generation="1.3")
    assert router_command(pd)[7:] == [
        "--context", "dns://c:8000", "--generation", "dns://g:8000", "--refresh-seconds", "2", "--shutdown-timeout", "60",
        "--trtllm-version", "1.3",
    ]  # fmt: skip


def test_router_refuses_a_generation_outside_the_capability_table():
    with pytest.raises(ValidationError, match="generation '0.9' is not in the capability table; accepted: 1.0, 1.1, 1.2, 1.3"):
        router(trtllm_generation="0.9")
    assert router_url("llama-router", "llm") == "http://llama-router.llm.svc.cluster.local:8000"


def test_router_needs_one_mode():
    with pytest.raises(ValidationError, match="give workers_url"):
        router(workers_url=None, context_url="dns://c:8000")


def test_tier_pods_mount_the_runtime_package_and_probe_health(k8s_errors):
    deployment = frontend_deployment_manifest("llama-frontend", frontend(), "/models/m")
    assert k8s_errors(deployment) == []
    pod = deployment["spec"]["template"]
    (c,) = pod["spec"]["containers"]
    assert {"name": "runtime-package", "mountPath": "/opt/disagg/python/runtime", "readOnly": True} in c["volumeMounts"]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["PYTHONPATH"] == "/opt/disagg/python" and env["HF_HUB_OFFLINE"] == "1"
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    assert pod["metadata"]["annotations"]["disagg.dev/runtime-hash"] == "abc"
    assert c["resources"]["limits"] == {"cpu": "2", "memory": "4Gi"}
    assert k8s_errors(router_deployment_manifest("llama-router", router())) == []


def test_router_readiness_is_ready_so_it_is_ready_without_workers():
    """Readiness means able to route: with no healthy worker the router answers clients 503 itself
    (runtime/router.py; tests/runtime/test_kv_routing_chain.py runs it without workers), so neither its
    pod nor pulumi up waits for GPU workers; /ready turns 503 while it drains, and its /health (503
    until every pool has a healthy endpoint) stays for operators."""
    (c,) = router_deployment_manifest("llama-router", router())["spec"]["template"]["spec"]["containers"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/live"
    source = (Path(__file__).resolve().parents[4] / "runtime" / "router.py").read_text()
    assert 'add_get("/live", router.live)' in source and 'add_get("/ready", router.ready)' in source


def test_frontend_service_is_an_internal_nlb_by_default(k8s_errors):
    service = frontend_service_manifest("llama-frontend", frontend())
    assert service["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internal"
    assert "loadBalancerSourceRanges" not in service["spec"]
    assert service["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}]
    assert k8s_errors(service) == []


def test_public_frontend_is_an_explicit_opt_in_with_source_ranges_and_a_key():
    key = ApiKeySpec(secret_name="llama-key")
    with pytest.raises(ValidationError, match="an internet-facing load balancer needs loadBalancerSourceRanges"):
        frontend(public=True, api_key=key)
    with pytest.raises(ValidationError, match="an internet-facing frontend needs an API key"):
        frontend(public=True, load_balancer_source_ranges=("198.51.100.0/24",))
    args = frontend(public=True, load_balancer_source_ranges=("198.51.100.0/24",), api_key=key)
    pod = frontend_deployment_manifest("f", args, "/models/m")["spec"]["template"]["spec"]
    assert not [e for e in pod["containers"][0]["env"] if "valueFrom" in e]  # the key is a file, not env
    assert {"name": "frontend-api-key", "mountPath": "/var/run/secrets/disagg/frontend-api-key", "readOnly": True} in (
        pod["containers"][0]["volumeMounts"]
    )
    assert {
        "name": "frontend-api-key",
        "secret": {"secretName": "llama-key", "items": [{"key": "key", "path": "key"}], "defaultMode": 0o440},
    } in pod["volumes"]
    service = frontend_service_manifest("f", args)
    assert service["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internet-facing"
    assert service["spec"]["loadBalancerSourceRanges"] == ["198.51.100.0/24"]
    with pytest.raises(ValidationError, match="needs serviceType LoadBalancer"):
        frontend(public=True, service_type="ClusterIP", load_balancer_source_ranges=("198.51.100.0/24",), api_key=key)


def test_hpa_and_pdb_validate(k8s_errors):
    hpa = cpu_hpa_manifest("llama-router", "llm", {"a": "b"}, 2, 6, 65)
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 65}
    assert k8s_errors(hpa) == [] and k8s_errors(frontend_pdb_manifest("f", frontend())) == []


@pulumi.runtime.test
def test_components_create_deployment_service_hpa_pdb(mocks):
    provider = k8s.Provider("k8s", kubeconfig="{}")
    opts = pulumi.ResourceOptions(provider=provider)
    fe = LlmApiFrontend("llama-frontend", frontend(tokenizer=pulumi.Output.from_input("/models/x")), opts)
    rt = LlmApiRouter("llama-router", router(), opts)

    def check(_):
        for parent in ("llama-frontend", "llama-router"):
            children = sorted(r.name for r in mocks.recorded.values() if r.parent_name == parent)
            assert children == [f"{parent}-{kind}" for kind in ("deployment", "hpa", "pdb", "service")]
        recorded = {r.name: r for r in mocks.recorded.values()}
        command = recorded["llama-frontend-deployment"].inputs["spec"]["template"]["spec"]["containers"][0]["command"]
        assert command[command.index("--tokenizer") + 1] == "/models/x"
        assert recorded["llama-router-service"].inputs["spec"]["type"] == "ClusterIP"
        assert rt.url == "http://llama-router.llm.svc.cluster.local:8000"

    return pulumi.Output.all(fe.deployment.urn, fe.hpa.urn, fe.pdb.urn, rt.pdb.urn, rt.hpa.urn).apply(check)


def test_broken_tier_objects_are_reported(k8s_errors):
    """The twins of the "validates" assertions above: each object broken is reported."""
    deployment = frontend_deployment_manifest("llama-frontend", frontend(), "/models/m")
    (error,) = k8s_errors(broken(deployment, "spec/template/spec/containers/0/readinessProbe/httpGet/port", ["http"]))
    assert error.startswith("spec/template/spec/containers/0/readinessProbe/httpGet/port: ['http'] is not")
    router_pods = router_deployment_manifest("llama-router", router())
    (error,) = k8s_errors(broken(router_pods, "spec/replica", 2))
    assert error == "spec: Additional properties are not allowed ('replica' was unexpected)"
    service = frontend_service_manifest("llama-frontend", frontend())
    assert k8s_errors(broken(service, "spec/ports/0/port", "eighty")) == ["spec/ports/0/port: 'eighty' is not of type 'integer'"]
    hpa = cpu_hpa_manifest("llama-router", "llm", {"a": "b"}, 2, 6, 65)
    assert k8s_errors(broken(hpa, "spec/minReplicas", "two")) == ["spec/minReplicas: 'two' is not of type 'integer', 'null'"]
    (error,) = k8s_errors(broken(frontend_pdb_manifest("f", frontend()), "spec/minAvailable", ["1"]))
    assert error.startswith("spec/minAvailable: ['1'] is not")
