"""Secure pod defaults on every serving pod, both runtimes."""

from __future__ import annotations

import pytest

from components.serving.llmapi.workers import leader_worker_set_manifest
from components.serving.security import container_security_context, pod_security_context
from components.serving.triton.frontend import frontend_config_maps, frontend_deployment_manifest
from components.serving.triton.orchestrator import leader_pod_template, orchestrator_config_maps
from components.serving.triton.workers import worker_pod_template
from tests.components.serving.conftest import H100, IB, SYSTEM, broken


def test_pod_security_context_is_non_root_with_runtime_default_seccomp():
    assert pod_security_context() == {
        "runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }  # fmt: skip


def test_container_drops_everything_and_adds_ipc_lock_only_for_rdma():
    plain = container_security_context()
    assert plain == {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "privileged": False,
        "readOnlyRootFilesystem": True, "runAsNonRoot": True,
    }  # fmt: skip
    assert container_security_context(rdma=True)["capabilities"] == {"drop": ["ALL"], "add": ["IPC_LOCK"]}


def pod_specs(frontend_args, orchestrator_args, workers_args, llmapi_workers_args) -> dict[str, dict]:
    fe = frontend_args()
    orch = orchestrator_args(pods=2, gpus=8, pool=IB)
    workers = workers_args(pods=2, gpus=8, pool=IB)
    llm = llmapi_workers_args(pods=2, gpus=8, pool=H100)
    lws = leader_worker_set_manifest("l", llm, "/models/m")["spec"]["leaderWorkerTemplate"]
    return {
        "triton-frontend": frontend_deployment_manifest("f", fe, frontend_config_maps("f", fe.repository))["spec"]["template"]["spec"],
        "triton-leader": leader_pod_template(orch, orchestrator_config_maps("o", orch.repository, orch.layout), "/e")["spec"],
        "triton-worker": worker_pod_template(workers, "/e")["spec"],
        "llmapi-leader": lws["leaderTemplate"]["spec"],
        "llmapi-worker": lws["workerTemplate"]["spec"],
    }


@pytest.mark.parametrize("pod", ["triton-frontend", "triton-leader", "triton-worker", "llmapi-leader", "llmapi-worker"])
def test_every_serving_pod_is_locked_down(frontend_args, orchestrator_args, workers_args, llmapi_workers_args, pod):
    spec = pod_specs(frontend_args, orchestrator_args, workers_args, llmapi_workers_args)[pod]
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"] == pod_security_context()
    (container,) = spec["containers"]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    assert set(security["capabilities"].get("add", [])) <= {"IPC_LOCK"}
    assert container["resources"]["limits"]["cpu"] == container["resources"]["requests"]["cpu"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["HOME"] == "/tmp/home" and env["XDG_CACHE_HOME"] == "/tmp/cache"


def test_gpu_pods_keep_dev_shm(orchestrator_args, llmapi_workers_args):
    orch = orchestrator_args()
    spec = leader_pod_template(orch, orchestrator_config_maps("o", orch.repository, orch.layout), "/e")["spec"]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in spec["containers"][0]["volumeMounts"]
    lws = leader_worker_set_manifest("l", llmapi_workers_args(), "/m")["spec"]["leaderWorkerTemplate"]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in lws["leaderTemplate"]["spec"]["containers"][0]["volumeMounts"]


def test_cpu_pools_get_no_ipc_lock(frontend_args):
    fe = frontend_args(pool=SYSTEM)
    spec = frontend_deployment_manifest("f", fe, frontend_config_maps("f", fe.repository))["spec"]["template"]["spec"]
    assert spec["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}




def test_triton_core_objects_validate(frontend_args, k8s_errors):
    from components.serving.triton.frontend import (
        frontend_hpa_manifest,
        frontend_pdb_manifest,
        frontend_service_manifest,
    )

    fe = frontend_args()
    manifests = [
        frontend_deployment_manifest("f", fe, frontend_config_maps("f", fe.repository)),
        frontend_service_manifest("f", fe),
        frontend_hpa_manifest("f", fe),
        frontend_pdb_manifest("f", fe),
    ]
    assert [e for m in manifests for e in k8s_errors(m)] == []


def test_a_broken_triton_object_is_reported(frontend_args, k8s_errors):
    """The twin of test_triton_core_objects_validate: a securityContext of the wrong type and a
    misspelt PDB key are reported by the same check."""
    from components.serving.triton.frontend import frontend_pdb_manifest

    fe = frontend_args()
    deployment = frontend_deployment_manifest("f", fe, frontend_config_maps("f", fe.repository))
    (error,) = k8s_errors(broken(deployment, "spec/template/spec/containers/0/securityContext/runAsNonRoot", "yes"))
    assert error.startswith("spec/template/spec/containers/0/securityContext/runAsNonRoot: 'yes' is not of type")
    (error,) = k8s_errors(broken(frontend_pdb_manifest("f", fe), "spec/maxUnavailabel", 1))
    assert error == "spec: Additional properties are not allowed ('maxUnavailabel' was unexpected)"
