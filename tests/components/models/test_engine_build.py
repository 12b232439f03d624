"""EngineBuild under Pulumi mocks: the Job and ConfigMap really sent to Kubernetes."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.config.scheduling import NodePool, Toleration
from components.models.engine_build import DEFAULT_IMAGE, EngineBuild, EngineBuildArgs, engine_key, job_name
from engines import build as build_entrypoint
from engines.spec import EngineSpec

L8 = "llama-3.1-8b-instruct"
POOL = NodePool(
    name="h100",
    gpus_per_node=8,
    gpu_memory_gib=80,
    node_selector={"node.kubernetes.io/instance-type": "p5.48xlarge", "disagg.ai/pool": "h100"},
    tolerations=(Toleration(key="nvidia.com/gpu"),),
    fabric="efa",
    efa_interfaces=32,
)
SPEC = EngineSpec(model=L8, tp_size=4, quantization="fp8", kv_cache_dtype="fp8")
KEY = engine_key(SPEC, DEFAULT_IMAGE)


def make_args(**overrides) -> EngineBuildArgs:
    fields = {
        "spec": SPEC,
        "namespace": "llm",
        "pool": POOL,
        "storage_claim_name": "models",
        "hf_token_secret": "hf-token",
    }
    return EngineBuildArgs(**{**fields, **overrides})


def create(name: str = "llama-8b", **overrides) -> EngineBuild:
    provider = k8s.Provider("k8s", kubeconfig="{}")
    return EngineBuild(name, make_args(**overrides), pulumi.ResourceOptions(provider=provider))


def job_of(mocks):
    (job,) = mocks.of_type("kubernetes:batch/v1:Job")
    return job


def pod_of(mocks):
    return job_of(mocks).inputs["spec"]["template"]["spec"]


def after(build: EngineBuild, check):
    return pulumi.Output.all(build.job_name, build.engine_dir).apply(lambda values: check(*values))


@pulumi.runtime.test
def test_job_name_and_engine_dir_carry_the_engine_key(mocks):
    build = create()

    def check(name, engine_dir):
        assert SPEC.content_hash() != KEY and len(KEY) == 16
        assert name == f"llama-8b-{KEY}"
        assert job_of(mocks).inputs["metadata"]["name"] == name
        assert job_of(mocks).name == "llama-8b-job"
        assert (build.content_hash, build.engine_key) == (SPEC.content_hash(), KEY)
        assert engine_dir == f"/models/engines/{L8}/{KEY}" == build.engine_path
        labels = job_of(mocks).inputs["metadata"]["labels"]
        assert (labels["disagg.ai/engine-hash"], labels["disagg.ai/engine-key"]) == (SPEC.content_hash(), KEY)

    return after(build, check)


@pulumi.runtime.test
def test_container_runs_the_entrypoint_on_the_gpus(mocks):
    build = create()

    def check(*_):
        (container,) = pod_of(mocks)["containers"]
        assert container["image"] == "nvcr.io/nvidia/tritonserver:25.10-trtllm-python-py3"
        assert container["command"] == ["python3", "-m", "engines.build"]
        assert container["args"] == [
            "--spec", "/opt/disagg/spec.json", "--store", "/models", "--examples-dir", "/app/examples",
            "--workers", "4",
        ]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "4"
        assert container["resources"]["requests"]["nvidia.com/gpu"] == "4"
        env = {e["name"]: e for e in container["env"]}
        assert env["PYTHONPATH"]["value"] == "/opt/disagg"
        assert "HF_TOKEN" not in env and env["HF_TOKEN_PATH"]["value"] == "/var/run/secrets/huggingface/token"

    return after(build, check)


@pulumi.runtime.test
def test_build_pod_is_restricted_and_reads_the_token_from_a_file(mocks):
    build = create()

    def check(*_):
        pod = pod_of(mocks)
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"] == {
            "runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
            "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"},
        }  # fmt: skip
        (container,) = pod["containers"]
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "privileged": False,
            "readOnlyRootFilesystem": True, "runAsNonRoot": True,
        }  # fmt: skip
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts["tmp"] == "/tmp" and mounts["hf-token"] == "/var/run/secrets/huggingface"
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["hf-token"]["secret"]["items"] == [{"key": "HF_TOKEN", "path": "token"}]

    return after(build, check)


@pulumi.runtime.test
def test_build_egress_is_dns_and_https_only(mocks):
    build = create()

    def check(*_):
        (policy,) = mocks.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        spec = policy.inputs["spec"]
        assert spec["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in spec
        assert [r["ports"] for r in spec["egress"]] == [
            [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            [{"protocol": "TCP", "port": 443}],
        ]
        assert spec["egress"][1]["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}}]
        assert spec["podSelector"]["matchLabels"] == job_of(mocks).inputs["spec"]["template"]["metadata"]["labels"]

    return after(build, check)


@pulumi.runtime.test
def test_pod_is_scheduled_on_the_pool(mocks):
    build = create()

    def check(*_):
        pod = pod_of(mocks)
        assert pod["nodeSelector"] == POOL.node_selector
        assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        assert pod["restartPolicy"] == "Never"

    return after(build, check)


@pulumi.runtime.test
def test_volumes_store_code_and_shm(mocks):
    build = create(store_mount_path="/mnt/store")

    def check(*_):
        pod = pod_of(mocks)
        mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
        assert mounts["store"]["mountPath"] == "/mnt/store"
        assert (mounts["code"]["mountPath"], mounts["code"]["readOnly"]) == ("/opt/disagg", True)
        assert mounts["dshm"]["mountPath"] == "/dev/shm"
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["store"]["persistentVolumeClaim"] == {"claimName": "models"}
        assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "32Gi"}
        code = volumes["code"]["configMap"]
        assert code["name"] == f"llama-8b-{KEY}"
        assert {i["key"]: i["path"] for i in code["items"]} == {
            "__init__.py": "engines/__init__.py",
            "build.py": "engines/build.py",
            "build_args.py": "engines/build_args.py",
            "spec.json": "spec.json",
        }

    return after(build, check)


@pulumi.runtime.test
def test_job_lifecycle_settings(mocks):
    build = create()

    def check(*_):
        job = job_of(mocks).inputs
        assert job["spec"]["backoffLimit"] == 1
        assert job["spec"]["activeDeadlineSeconds"] == 4 * 3600
        assert "ttlSecondsAfterFinished" not in job["spec"]
        assert job["metadata"]["annotations"] == {"pulumi.com/replaceUnready": "true"}

    return after(build, check)


@pulumi.runtime.test
def test_skip_await_when_not_waiting(mocks):
    build = create(wait_for_completion=False)

    def check(*_):
        assert job_of(mocks).inputs["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"

    return after(build, check)


@pulumi.runtime.test
def test_configmap_carries_entrypoint_and_request(mocks):
    build = create()

    def check(*_):
        (config_map,) = mocks.of_type("kubernetes:core/v1:ConfigMap")
        assert config_map.name == "llama-8b-code"
        data = config_map.inputs["data"]
        assert data["build.py"] == Path(build_entrypoint.__file__).read_text()
        request = json.loads(data["spec.json"])
        assert request["contentHash"] == SPEC.content_hash() == build_entrypoint.content_hash(request["spec"])
        assert request["image"] == DEFAULT_IMAGE
        assert request["engineKey"] == KEY == build_entrypoint.engine_key(request["spec"], DEFAULT_IMAGE)
        assert request["spec"] == SPEC.model_dump(mode="json")
        assert (request["architecture"], request["checkpoint"]) == ("LlamaForCausalLM", "meta-llama/Llama-3.1-8B-Instruct")

    return after(build, check)


@pulumi.runtime.test
def test_children_use_the_given_provider(mocks):
    build = create()

    def check(*_):
        for resource in mocks.resources:
            if resource.type.startswith("kubernetes:"):
                assert "pulumi:providers:kubernetes::k8s::" in resource.provider

    return after(build, check)


def test_changed_spec_changes_the_job_name():
    changed = SPEC.model_copy(update={"max_batch_size": 128})
    assert job_name("llama-8b", changed, DEFAULT_IMAGE) != job_name("llama-8b", SPEC, DEFAULT_IMAGE)
    same = EngineSpec.model_validate(SPEC.model_dump())
    assert job_name("llama-8b", SPEC, DEFAULT_IMAGE) == job_name("llama-8b", same, DEFAULT_IMAGE)


def test_changed_image_builds_a_new_engine_directory():
    newer = "nvcr.io/nvidia/tritonserver:25.11-trtllm-python-py3"
    assert engine_key(SPEC, newer) != KEY
    assert job_name("llama-8b", SPEC, newer) != job_name("llama-8b", SPEC, DEFAULT_IMAGE)


def test_multi_node_engine_is_built_on_one_node_in_turns():
    args = make_args(spec=EngineSpec(model="llama-3.1-70b-instruct", tp_size=8, pp_size=2))
    assert args.spec.world_size == 16
    assert args.build_gpus() == 8


def test_single_node_engine_takes_one_gpu_per_rank():
    assert make_args().build_gpus() == make_args().spec.world_size


def test_host_memory_scales_with_the_model():
    assert make_args().host_memory_gib() == 55  # 8.03e9 × 2 B = 15.0 GiB × 1.5 + 32
    assert make_args(spec=EngineSpec(model="llama-3.1-70b-instruct", tp_size=8)).host_memory_gib() == 230


def test_long_names_are_refused():
    with pytest.raises(ValueError, match="use a name of at most 46 characters"):
        job_name("x" * 47, SPEC, DEFAULT_IMAGE)
