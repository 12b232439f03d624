"""LlmApiDeployment: tiers composed per mode, names, router wiring, independent scaling, checks."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
from pydantic import ValidationError

from components.serving.llmapi.deployment import LlmApiDeployment, LlmApiDeploymentArgs, WorkerGroupSpec
from tests.components.serving.conftest import (
    A100,
    AGGREGATED_YAML,
    CONTEXT_YAML,
    GENERATION_YAML,
    H100,
    RUNTIME_FILES,
    SYSTEM,
)


def group(yaml_text: str, pool=H100, gpus=8, **kw) -> WorkerGroupSpec:
    return WorkerGroupSpec(pool=pool, gpus_per_pod=gpus, llm_api_yaml=yaml_text.replace("tensor_parallel_size: 4", f"tensor_parallel_size: {gpus}"), **kw)


def args(mode="tensor-parallel", **overrides) -> LlmApiDeploymentArgs:
    workers = (
        {"workers": group(AGGREGATED_YAML, pool=A100, gpus=4, groups=2)}
        if mode == "tensor-parallel"
        else {
            "prefill": group(CONTEXT_YAML, groups=1, autoscaling=True, max_groups=2),
            "decode": group(GENERATION_YAML, groups=2, min_groups=1, max_groups=4, autoscaling=True),
        }
    )
    fields: dict[str, Any] = {
        "namespace": "llm", "mode": mode, "worker_image": "nvcr.io/nvidia/tensorrt-llm/release:1.2.0",
        "model_dir": pulumi.Output.from_input("/models/models/llama/abc"), "served_model_name": "llama",
        "max_seq_len": 8192, "workers": workers, "system_pool": SYSTEM, "claim_name": "models",
        "runtime_files": RUNTIME_FILES, "custom_metrics": True,
    }  # fmt: skip
    return LlmApiDeploymentArgs(**{**fields, **overrides})


def create(name: str, a: LlmApiDeploymentArgs) -> LlmApiDeployment:
    return LlmApiDeployment(name, a, pulumi.ResourceOptions(provider=k8s.Provider("k8s", kubeconfig="{}")))


def settle(deployment: LlmApiDeployment, check):
    urns = [deployment.router.hpa.urn, deployment.frontend.pdb.urn]
    urns += [w.pdb.urn for w in deployment.workers.values()]
    urns += [w.hpa.urn for w in deployment.workers.values() if w.hpa is not None]
    urns += [p.urn for p in deployment.network_policies.policies] if deployment.network_policies else []
    return pulumi.Output.all(*urns).apply(check)


@pulumi.runtime.test
def test_aggregated_tree(mocks):
    deployment = create("llama", args())

    def check(_):
        recorded = {r.name: r for r in mocks.recorded.values()}
        assert recorded["llama"].type == "disagg:serving:LlmApiDeployment"
        children = sorted((r.name, r.type) for r in recorded.values() if r.parent_name == "llama")
        assert children == [
            ("llama-frontend", "disagg:serving:LlmApiFrontend"),
            ("llama-network-policies", "disagg:serving:NetworkPolicies"),
            ("llama-router", "disagg:serving:LlmApiRouter"),
            ("llama-runtime", "disagg:serving:RuntimePackage"),
            ("llama-workers", "disagg:serving:LlmApiWorkers"),
        ]
        command = recorded["llama-router-deployment"].inputs["spec"]["template"]["spec"]["containers"][0]["command"]
        assert command[command.index("--workers") + 1] == "dns://llama-workers-leaders.llm.svc.cluster.local:8000"
        fe = recorded["llama-frontend-deployment"].inputs["spec"]["template"]["spec"]["containers"][0]["command"]
        assert fe[fe.index("--router") + 1] == "http://llama-router.llm.svc.cluster.local:8000"
        assert fe[fe.index("--tokenizer") + 1] == "/models/models/llama/abc"
        volume = recorded["llama-router-deployment"].inputs["spec"]["template"]["spec"]["volumes"][0]
        assert volume["configMap"]["name"] == "llama-runtime"
        for r in recorded.values():
            if r.type.startswith("kubernetes:") and r.name != "k8s":
                assert "pulumi:providers:kubernetes::k8s::" in r.provider, r.name

    return settle(deployment, check)


@pulumi.runtime.test
def test_prefill_decode_roles_scale_on_their_own(mocks):
    # the HPA path reads the leaders' gauges: proven on 1.3 only (runtime/capabilities.py)
    deployment = create("llama-pd", args("prefill-decode", trtllm_generation="1.3"))

    def check(_):
        recorded = {r.name: r for r in mocks.recorded.values()}
        command = recorded["llama-pd-router-deployment"].inputs["spec"]["template"]["spec"]["containers"][0]["command"]
        assert command[command.index("--context") + 1] == "dns://llama-pd-prefill-leaders.llm.svc.cluster.local:8000"
        assert command[command.index("--generation") + 1] == "dns://llama-pd-decode-leaders.llm.svc.cluster.local:8000"
        for role, (lo, hi, replicas) in {"prefill": (1, 2, 1), "decode": (1, 4, 2)}.items():
            hpa = recorded[f"llama-pd-{role}-hpa"].inputs["spec"]
            assert hpa["scaleTargetRef"]["name"] == f"llama-pd-{role}"
            assert (hpa["minReplicas"], hpa["maxReplicas"]) == (lo, hi)
            assert recorded[f"llama-pd-{role}-leaderworkerset"].inputs["spec"]["replicas"] == replicas
            data = recorded[f"llama-pd-{role}-llm-api"].inputs["data"]["llm_api.yaml"]
            assert "backend: NIXL" in data
        assert "disable_overlap_scheduler: true" in recorded["llama-pd-prefill-llm-api"].inputs["data"]["llm_api.yaml"]
        assert "disable_overlap_scheduler" not in recorded["llama-pd-decode-llm-api"].inputs["data"]["llm_api.yaml"]
        prefill_objects = {n for n in recorded if n.startswith("llama-pd-prefill")}
        assert not any("decode" in n for n in prefill_objects)

    return settle(deployment, check)


def test_hpa_autoscaling_is_refused_where_the_release_exports_no_gauges():
    with pytest.raises(ValueError, match=r"without KEDA .* TensorRT-LLM 1\.2 does not export .*row 1\.2\.request_gauges"):
        create("llama-pd", args("prefill-decode", trtllm_generation="1.2"))


def test_roles_must_match_the_mode():
    with pytest.raises(ValidationError, match=r"mode prefill-decode needs worker groups \['decode', 'prefill'\], got \['workers'\]"):
        args("prefill-decode", workers={"workers": group(AGGREGATED_YAML, pool=A100, gpus=4)})


def test_autoscaling_needs_keda_or_custom_metrics():
    with pytest.raises(ValidationError, match="decode.autoscaling is enabled but neither KEDA"):
        args("prefill-decode", custom_metrics=False)
    assert args("prefill-decode", custom_metrics=False, keda_prometheus_url="http://prometheus:9090").mode == "prefill-decode"


def test_errors_come_before_any_resource(mocks):
    bad = args(workers={"workers": group("tensor_parallel_size: 2\n", pool=A100, gpus=4)})
    with pytest.raises(ValueError, match="deployment 'llama'.*tensorParallelSize × pipelineParallelSize = 2 × 1 = 2"):
        create("llama", bad)
    assert not any(r.type.startswith("disagg:serving") for r in mocks.recorded.values())


def test_long_names_are_refused(mocks):
    with pytest.raises(ValueError, match="over 63 characters: use at most"):
        create("x" * 45, args())


def test_public_frontend_error_before_resources(mocks):
    with pytest.raises(ValueError, match="an internet-facing load balancer needs loadBalancerSourceRanges"):
        create("llama", args(public=True))
    assert not mocks.recorded or not any(r.type.startswith("disagg:serving") for r in mocks.recorded.values())


def test_a_library_caller_gets_the_drain_and_timeouts_of_its_longest_stream() -> None:
    """128K tokens: 131,071 × 50 ms + 10 s + 30 s = 6,594 s, beyond the router's one-hour default."""
    short = args()
    assert short.drain_seconds == 450  # 8191 × 50 ms + 40 s
    assert short.tiers["router"].request_timeout == 3600.0  # the process default is already longer
    long = args(max_seq_len=131072)
    assert long.drain_seconds == 6594
    assert long.tiers["router"].request_timeout == 6594.0
    assert long.tiers["frontend"].request_timeout == 6599.0  # 5 s of slack over the router's
    pd = args(mode="prefill-decode", max_seq_len=131072)
    assert pd.tiers["frontend"].request_timeout == 6594.0 + 300.0 + 5.0  # + the context phase's first byte
    assert (pd.tiers["router"].first_byte_timeout, pd.tiers["router"].max_inflight) == (300.0, 2048)


def test_given_drain_and_tiers_are_kept() -> None:
    given = args(drain_seconds=92)
    assert given.drain_seconds == 92 and given.tiers["router"].request_timeout == 3600.0
    tiers = args().tiers
    assert args(max_seq_len=131072, tiers=tiers).tiers["router"].request_timeout == 3600.0
