"""Serving tiers wired to the capacity and hardening work: KEDA ScaledObjects instead of HPAs,
scale-in that never cuts a stream (preStop + grace from the drain), host-memory-sized groups,
NLB annotations, and Triton's restricted APIs with keys from Secrets."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from components.config.capacity import (
    deployment_drain_seconds,
    host_memory_request_gib,
    stream_drain_seconds,
)
from components.config.security import SecurityConfig
from components.serving.drain import cpu_tier_grace_seconds, worker_grace_seconds, worker_prestop_seconds
from components.serving.llmapi.args import stack_inputs
from components.serving.llmapi.frontend import (
    ApiKeySpec,
    LlmApiFrontendArgs,
    frontend_deployment_manifest,
    frontend_hpa_manifest,
    frontend_scaled_object_manifest,
)
from components.serving.llmapi.router import (
    LlmApiRouterArgs,
    router_deployment_manifest,
    router_scaled_object_manifest,
)
from components.serving.llmapi.workers import (
    leader_worker_set_manifest,
    workers_hpa_manifest,
    workers_scaled_object_manifest,
)
from components.serving.runtime_package import runtime_volume
from components.serving.scaled_objects import drain_command
from components.serving.triton.deployment import group_resources, triton_security
from components.serving.triton.frontend import frontend_deployment_manifest as triton_frontend_manifest
from components.serving.triton.frontend import frontend_scaled_object_manifest as triton_frontend_scaled
from components.serving.triton.orchestrator import leader_pod_template
from components.serving.triton.workers import workers_scaled_object_manifest as triton_workers_scaled
from disaggctl.synth.program import read_stack_config
from engines.catalog import MODELS
from tests.components.platform.conftest import strict
from tests.components.serving.conftest import H100, RUNTIME_FILES, SYSTEM, broken

PROM = "http://prometheus-operated.monitoring.svc:9090"
ROOT = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((ROOT / "tests/components/platform/data/scaledobject-keda-2.20.2.schema.json").read_text())
RUNTIME = {"runtime_volume": runtime_volume("llama-runtime", RUNTIME_FILES), "runtime_hash": "abc"}


def keda_errors(obj: dict) -> list[str]:
    """Errors of a ScaledObject against the KEDA v2.20.2 CRD schema (unknown fields included)."""
    validator = jsonschema.Draft7Validator(strict(SCHEMA["openAPIV3Schema"]))
    return [e.message for e in validator.iter_errors(obj)]


def frontend(**overrides) -> LlmApiFrontendArgs:
    return LlmApiFrontendArgs(**{
        "instance": "llama", "namespace": "llm", "image": "nvcr.io/nvidia/tensorrt-llm/release:1.2.0", "pool": SYSTEM,
        "router_url": "http://llama-router.llm.svc.cluster.local:8000", "served_model_name": "llama-8b",
        "tokenizer": "/models/m", "max_seq_len": 8192, "claim_name": "models", **RUNTIME, **overrides,
    })  # fmt: skip


def router(**overrides) -> LlmApiRouterArgs:
    return LlmApiRouterArgs(**{
        "instance": "llama", "namespace": "llm", "image": "nvcr.io/nvidia/tensorrt-llm/release:1.2.0", "pool": SYSTEM,
        "workers_url": "dns://llama-workers-leaders.llm.svc.cluster.local:8000", **RUNTIME, **overrides,
    })  # fmt: skip


def stack(name: str):
    from components.config import load_stack_config

    _, raw, _ = read_stack_config(ROOT, name)
    return load_stack_config(raw)


# --- KEDA instead of HPA ---------------------------------------------------------------------


def test_keda_replaces_the_worker_hpa_and_matches_the_crd(llmapi_workers_args) -> None:
    args = llmapi_workers_args(autoscaling=True, min_groups=1, max_groups=3, keda_prometheus_url=PROM, drain_seconds=92)
    scaled = workers_scaled_object_manifest("llama-workers", args)
    assert workers_hpa_manifest("llama-workers", args) is None
    assert keda_errors(scaled) == []
    assert scaled["spec"]["scaleTargetRef"]["kind"] == "LeaderWorkerSet"
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (1, 3)
    down = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert down["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 92}]


def test_without_keda_the_hpa_path_stays(llmapi_workers_args) -> None:
    args = llmapi_workers_args(autoscaling=True, trtllm_generation="1.3", min_groups=1, max_groups=3)
    assert workers_scaled_object_manifest("llama-workers", args) is None
    assert workers_hpa_manifest("llama-workers", args)["kind"] == "HorizontalPodAutoscaler"
    assert frontend_scaled_object_manifest("f", frontend()) is None
    assert frontend_hpa_manifest("f", frontend())["kind"] == "HorizontalPodAutoscaler"
    assert router_scaled_object_manifest("r", router()) is None


def test_cpu_tiers_scale_on_their_own_in_flight_gauges() -> None:
    fe = frontend_scaled_object_manifest("llama-frontend", frontend(keda_prometheus_url=PROM, max_replicas=6))
    rt = router_scaled_object_manifest("llama-router", router(keda_prometheus_url=PROM))
    assert keda_errors(fe) == [] and keda_errors(rt) == []
    assert fe["spec"]["triggers"][0]["metadata"]["query"] == (
        'sum(frontend_requests_in_flight{namespace="llm",pod=~"llama-frontend-[a-z0-9]+-[a-z0-9]+"})'
    )
    assert fe["spec"]["triggers"][1] == {"type": "cpu", "name": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}}
    assert rt["spec"]["triggers"][0]["metadata"]["query"].startswith("sum(router_endpoint_inflight{")
    assert fe["spec"]["maxReplicaCount"] == 6


def test_engine_runtime_scaled_objects_read_triton_series(workers_args, frontend_args) -> None:
    group = {"groups": 2, "minGroups": 1, "maxGroups": 4, "autoscaling": {"enabled": True, "targetKvCacheUtilization": 0.75}}
    scaled = triton_workers_scaled("llama-workers", workers_args(group=group, keda_prometheus_url=PROM, drain_seconds=92))
    assert keda_errors(scaled) == []
    queries = [t["metadata"]["query"] for t in scaled["spec"]["triggers"]]
    assert queries[0] == 'sum(nv_trt_llm_request_metrics{request_type="waiting",namespace="llm",pod=~"llama-workers-[0-9]+"})'
    assert queries[1].startswith('sum(nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="used",')
    fe = triton_frontend_scaled("llama-frontend", frontend_args(keda_prometheus_url=PROM))
    assert keda_errors(fe) == []
    assert fe["spec"]["triggers"][0]["metadata"]["query"].startswith("sum(nv_inference_pending_request_count{")


# --- scale-in never cuts a stream -------------------------------------------------------------


def test_cpu_tiers_drain_their_longest_stream() -> None:
    drain = stream_drain_seconds(1024, 0.05)  # 92 s
    pod = frontend_deployment_manifest("f", frontend(drain_seconds=drain), "/models/m")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 10}}}
    assert container["command"][container["command"].index("--shutdown-timeout") + 1] == "92"
    assert pod["terminationGracePeriodSeconds"] == 10 + 92 + 15
    router_pod = router_deployment_manifest("r", router(drain_seconds=drain))["spec"]["template"]["spec"]
    assert router_pod["terminationGracePeriodSeconds"] == 117


def test_worker_pods_stay_until_the_router_dropped_them_and_their_streams_ended(llmapi_workers_args, lws_errors) -> None:
    # 1.3 proves trtllm_num_requests_{running,waiting} (runtime/capabilities.py): the pods poll them
    args = llmapi_workers_args(pods=2, gpus=8, pool=H100, drain_seconds=92, trtllm_generation="1.3")
    lws = leader_worker_set_manifest("llama-workers", args, "/models/m")
    assert lws_errors(lws) == []
    urls = {
        "leaderTemplate": "http://127.0.0.1:8000/prometheus/metrics",
        "workerTemplate": "http://{LWS_LEADER_ADDRESS}:8000/prometheus/metrics",  # the leader's gauges
    }
    for template, url in urls.items():
        spec = lws["spec"]["leaderWorkerTemplate"][template]["spec"]
        assert spec["containers"][0]["lifecycle"] == {
            "preStop": {"exec": {"command": drain_command(url, 10, 92)}}
        }
        assert spec["terminationGracePeriodSeconds"] == 10 + 92 + 15


def test_without_request_gauges_the_drain_asks_prometheus_for_the_routers_view(llmapi_workers_args, lws_errors) -> None:
    args = llmapi_workers_args(pods=2, gpus=8, pool=H100, drain_seconds=92, keda_prometheus_url=PROM)
    lws = leader_worker_set_manifest("llama-workers", args, "/models/m")
    assert lws_errors(lws) == []
    query = (
        'sum(router_endpoint_inflight{namespace="llm",pod=~"llama-router-[a-z0-9]+-[a-z0-9]+",pool="workers",'
        'endpoint=~"(https?://)?@IP@:8000/?"})'
    )
    hosts = {"leaderTemplate": "{POD_IP}", "workerTemplate": "{LWS_LEADER_ADDRESS}"}
    for template, host in hosts.items():
        container = lws["spec"]["leaderWorkerTemplate"][template]["spec"]["containers"][0]
        command = container["lifecycle"]["preStop"]["exec"]["command"]
        assert command[3:] == [PROM, query, "10", "92", host]
        assert "trtllm_" not in " ".join(command)
    leader_env = lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]["env"]
    assert {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} in leader_env


def test_without_request_gauges_nor_prometheus_the_pods_sleep_the_worst_case(llmapi_workers_args) -> None:
    args = llmapi_workers_args(drain_seconds=92)
    lws = leader_worker_set_manifest("llama-workers", args, "/models/m")
    container = lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 10 + 92}}}


def test_triton_tiers_drain_through_exit_timeout(frontend_args, orchestrator_args) -> None:
    fe = triton_frontend_manifest("f", frontend_args(drain_seconds=92), [])["spec"]["template"]["spec"]
    assert "--exit-timeout-secs=92" in fe["containers"][0]["command"]
    assert fe["terminationGracePeriodSeconds"] == 117
    leader = leader_pod_template(orchestrator_args(drain_seconds=92), [], "/models/engines/m/h")["spec"]
    assert "--exit-timeout-secs=92" in leader["containers"][0]["command"][2]
    assert leader["containers"][0]["lifecycle"] == {"preStop": {"sleep": {"seconds": 10}}}


def test_prod_drains_follow_the_longest_output() -> None:
    prod = stack("prod")
    drains = {d.name: deployment_drain_seconds(prod, d) for d in prod.deployments}
    # llmapi: the shortest maxSeqLen of the deployment − 1 tokens at 50 ms + 10 s TTFT + 30 s
    # (llama-70b's prefill side caps it at 16384, llama-70b-pd's at 32768); engine: maxSeqLen 8192 − 1
    assert drains == {"llama-70b": 860, "llama-70b-pd": 1679, "llama-8b-engine": 450}


# --- memory, exposure, keys -------------------------------------------------------------------


def test_prod_llmapi_groups_ask_for_their_ranks_memory_with_shm() -> None:
    prod = stack("prod")
    inputs = {d.name: stack_inputs(prod, d) for d in prod.deployments if d.runtime == "llmapi"}
    # ranks × (weight shard + runtime) + the RAM-backed /dev/shm: bf16 70B over tp 2 and tp 8,
    # FP8 70B over tp 1 and tp 2
    assert inputs["llama-70b"]["group_memory_gib"] == {"prefill": 229, "decode": 268}
    assert inputs["llama-70b-pd"]["group_memory_gib"] == {"prefill": 150, "decode": 156}
    assert inputs["llama-70b"]["keda_prometheus_url"] == PROM
    assert inputs["llama-70b"]["api_key"] is None and inputs["llama-70b"]["load_balancer_source_ranges"] == ()


def test_llmapi_group_limit_is_the_request_when_it_counts_shm(llmapi_workers_args) -> None:
    args = llmapi_workers_args(memory="114Gi", memory_includes_shm=True, shm_size="64Gi")
    resources = leader_worker_set_manifest("w", args, "/m")["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"][
        "containers"][0]["resources"]
    assert resources["requests"]["memory"] == resources["limits"]["memory"] == "114Gi"


def test_engine_group_memory_comes_from_the_engine() -> None:
    prod = stack("prod")
    engine_deployment = prod.deployments[2]
    group = engine_deployment.workers
    engine = prod.engines[group.engine]
    resources = group_resources(engine_deployment.orchestrator.resources, engine, group, 2)
    total = host_memory_request_gib(MODELS[engine.model].param_count, 1.0, 2, 2, 64)
    assert (total, resources.memory) == (92, "28Gi")  # the limit adds the 64Gi /dev/shm back


def test_public_llmapi_frontend_takes_its_ranges_and_key_from_public_frontends() -> None:
    dev = stack("dev")
    deployment = dev.deployments[0].model_copy(
        update={"frontend": dev.deployments[0].frontend.model_copy(update={"internal_load_balancer": False})}
    )
    security = SecurityConfig.model_validate({"publicFrontends": {"llama-8b": {
        "sourceRanges": ["100.20.0.0/24"], "auth": {"header": "x-api-key", "key": {"secretName": "llama-key"}}}}})
    config = dev.model_copy(update={"platform": dev.platform.model_copy(update={"security": security})})
    inputs = stack_inputs(config, deployment)
    assert inputs["load_balancer_source_ranges"] == ("100.20.0.0/24",)
    assert inputs["api_key"] == ApiKeySpec(header="x-api-key", secret_name="llama-key", secret_key="key")


def test_triton_restricts_admin_apis_everywhere_and_inference_on_a_public_frontend() -> None:
    prod = stack("prod")
    deployment = prod.deployments[2]
    args, env, ranges = triton_security(SecurityConfig(), deployment, frontend=False)
    apis = "model-repository,shared-memory,trace,logging,statistics"
    assert args == (
        f"--http-restricted-api={apis}:x-triton-admin-key=$(TRITON_ADMIN_KEY)",
        f"--grpc-restricted-protocol={apis}:x-triton-admin-key=$(TRITON_ADMIN_KEY)",
    )
    assert env == {"TRITON_ADMIN_KEY": ("triton-admin-key", "key")} and ranges == ()
    public = deployment.model_copy(
        update={"frontend": deployment.frontend.model_copy(update={"internal_load_balancer": False})}
    )
    security = SecurityConfig.model_validate({"publicFrontends": {"llama-8b-engine": {
        "sourceRanges": ["100.30.0.0/24"], "auth": {"key": {"secretName": "engine-key"}}}}})
    args, env, ranges = triton_security(security, public, frontend=True)
    assert args[2:] == (
        "--http-restricted-api=inference,metadata:x-api-key=$(FRONTEND_API_KEY)",
        "--grpc-restricted-protocol=inference,metadata:x-api-key=$(FRONTEND_API_KEY)",
    )
    assert env["FRONTEND_API_KEY"] == ("engine-key", "key") and ranges == ("100.30.0.0/24",)


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_no_secret_reaches_a_pod_as_an_environment_variable(name, tmp_path) -> None:
    """Keys are files from Secrets (checkov CKV_K8S_35): no env entry of either stack's synth
    reads a Secret, and prod's Triton pods mount the admin key."""
    from disaggctl.synth.program import run_program, write_synth

    write_synth(run_program(ROOT, name), tmp_path)
    text = "\n".join(p.read_text() for p in sorted((tmp_path / "manifests").rglob("*.yaml")))
    assert "secretKeyRef" not in text
    if name == "prod":
        assert "mountPath: /var/run/secrets/disagg/triton-admin-key" in text
        assert 'IFS= read -r TRITON_ADMIN_KEY < /var/run/secrets/disagg/triton-admin-key/key' in text


def test_the_key_reaches_tritonserver_through_the_shell_only(tmp_path) -> None:
    """The rendered bash reads the key file and passes it in tritonserver's argument; the key is
    neither exported nor in the script (run with a stand-in tritonserver)."""
    import subprocess

    from components.serving.triton.frontend import with_keys

    key_file = tmp_path / "key"
    key_file.write_text("s3cret-admin-key\n")
    fake = tmp_path / "tritonserver"
    fake.write_text('#!/bin/bash\nprintf "%s\\n" "$@"; env | grep -c s3cret || true\n')
    fake.chmod(0o755)
    command = with_keys(
        ["tritonserver", "--http-restricted-api=logging:x-triton-admin-key=$(TRITON_ADMIN_KEY)"],
        {"TRITON_ADMIN_KEY": ("triton-admin-key", "key")},
    )
    script = command[2].replace("/var/run/secrets/disagg/triton-admin-key/key", str(key_file))
    assert "s3cret" not in command[2]
    out = subprocess.run(["/bin/bash", "-c", script], capture_output=True, text=True, check=True,
                         env={"PATH": f"{tmp_path}:/usr/bin:/bin"}).stdout.splitlines()
    assert out == ["--http-restricted-api=logging:x-triton-admin-key=s3cret-admin-key", "0"]


def test_drain_and_grace_periods_of_the_pods() -> None:
    """10 s for endpoint removal before the drain, 15 s for the process to exit after it."""
    assert (worker_prestop_seconds(92), worker_grace_seconds(92), cpu_tier_grace_seconds(92)) == (102, 117, 117)
    assert (worker_prestop_seconds(0), worker_grace_seconds(0), cpu_tier_grace_seconds(0)) == (10, 25, 25)


def test_the_schema_checks_report_broken_objects(llmapi_workers_args, lws_errors, pod_template_errors) -> None:
    """The twins of the "matches the CRD" assertions of the serving tests: the KEDA, LWS and pod
    template checks each name a wrong type and a misspelt key in an object they accept whole."""
    args = llmapi_workers_args(autoscaling=True, min_groups=1, max_groups=3, keda_prometheus_url=PROM, drain_seconds=92)
    scaled = workers_scaled_object_manifest("llama-workers", args)
    assert keda_errors(broken(scaled, "spec/maxReplicaCount", "three")) == ["'three' is not of type 'integer'"]
    assert keda_errors(broken(scaled, "spec/cooldownPeriods", 300)) == [
        "Additional properties are not allowed ('cooldownPeriods' was unexpected)"
    ]
    lws = leader_worker_set_manifest("llama-workers", llmapi_workers_args(pods=2, gpus=8, pool=H100), "/models/m")
    assert lws_errors(lws) == []
    assert lws_errors(broken(lws, "spec/replicas", "two")) == ["spec/replicas: 'two' is not of type 'integer'"]
    template = lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]
    assert pod_template_errors(template) == []
    (error,) = pod_template_errors(broken(template, "spec/containers/0/ports/0/containerPort", "http"))
    assert error == "spec/containers/0/ports/0/containerPort: 'http' is not of type 'integer'"
