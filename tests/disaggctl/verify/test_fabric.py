"""The fabric-check manifests: two GPU pods on two nodes, fabric resources, NCCL env, script."""

import shutil
import subprocess
from types import SimpleNamespace

import pytest
import yaml
from pydantic import ValidationError

from disaggctl.verify.fabric import (
    EFA_RESOURCE,
    GPU_RESOURCE,
    FabricCheckSpec,
    SshKeyPair,
    Toleration,
    manifests_yaml,
    render_fabric_check,
    run_script,
    spec_for_pool,
)

KEYS = SshKeyPair(
    private_key="-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----",
    public_key="ssh-ed25519 AAAAC3Nz test",
)


def efa_spec(**kw):
    return FabricCheckSpec(image="nccl-tests:efa", fabric="efa", efa_interfaces=4, namespace="inference", **kw)


def by_kind(objects):
    return {o["kind"]: o for o in objects}


def pod(objects):
    return by_kind(objects)["Job"]["spec"]["template"]["spec"]


def env(objects):
    return {e["name"]: e.get("value") for e in pod(objects)["containers"][0]["env"]}


def test_objects_and_namespace():
    objects = render_fabric_check(efa_spec(), KEYS)
    assert [o["kind"] for o in objects] == ["Service", "Secret", "Job"]
    assert {o["metadata"]["namespace"] for o in objects} == {"inference"}
    assert [o["kind"] for o in render_fabric_check(efa_spec())] == ["Service", "Job"]


def test_indexed_job_of_two_pods_bounded_in_time():
    job = by_kind(render_fabric_check(efa_spec()))["Job"]["spec"]
    assert (job["completionMode"], job["completions"], job["parallelism"]) == ("Indexed", 2, 2)
    assert job["backoffLimit"] == 0
    assert job["activeDeadlineSeconds"] == 1800


def test_pods_repel_each_other_across_nodes():
    objects = render_fabric_check(efa_spec())
    (term,) = pod(objects)["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    pod_labels = by_kind(objects)["Job"]["spec"]["template"]["metadata"]["labels"]
    assert term["labelSelector"]["matchLabels"].items() <= pod_labels.items()


def test_headless_service_resolves_pods_before_ready():
    objects = render_fabric_check(efa_spec())
    svc = by_kind(objects)["Service"]
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"] is True
    assert pod(objects)["subdomain"] == svc["metadata"]["name"]
    pod_labels = by_kind(objects)["Job"]["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()


def test_efa_resources_and_env():
    objects = render_fabric_check(efa_spec(gpus_per_node=8))
    res = pod(objects)["containers"][0]["resources"]
    assert res["limits"] == {GPU_RESOURCE: "8", EFA_RESOURCE: "4"}
    assert res["requests"] == res["limits"]
    e = env(objects)
    assert e["NCCL_DEBUG"] == "INFO"
    assert e["FI_PROVIDER"] == "efa" and e["FI_EFA_USE_DEVICE_RDMA"] == "1"
    assert "NCCL_IB_DISABLE" not in e


def test_roce_resources_and_env():
    spec = FabricCheckSpec(image="i", fabric="roce", rdma_resource="rdma/rdma_shared_device_a", rdma_count=2)
    objects = render_fabric_check(spec)
    assert pod(objects)["containers"][0]["resources"]["limits"] == {
        GPU_RESOURCE: "8",
        "rdma/rdma_shared_device_a": "2",
    }
    e = env(objects)
    assert (e["NCCL_DEBUG"], e["NCCL_IB_DISABLE"], e["NCCL_IB_GID_INDEX"]) == ("INFO", "0", "3")
    assert "FI_PROVIDER" not in e


def test_extra_env_overrides_and_is_forwarded_to_every_rank():
    spec = efa_spec(extra_env={"NCCL_DEBUG": "TRACE", "NCCL_IB_HCA": "mlx5_0"})
    e = env(render_fabric_check(spec))
    assert e["NCCL_DEBUG"] == "TRACE" and e["NCCL_IB_HCA"] == "mlx5_0"
    assert "-x NCCL_IB_HCA" in run_script(spec) and "-x NCCL_DEBUG" in run_script(spec)


def test_scheduling_constraints():
    spec = efa_spec(node_selector={"disagg.dev/pool": "p4d"}, tolerations=(Toleration(key="dedicated", effect="NoExecute"),))
    p = pod(render_fabric_check(spec))
    assert p["nodeSelector"] == {"disagg.dev/pool": "p4d"}
    assert {"key": "dedicated", "operator": "Exists", "effect": "NoExecute"} in p["tolerations"]
    assert {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"} in p["tolerations"]


def test_memlock_shm_and_ssh_secret_mounts():
    objects = render_fabric_check(efa_spec(), KEYS)
    c = pod(objects)["containers"][0]
    assert "IPC_LOCK" in c["securityContext"]["capabilities"]["add"]
    vols = {v["name"]: v for v in pod(objects)["volumes"]}
    assert vols["dshm"]["emptyDir"]["medium"] == "Memory"
    secret = by_kind(objects)["Secret"]
    assert vols["ssh"]["secret"]["secretName"] == secret["metadata"]["name"] == "nccl-fabric-check-ssh"
    assert secret["stringData"]["authorized_keys"] == "ssh-ed25519 AAAAC3Nz test\n"


def test_script_runs_mpirun_over_both_pods():
    script = run_script(efa_spec(gpus_per_node=4, max_bytes="1G"))
    assert "-np 8 -H ${JOB_NAME}-0.${SERVICE}:4,${JOB_NAME}-1.${SERVICE}:4" in script
    assert "/opt/nccl-tests/build/all_reduce_perf -b 8 -e 1G -f 2 -g 1 -n 20" in script
    assert "JOB_COMPLETION_INDEX" in script


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_script_is_valid_bash():
    for spec in (efa_spec(), FabricCheckSpec(image="i", fabric="infiniband", rdma_resource="rdma/ib")):
        subprocess.run(["bash", "-n"], input=run_script(spec), text=True, check=True)


def test_yaml_round_trips_without_aliases():
    objects = render_fabric_check(efa_spec(), KEYS)
    text = manifests_yaml(objects)
    assert "&id" not in text and "*id" not in text
    assert list(yaml.safe_load_all(text)) == objects


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"fabric": "efa"}, "needs efa_interfaces >= 1"),
        ({"fabric": "infiniband"}, "needs rdma_resource"),
        ({"fabric": "roce", "rdma_resource": "rdma"}, "not an extended resource name"),
        ({"fabric": "efa", "efa_interfaces": 4, "name": "Bad_Name"}, "DNS label"),
        ({"fabric": "efa", "efa_interfaces": 4, "max_bytes": "1T"}, "nccl-tests syntax"),
        ({"fabric": "efa", "efa_interfaces": 4, "gpus_per_node": 0}, "greater than or equal to 1"),
    ],
)
def test_invalid_specs_are_refused_with_the_fix(kw, match):
    with pytest.raises(ValidationError, match=match):
        FabricCheckSpec(image="i", **kw)


def test_spec_for_a_node_pool():
    pool = SimpleNamespace(
        name="p4d",
        fabric="efa",
        gpus_per_node=8,
        efa_interfaces=4,
        rdma_resource=None,
        node_selector={"disagg.dev/pool": "p4d"},
        tolerations=(SimpleNamespace(to_k8s=lambda: {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}),),
    )
    spec = spec_for_pool(pool, image="img", namespace="inference")
    assert (spec.fabric, spec.efa_interfaces, spec.namespace, spec.expected_transport) == ("efa", 4, "inference", "efa")
    assert spec.tolerations == (Toleration(key="nvidia.com/gpu"),)
    with pytest.raises(ValueError, match="fabric 'none'"):
        spec_for_pool(SimpleNamespace(name="cpu", fabric="none"), image="img")


def test_spec_for_the_config_node_pool():
    scheduling = pytest.importorskip("components.config.scheduling")
    pool = scheduling.NodePool(
        name="ib",
        gpus_per_node=8,
        gpu_memory_gib=80,
        node_selector={"pool": "h100"},
        tolerations=(scheduling.Toleration(key="nvidia.com/gpu"),),
        fabric="infiniband",
        rdma_resource="rdma/rdma_shared_device_a",
    )
    spec = spec_for_pool(pool, image="img")
    limits = pod(render_fabric_check(spec))["containers"][0]["resources"]["limits"]
    assert limits.items() >= pool.fabric_resources().items()
    assert spec.expected_transport == "ib"
