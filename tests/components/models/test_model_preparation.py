"""ModelPreparation under Pulumi mocks: the Job and ConfigMap really sent to Kubernetes."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.config import ModelSourceConfig
from components.config.images import DEFAULT_TRTLLM_IMAGE
from components.config.scheduling import NodePool, Toleration
from components.models.model_preparation import (
    ModelPreparation,
    ModelPreparationArgs,
    job_name,
    model_path,
    preparation_request,
)
from engines import prepare as prepare_entrypoint

REV = "0e9e39f249a16976918f6564b8830bc894c89659"
SOURCE = ModelSourceConfig(model="llama-3.1-8b-instruct", revision=REV)
KEY = SOURCE.key()
SYSTEM = NodePool(
    name="system",
    gpus_per_node=0,
    gpu_memory_gib=0,
    node_selector={"disagg.ai/pool": "system"},
    tolerations=(Toleration(key="CriticalAddonsOnly"),),
)


def create(name: str = "model-llama-8b", **overrides) -> ModelPreparation:
    fields = {
        "name": "llama-8b",
        "source": SOURCE,
        "namespace": "llm",
        "pool": SYSTEM,
        "storage_claim_name": "models",
        "hf_token_secret": "hf-token",
    }
    provider = k8s.Provider("k8s", kubeconfig="{}")
    return ModelPreparation(name, ModelPreparationArgs(**{**fields, **overrides}), pulumi.ResourceOptions(provider=provider))


def job_of(mocks):
    (job,) = mocks.of_type("kubernetes:batch/v1:Job")
    return job


def pod_of(mocks):
    return job_of(mocks).inputs["spec"]["template"]["spec"]


def after(component: ModelPreparation, check):
    return pulumi.Output.all(component.job_name, component.model_dir).apply(lambda values: check(*values))


@pulumi.runtime.test
def test_job_is_named_by_the_model_key_and_outputs_the_model_dir(mocks):
    component = create()

    def check(name, model_dir):
        assert len(KEY) == 16 and name == f"model-llama-8b-{KEY}"
        assert job_of(mocks).name == "model-llama-8b-job"
        assert model_dir == f"/models/models/llama-8b/{KEY}" == component.model_path
        assert component.model_key == KEY
        labels = job_of(mocks).inputs["metadata"]["labels"]
        assert (labels["disagg.ai/model"], labels["disagg.ai/model-key"]) == ("llama-8b", KEY)

    return after(component, check)


@pulumi.runtime.test
def test_container_runs_the_entrypoint_with_the_token_from_the_secret(mocks):
    component = create()

    def check(*_):
        (container,) = pod_of(mocks)["containers"]
        assert container["image"] == DEFAULT_TRTLLM_IMAGE == "nvcr.io/nvidia/tensorrt-llm/release:1.2.1"
        assert container["command"] == ["python3", "-m", "engines.prepare"]
        assert container["args"] == ["--request", "/opt/disagg/request.json", "--store", "/models"]
        env = {e["name"]: e for e in container["env"]}
        # the token is a file from the Secret (HF_TOKEN_PATH), never an environment variable
        assert "HF_TOKEN" not in env
        assert env["HF_TOKEN_PATH"] == {"name": "HF_TOKEN_PATH", "value": "/var/run/secrets/huggingface/token"}
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["hf-token"] == {"name": "hf-token", "mountPath": "/var/run/secrets/huggingface", "readOnly": True}
        volumes = {v["name"]: v for v in pod_of(mocks)["volumes"]}
        assert volumes["hf-token"]["secret"] == {
            "secretName": "hf-token", "items": [{"key": "HF_TOKEN", "path": "token"}], "defaultMode": 0o440,
        }
        assert env["HOME"]["value"] == "/tmp" and env["PYTHONPATH"]["value"] == "/opt/disagg"
        assert "nvidia.com/gpu" not in container["resources"]["requests"]
        assert container["resources"] == {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"memory": "8Gi"}}

    return after(component, check)


@pulumi.runtime.test
def test_no_token_env_without_a_secret(mocks):
    component = create(hf_token_secret=None)

    def check(*_):
        (container,) = pod_of(mocks)["containers"]
        assert not {"HF_TOKEN", "HF_TOKEN_PATH"} & {e["name"] for e in container["env"]}
        assert "hf-token" not in {v["name"] for v in pod_of(mocks)["volumes"]}

    return after(component, check)


@pulumi.runtime.test
def test_pod_runs_on_the_system_pool_under_the_restricted_profile(mocks):
    component = create()

    def check(*_):
        pod = pod_of(mocks)
        assert pod["nodeSelector"] == {"disagg.ai/pool": "system"}
        assert pod["tolerations"] == [{"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}]
        assert pod["restartPolicy"] == "Never"
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"] == {
            "runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
            "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"},
        }
        (container,) = pod["containers"]
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "privileged": False,
            "readOnlyRootFilesystem": True, "runAsNonRoot": True,
        }
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["tmp"]["mountPath"] == "/tmp" and mounts["code"]["readOnly"] is True
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["store"]["persistentVolumeClaim"] == {"claimName": "models"}

    return after(component, check)


@pulumi.runtime.test
def test_configmap_carries_the_entrypoint_and_the_request(mocks):
    component = create()

    def check(*_):
        (config_map,) = mocks.of_type("kubernetes:core/v1:ConfigMap")
        data = config_map.inputs["data"]
        assert data["prepare.py"] == Path(prepare_entrypoint.__file__).read_text()
        request = json.loads(data["request.json"])
        assert request == preparation_request("llama-8b", SOURCE)
        assert request["modelKey"] == prepare_entrypoint.model_key(request) == KEY
        assert (request["repository"], request["revision"], request["gated"]) == (
            "meta-llama/Llama-3.1-8B-Instruct", REV, True,
        )
        items = pod_of(mocks)["volumes"][1]["configMap"]["items"]
        assert {i["key"]: i["path"] for i in items} == {
            "__init__.py": "engines/__init__.py", "prepare.py": "engines/prepare.py", "request.json": "request.json",
        }

    return after(component, check)


@pulumi.runtime.test
def test_job_lifecycle(mocks):
    component = create(wait_for_completion=False)

    def check(*_):
        job = job_of(mocks).inputs
        assert job["spec"]["backoffLimit"] == 2 and job["spec"]["activeDeadlineSeconds"] == 3 * 3600
        assert "ttlSecondsAfterFinished" not in job["spec"]
        assert job["metadata"]["annotations"] == {"pulumi.com/replaceUnready": "true", "pulumi.com/skipAwait": "true"}
        for resource in mocks.resources:
            if resource.type.startswith("kubernetes:"):
                assert "pulumi:providers:kubernetes::k8s::" in resource.provider

    return after(component, check)


def test_a_new_revision_or_precision_gets_a_new_job_and_directory():
    newer = SOURCE.model_copy(update={"revision": "1" * 40})
    fp8 = ModelSourceConfig(model="llama-3.1-8b-instruct", quantization="fp8", revision=REV)
    names = {job_name("m", s) for s in (SOURCE, newer, fp8)}
    assert len(names) == 3
    assert model_path("/models", "llama-8b", fp8) == f"/models/models/llama-8b/{fp8.key()}"
    assert job_name("m", ModelSourceConfig.model_validate(SOURCE.model_dump())) == job_name("m", SOURCE)


def test_long_names_are_refused():
    with pytest.raises(ValueError, match="use a name of at most 46 characters"):
        job_name("x" * 47, SOURCE)


@pulumi.runtime.test
def test_download_egress_is_dns_and_https_only(mocks):
    component = create()

    def check(*_):
        (policy,) = mocks.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        spec = policy.inputs["spec"]
        assert spec["podSelector"]["matchLabels"] == job_of(mocks).inputs["spec"]["template"]["metadata"]["labels"]
        assert spec["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in spec
        assert [rule["ports"] for rule in spec["egress"]] == [
            [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            [{"protocol": "TCP", "port": 443}],
        ]

    return after(component, check)
