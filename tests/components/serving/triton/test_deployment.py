"""DisaggregatedDeployment: up-front validation, planning, and the whole tree under mocks."""

from __future__ import annotations

import json

import pulumi
import pulumi_kubernetes as k8s
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from components.config.deployment import ImagesConfig
from components.serving.triton.deployment import (
    DisaggregatedDeployment,
    frontend_limits,
    plan_deployment,
    serving_limits,
)
from components.serving.triton.model_repository import EngineLimits
from engines.spec import EngineSpec

LWS_TYPE = "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet"


def engine_dir(spec: EngineSpec) -> str:
    return f"/models/engines/{spec.model}/{spec.content_hash()}"


# ---- planning and validation (no resources) -------------------------------------------------


def test_tensor_parallel_plan(deployment_args):
    plan = plan_deployment("llama-8b", deployment_args("single"))
    (role,) = plan.roles
    assert (role.role, role.orchestrator_name, role.workers_name) == ("workers", "llama-8b-orchestrator", "llama-8b-workers")
    assert (role.layout.pods_per_group, role.layout.gpus_per_pod) == (1, 4)
    frontend = plan.frontend_repository.frontend
    assert frontend.orchestrator_url == "llama-8b-orchestrator.llm.svc.cluster.local:8001"
    assert frontend.generation_orchestrator_url is None
    assert plan.tokenizer_from_engine


def test_prefill_decode_plan_routes_context_then_generation(deployment_args):
    plan = plan_deployment("llama-70b-pd", deployment_args("pd"))
    assert [r.role for r in plan.roles] == ["prefill", "decode"]
    assert [r.workers_name for r in plan.roles] == ["llama-70b-pd-prefill", "llama-70b-pd-decode"]
    frontend = plan.frontend_repository.frontend
    assert frontend.orchestrator_url == "llama-70b-pd-prefill-orchestrator.llm.svc.cluster.local:8001"
    assert frontend.generation_orchestrator_url == "llama-70b-pd-decode-orchestrator.llm.svc.cluster.local:8001"
    assert plan.role("prefill").repository.limits.max_batch_size == 32
    assert plan.role("decode").repository.limits.max_batch_size == 256
    assert plan.frontend_repository.limits.max_batch_size == 32  # what both phases accept


def test_orchestrator_settings_reach_the_repository(deployment_args):
    plan = plan_deployment("llama-70b", deployment_args("multi"))
    t = plan.role("workers").repository.tensorrt_llm
    assert t.max_queue_delay_microseconds == 500
    assert t.enable_kv_cache_reuse is True and t.batching_strategy == "inflight_fused_batching"


def test_default_max_tokens_reaches_the_frontend(deployment_args):
    plan = plan_deployment("llama-8b", deployment_args("single", orchestrator={"defaultMaxTokens": 256}))
    assert plan.frontend_repository.frontend.default_max_tokens == 256


def test_serving_limits_follow_the_engine_and_the_orchestrator_override(deployment_args):
    engine = EngineSpec(model="m", max_batch_size=64, max_input_len=1000, max_seq_len=2000)
    dep = deployment_args("single").deployment
    assert serving_limits(dep.orchestrator, engine) == EngineLimits(max_batch_size=64, max_input_len=1000, max_seq_len=2000)
    lowered = dep.orchestrator.model_copy(update={"max_batch_size": 16})
    assert serving_limits(lowered, engine).max_batch_size == 16
    a, b = EngineLimits(max_batch_size=8, max_input_len=50, max_seq_len=100), EngineLimits(
        max_batch_size=4, max_input_len=60, max_seq_len=90
    )
    assert frontend_limits([a, b]) == EngineLimits(max_batch_size=4, max_input_len=50, max_seq_len=90)


def test_batch_size_above_the_engine_names_the_key_and_fix(deployment_args):
    args = deployment_args("single", orchestrator={"maxBatchSize": 128})
    with pytest.raises(ValueError) as err:
        plan_deployment("llama-8b", args)
    message = str(err.value)
    assert "orchestrator.maxBatchSize (workers engine): max_batch_size=128 exceeds the engine's max_batch_size=64" in message
    assert "lower it to at most 64 or rebuild the engine" in message


def test_batch_size_checked_against_each_phase(deployment_args):
    with pytest.raises(ValueError, match=r"orchestrator.maxBatchSize \(prefill engine\): max_batch_size=64"):
        plan_deployment("pd", deployment_args("pd", orchestrator={"maxBatchSize": 64}))


def test_engines_must_match_the_worker_roles(deployment_args):
    args = deployment_args("pd", engines={"workers": EngineSpec(model="m")})
    with pytest.raises(ValueError, match=r"worker groups \['prefill', 'decode'\] but engines has \['workers'\]"):
        plan_deployment("pd", args)


def test_unknown_pool_is_named(deployment_args):
    args = deployment_args("single", workers={"engine": "tp4", "pool": "v100", "podsPerGroup": 1, "gpusPerPod": 4})
    with pytest.raises(ValueError, match="workers.pool: the cluster has no GPU pool 'v100'"):
        plan_deployment("llama-8b", args)


def test_world_size_must_match_the_group(deployment_args):
    args = deployment_args("single", workers={"engine": "tp4", "pool": "a100", "podsPerGroup": 1, "gpusPerPod": 8})
    with pytest.raises(ValueError, match="engine needs tpSize × ppSize = 4 GPUs but the group has"):
        plan_deployment("llama-8b", args)


def test_multi_node_groups_take_whole_nodes(deployment_args):
    args = deployment_args(
        "single",
        workers={"engine": "tp4", "pool": "a100", "podsPerGroup": 2, "gpusPerPod": 2},
    )
    with pytest.raises(ValueError, match="multi-node groups must take whole nodes .* set gpusPerPod: 8"):
        plan_deployment("llama-8b", args)


def test_worker_autoscaling_needs_keda_or_custom_metrics(deployment_args):
    assert deployment_args("multi").deployment.workers.autoscaling.enabled
    with pytest.raises(ValueError, match=r"deployment 'llama-70b' workers.autoscaling is enabled but "
                                         r"neither KEDA .* nor a metrics adapter .* or disable autoscaling"):  # fmt: skip
        plan_deployment("llama-70b", deployment_args("multi", custom_metrics=False))
    keda = deployment_args("multi", custom_metrics=False, keda_prometheus_url="http://prometheus:9090")
    assert [r.role for r in plan_deployment("llama-70b", keda).roles] == ["workers"]
    assert plan_deployment("llama-8b", deployment_args("single", custom_metrics=False))


def test_long_names_are_refused(deployment_args):
    with pytest.raises(ValueError, match="use a name of at most 40 characters"):
        plan_deployment("x" * 41, deployment_args("pd"))
    assert plan_deployment("x" * 40, deployment_args("pd"))


def test_memory_quantities_are_checked(deployment_args):
    args = deployment_args("single", workers={**{"engine": "tp4", "pool": "a100", "podsPerGroup": 1, "gpusPerPod": 4},
                                              "shmSize": "lots"})  # fmt: skip
    with pytest.raises(ValueError, match="deployment 'llama-8b' workers.shmSize: memory quantity 'lots'"):
        plan_deployment("llama-8b", args)


def test_kv_cache_reuse_needs_paged_context_fmha(deployment_args):
    engines = {"workers": EngineSpec(model="llama-3.1-8b-instruct", tp_size=4, use_paged_context_fmha=False)}
    with pytest.raises(ValueError, match="enableKvCacheReuse is true but the workers engine is built without"):
        plan_deployment("llama-8b", deployment_args("single", engines=engines))


def test_phases_must_serve_one_model(deployment_args):
    engines = {"prefill": EngineSpec(model="llama-3.1-70b-instruct", tp_size=8), "decode": EngineSpec(model="other", tp_size=8)}
    with pytest.raises(ValueError, match="prefill and decode engines serve different models"):
        plan_deployment("pd", deployment_args("pd", engines=engines))


def test_validation_fails_before_any_resource(mocks, deployment_args):
    args = deployment_args("single", orchestrator={"maxBatchSize": 128})
    before = {r.type for r in mocks.recorded.values()}
    with pytest.raises(ValueError, match="orchestrator.maxBatchSize"):
        DisaggregatedDeployment("llama-8b", args)
    after = {r.type for r in mocks.recorded.values()}
    assert not any(t.startswith("disagg:") for t in after - before)


# ---- the whole deployment under mocks -------------------------------------------------------


def create(deployment_args, kind: str, name: str, **overrides) -> DisaggregatedDeployment:
    args = deployment_args(kind, **overrides)
    return DisaggregatedDeployment(name, args, pulumi.ResourceOptions(provider=args.cluster.provider))


def settled(deployment: DisaggregatedDeployment, check):
    """Run ``check(frontend_endpoint, orchestrator_endpoint)`` once every object is registered."""
    resources = [deployment.frontend.deployment, deployment.frontend.hpa, deployment.frontend.pdb, deployment.frontend.service]
    resources += deployment.frontend.config_maps
    for orchestrator in deployment.orchestrators.values():
        resources += [orchestrator.service, *orchestrator.config_maps]
    for workers in deployment.workers.values():
        resources += [workers.leader_worker_set, workers.pdb] + ([workers.hpa] if workers.hpa else [])
    return pulumi.Output.all(
        deployment.frontend_endpoint, deployment.orchestrator_endpoint, *[r.urn for r in resources]
    ).apply(lambda values: check(values[0], values[1]))


def by_name(mocks) -> dict:
    return {r.name: r for r in mocks.recorded.values()}


def config(cm_inputs: dict, model: str) -> mc.ModelConfig:
    return text_format.Parse(cm_inputs["data"][f"{model}__config.pbtxt"], mc.ModelConfig())


@pulumi.runtime.test
def test_tensor_parallel_tree_names_and_provider(mocks, deployment_args):
    deployment = create(deployment_args, "single", "llama-8b")

    def check(frontend_endpoint, orchestrator_endpoint):
        recorded = by_name(mocks)
        assert recorded["llama-8b"].type == "disagg:serving:DisaggregatedDeployment"
        children = sorted((r.name, r.type) for r in recorded.values() if r.parent_name == "llama-8b")
        assert children == [
            ("llama-8b-frontend", "disagg:serving:TritonFrontend"),
            ("llama-8b-network-policies", "disagg:serving:NetworkPolicies"),
            ("llama-8b-orchestrator", "disagg:serving:TritonOrchestrator"),
            ("llama-8b-workers", "disagg:serving:TensorParallelWorkers"),
        ]
        for resource in recorded.values():
            if resource.type.startswith("kubernetes:"):
                assert "pulumi:providers:kubernetes::k8s::" in resource.provider, resource.name
                parent = resource.parent_name
                assert resource.name.startswith(parent + "-"), (resource.name, parent)
        assert frontend_endpoint == {
            "grpc": "llama-8b-frontend.llm.svc.cluster.local:8001",
            "http": "llama-8b-frontend.llm.svc.cluster.local:8000",
        }
        assert orchestrator_endpoint == "llama-8b-orchestrator.llm.svc.cluster.local:8001"
        assert set(deployment.orchestrators) == set(deployment.workers) == {"workers"}

    return settled(deployment, check)


@pulumi.runtime.test
def test_frontend_and_orchestrator_repositories_are_wired(mocks, deployment_args):
    deployment = create(deployment_args, "single", "llama-8b")
    spec = deployment_args("single").engines["workers"]

    def check(*_):
        recorded = by_name(mocks)
        proxy = config(recorded["llama-8b-frontend-repository-tensorrt-llm"].inputs, "tensorrt_llm")
        assert proxy.parameters["orchestrator_url"].string_value == "llama-8b-orchestrator.llm.svc.cluster.local:8001"
        pre = config(recorded["llama-8b-frontend-repository-preprocessing"].inputs, "preprocessing")
        assert pre.parameters["tokenizer_dir"].string_value == f"{engine_dir(spec)}/tokenizer"
        real = config(recorded["llama-8b-orchestrator-repository-tensorrt-llm"].inputs, "tensorrt_llm")
        assert real.backend == "tensorrtllm"
        assert real.parameters["gpt_model_path"].string_value == engine_dir(spec)
        assert real.max_batch_size == spec.max_batch_size

    return settled(deployment, check)


@pulumi.runtime.test
def test_frontend_image_can_differ_from_the_trtllm_image(mocks, deployment_args):
    images = ImagesConfig(frontend="registry.example.com/triton-frontend:25.10-1")
    args = deployment_args("single").model_copy(update={"images": images})
    deployment = DisaggregatedDeployment("llama-8b", args, pulumi.ResourceOptions(provider=args.cluster.provider))

    def check(*_):
        recorded = by_name(mocks)

        def images_of(name: str, template_path: list[str]) -> set[str]:
            node = recorded[name].inputs["spec"]
            for key in template_path:
                node = node[key]
            return {c["image"] for c in node["spec"]["containers"]}

        assert images_of("llama-8b-frontend-deployment", ["template"]) == {images.frontend}
        lws = ["leaderWorkerTemplate", "leaderTemplate"]
        assert images_of("llama-8b-workers-leaderworkerset", lws) == {images.triton_trtllm}

    return settled(deployment, check)


@pulumi.runtime.test
def test_every_leader_worker_set_matches_the_crd(mocks, deployment_args, lws_errors):
    deployments = [create(deployment_args, kind, name) for kind, name in
                   (("single", "llama-8b"), ("multi", "llama-70b"), ("pd", "llama-70b-pd"))]  # fmt: skip

    def check(*_):
        sets = {r.name: r.inputs for r in mocks.recorded.values() if r.type == LWS_TYPE}
        assert sorted(sets) == [
            "llama-70b-pd-decode-leaderworkerset",
            "llama-70b-pd-prefill-leaderworkerset",
            "llama-70b-workers-leaderworkerset",
            "llama-8b-workers-leaderworkerset",
        ]
        for name, inputs in sets.items():
            assert lws_errors(json.loads(json.dumps(inputs))) == [], name

    return pulumi.Output.all(*[settled(d, lambda *_: None) for d in deployments]).apply(check)


@pulumi.runtime.test
def test_multi_node_group_is_exclusive_and_autoscaled(mocks, deployment_args):
    deployment = create(deployment_args, "multi", "llama-70b")

    def check(*_):
        recorded = by_name(mocks)
        lws = recorded["llama-70b-workers-leaderworkerset"].inputs
        assert lws["metadata"]["name"] == "llama-70b-workers"
        assert lws["metadata"]["annotations"] == {
            "leaderworkerset.sigs.k8s.io/exclusive-topology": "topology.k8s.aws/network-node-layer-3"
        }
        assert (lws["spec"]["replicas"], lws["spec"]["leaderWorkerTemplate"]["size"]) == (2, 2)
        hpa = recorded["llama-70b-workers-hpa"].inputs["spec"]
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 4)
        real = config(recorded["llama-70b-orchestrator-repository-tensorrt-llm"].inputs, "tensorrt_llm")
        assert real.parameters["participant_ids"].string_value == ",".join(str(i) for i in range(1, 17))
        service = recorded["llama-70b-orchestrator-service"].inputs["spec"]
        assert service["selector"]["leaderworkerset.sigs.k8s.io/worker-index"] == "0"
        assert service["selector"]["disagg.dev/role"] == "workers"

    return settled(deployment, check)


@pulumi.runtime.test
def test_prefill_decode_tree(mocks, deployment_args):
    deployment = create(deployment_args, "pd", "llama-70b-pd")

    def check(_, orchestrator_endpoint):
        recorded = by_name(mocks)
        children = sorted(r.name for r in recorded.values() if r.parent_name == "llama-70b-pd")
        assert children == [
            "llama-70b-pd-decode",
            "llama-70b-pd-decode-orchestrator",
            "llama-70b-pd-frontend",
            "llama-70b-pd-network-policies",
            "llama-70b-pd-prefill",
            "llama-70b-pd-prefill-orchestrator",
        ]
        proxy = config(recorded["llama-70b-pd-frontend-repository-tensorrt-llm"].inputs, "tensorrt_llm")
        params = {k: v.string_value for k, v in proxy.parameters.items()}
        assert params["orchestrator_url"] == "llama-70b-pd-prefill-orchestrator.llm.svc.cluster.local:8001"
        assert params["generation_orchestrator_url"] == "llama-70b-pd-decode-orchestrator.llm.svc.cluster.local:8001"
        for role in ("prefill", "decode"):
            lws = recorded[f"llama-70b-pd-{role}-leaderworkerset"].inputs["spec"]["leaderWorkerTemplate"]
            for template in (lws["leaderTemplate"], lws["workerTemplate"]):
                env = {e["name"]: e.get("value") for e in template["spec"]["containers"][0]["env"]}
                assert env["TRTLLM_USE_UCX_KVCACHE"] == "1"
            assert lws["leaderTemplate"]["metadata"]["labels"]["disagg.dev/role"] == role
            assert recorded[f"llama-70b-pd-{role}-hpa"].inputs["spec"]["scaleTargetRef"]["name"] == f"llama-70b-pd-{role}"
        gen = config(recorded["llama-70b-pd-decode-orchestrator-repository-tensorrt-llm"].inputs, "tensorrt_llm")
        assert gen.max_batch_size == 256
        assert orchestrator_endpoint == "llama-70b-pd-prefill-orchestrator.llm.svc.cluster.local:8001"

    return settled(deployment, check)


@pulumi.runtime.test
def test_children_inherit_the_deployments_dependencies(mocks, deployment_args):
    args = deployment_args("single")
    platform = k8s.core.v1.Namespace("platform-marker", opts=pulumi.ResourceOptions(provider=args.cluster.provider))
    deployment = DisaggregatedDeployment(
        "llama-8b", args, pulumi.ResourceOptions(provider=args.cluster.provider, depends_on=[platform])
    )

    def check(*_):
        marker = by_name(mocks)["platform-marker"].urn
        k8s_objects = [r for r in mocks.recorded.values() if r.type.startswith("kubernetes:") and r.name != "platform-marker"]
        assert k8s_objects
        for resource in k8s_objects:
            assert marker in resource.dependencies, resource.name

    return settled(deployment, check)


@pulumi.runtime.test
def test_existing_clusters_get_no_aws_load_balancer_annotations(mocks, deployment_args, cluster_factory):
    deployment = create(deployment_args, "single", "llama-8b", cluster=cluster_factory(platform="existing"))

    def check(*_):
        service = by_name(mocks)["llama-8b-frontend-service"].inputs
        assert service["spec"]["type"] == "LoadBalancer"
        assert "annotations" not in service["metadata"]

    return settled(deployment, check)


def test_rendering_is_deterministic(deployment_args):
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from disaggctl.synth.fast_registration import install_fast_mocks

    def render() -> str:
        monitor = install_fast_mocks("disagg", "determinism")

        def program():
            for kind, name in (("single", "llama-8b"), ("multi", "llama-70b"), ("pd", "llama-70b-pd")):
                create(deployment_args, kind, name)

        _sync_await(run_pulumi_func(program))
        resources = sorted(monitor.recorded.values(), key=lambda r: r.urn)
        return json.dumps(
            [[r.urn, r.parent, r.provider, r.inputs, r.dependencies] for r in resources], sort_keys=True
        )

    first, second = render(), render()
    assert first == second
    assert '"kind": "LeaderWorkerSet"' in first


def test_engine_dirs_must_be_paths_or_outputs(deployment_args):
    with pytest.raises(ValueError, match=r"engine_dirs\['workers'\] is int, not a str or pulumi.Output"):
        deployment_args("single", engine_dirs={"workers": 3})
