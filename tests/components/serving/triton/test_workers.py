"""TensorParallelWorkers: the LeaderWorkerSet (schema-checked), worker pods, HPA, PDB, component."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pytest
from pydantic import ValidationError

from components.config.scheduling import NodePool
from components.platform.autoscaling_metrics import KV_CACHE_UTILIZATION, QUEUE_TIME_MS, WAITING_REQUESTS
from components.serving.group_layout import GroupLayout
from components.serving.triton.orchestrator import leader_pod_template, orchestrator_config_maps
from components.serving.triton.workers import (
    TensorParallelWorkers,
    default_placement_key,
    leader_worker_set_manifest,
    worker_pod_template,
    workers_hpa_manifest,
    workers_pdb_manifest,
)

H100 = NodePool("h100", 8, 80, {"disagg.dev/pool": "h100"}, fabric="efa", efa_interfaces=32, instance_type="p5.48xlarge")
IB = NodePool("dgx", 8, 80, {"p": "dgx"}, fabric="infiniband", rdma_resource="rdma/rdma_shared_device_a")


def real_leader_template(orchestrator_args, pods, gpus) -> dict:
    args = orchestrator_args(pods=pods, gpus=gpus)
    return leader_pod_template(args, orchestrator_config_maps("llama-orchestrator", args.repository, args.layout),
                               "/models/engines/m/h")  # fmt: skip


def lws_of(args, leader=None) -> dict:
    leader = leader or {"metadata": {"labels": {"x": "y"}}, "spec": {"containers": []}}
    return leader_worker_set_manifest("llama-workers", args, leader, worker_pod_template(args, "/models/engines/m/h"))


def worker_container(args) -> dict:
    (container,) = worker_pod_template(args, "/models/engines/m/h")["spec"]["containers"]
    return container


# ---- LeaderWorkerSet ------------------------------------------------------------------------


def test_lws_replicas_are_groups_and_size_is_pods_per_group(workers_args):
    spec = lws_of(workers_args(pods=2, group={"groups": 3}))["spec"]
    assert spec["replicas"] == 3
    assert spec["leaderWorkerTemplate"]["size"] == 2
    assert spec["leaderWorkerTemplate"]["restartPolicy"] == "RecreateGroupOnPodRestart"
    assert spec["startupPolicy"] == "LeaderCreated"
    assert spec["rolloutStrategy"]["rollingUpdateConfiguration"] == {"maxUnavailable": 1, "maxSurge": 0}


def test_lws_embeds_the_orchestrator_leader_template(workers_args, orchestrator_args):
    leader = real_leader_template(orchestrator_args, 2, 8)
    lws = lws_of(workers_args(pods=2), leader)
    assert lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"] == leader
    assert lws["apiVersion"] == "leaderworkerset.x-k8s.io/v1" and lws["kind"] == "LeaderWorkerSet"


@pytest.mark.parametrize(("pods", "gpus", "pool"), [(1, 8, H100), (1, 4, H100), (2, 8, H100), (2, 8, IB)])
def test_rendered_lws_matches_the_crd_schema(workers_args, orchestrator_args, lws_errors, pods, gpus, pool):
    leader = real_leader_template(orchestrator_args, pods, gpus)
    args = workers_args(pods=pods, gpus=gpus, pool=pool, placement_key=default_placement_key(pool, GroupLayout(pods, gpus)))
    assert lws_errors(lws_of(args, leader)) == []


def test_schema_check_catches_misspelt_fields(workers_args, lws_errors):
    lws = lws_of(workers_args())
    lws["spec"]["leaderWorkerTemplate"]["restartPolicy"] = "Always"
    lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["volumeMount"] = []
    errors = lws_errors(lws)
    assert any("restartPolicy" in e for e in errors)
    assert any("volumeMount" in e for e in errors)


def test_exclusive_topology_annotation_on_the_placement_key(workers_args):
    args = workers_args(placement_key="topology.k8s.aws/network-node-layer-3")
    annotations = lws_of(args)["metadata"]["annotations"]
    assert annotations == {"leaderworkerset.sigs.k8s.io/exclusive-topology": "topology.k8s.aws/network-node-layer-3"}
    assert "annotations" not in lws_of(workers_args(placement_key=None))["metadata"]


def test_default_placement_keys():
    assert default_placement_key(H100, GroupLayout(2, 8)) == "topology.k8s.aws/network-node-layer-3"
    assert default_placement_key(H100, GroupLayout(1, 8)) == "kubernetes.io/hostname"
    assert default_placement_key(H100, GroupLayout(1, 4)) is None  # two groups may share a node
    assert default_placement_key(IB, GroupLayout(2, 8)) is None


# ---- worker pods ----------------------------------------------------------------------------


def test_workers_request_gpus_and_their_fabric_share(workers_args):
    resources = worker_container(workers_args(pods=2, gpus=8))["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "8"
    assert resources["limits"]["vpc.amazonaws.com/efa"] == "32"
    assert (resources["requests"]["memory"], resources["limits"]["memory"]) == ("32Gi", "96Gi")  # 64Gi shm
    ib = worker_container(workers_args(pods=2, gpus=8, pool=IB))["resources"]["limits"]
    assert ib["rdma/rdma_shared_device_a"] == "1" and "vpc.amazonaws.com/efa" not in ib


def test_workers_get_fabric_env_and_ipc_lock(workers_args):
    c = worker_container(workers_args(kv_cache_transfer=True))
    env = {e["name"]: e["value"] for e in c["env"]}
    assert (env["FI_PROVIDER"], env["FI_EFA_USE_DEVICE_RDMA"], env["NCCL_SOCKET_IFNAME"]) == ("efa", "1", "eth0")
    assert env["TRTLLM_ORCHESTRATOR"] == "1" and env["TRTLLM_ORCHESTRATOR_SPAWN_PROCESSES"] == "0"
    assert env["TRTLLM_USE_UCX_KVCACHE"] == "1"
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["IPC_LOCK"]}
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    ib_env = {e["name"]: e["value"] for e in worker_container(workers_args(pool=IB))["env"]}
    assert ib_env["NCCL_IB_HCA"] == "mlx5" and "FI_PROVIDER" not in ib_env


def test_worker_volumes_shm_storage_and_repository(workers_args):
    args = workers_args(group={"shmSize": "96Gi"}, mount_path="/mnt/models")
    spec = worker_pod_template(args, "/models/engines/m/h")["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "96Gi"}
    assert volumes["store"]["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    assert volumes["model-repository"] == args.repository_volume
    mounts = {m["name"]: m for m in spec["containers"][0]["volumeMounts"]}
    assert mounts["store"] == {"name": "store", "mountPath": "/mnt/models", "readOnly": True}
    assert mounts["dshm"]["mountPath"] == "/dev/shm"


def test_worker_probes_watch_sshd(workers_args):
    c = worker_container(workers_args(startup_timeout_s=600))
    assert c["ports"] == [{"name": "ssh", "containerPort": 2222, "protocol": "TCP"}]
    assert c["startupProbe"]["tcpSocket"] == {"port": "ssh"}
    assert c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"] == 600
    assert c["readinessProbe"]["tcpSocket"] == {"port": "ssh"}


def test_workers_are_scheduled_on_the_pool(workers_args):
    spec = worker_pod_template(workers_args(), "/e")["spec"]
    assert spec["nodeSelector"] == {"disagg.dev/pool": "h100"}
    labels = worker_pod_template(workers_args(role="decode"), "/e")["metadata"]["labels"]
    assert (labels["app.kubernetes.io/component"], labels["disagg.dev/role"]) == ("executor", "decode")


def test_layout_must_match_the_group(workers_args):
    with pytest.raises(ValidationError, match="build the layout from the group"):
        workers_args(pods=2, gpus=8, layout=GroupLayout(1, 8))


# ---- HPA and PDB ----------------------------------------------------------------------------


def test_no_hpa_without_autoscaling(workers_args):
    assert workers_hpa_manifest("llama-workers", workers_args()) is None


def test_hpa_targets_the_lws_scale_subresource(workers_args):
    group = {"groups": 2, "minGroups": 1, "maxGroups": 5,
             "autoscaling": {"enabled": True, "targetKvCacheUtilization": 0.75, "targetQueueTimeMs": 40}}  # fmt: skip
    hpa = workers_hpa_manifest("llama-workers", workers_args(group=group, target_waiting_requests=6))
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "name": "llama-workers",
    }
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 5)
    targets = {m["pods"]["metric"]["name"]: m["pods"]["target"]["averageValue"] for m in spec["metrics"]}
    assert targets == {KV_CACHE_UTILIZATION: "750m", WAITING_REQUESTS: "6", QUEUE_TIME_MS: "40"}
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 600


def test_hpa_bounds_default_to_groups(workers_args):
    hpa = workers_hpa_manifest("w", workers_args(group={"groups": 2, "autoscaling": {"enabled": True}}))
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 2)


def test_autoscaling_needs_at_least_one_group(workers_args):
    # refused by the group's configuration already (the component's own check stays behind it)
    with pytest.raises(ValidationError, match="minGroups is 0 but autoscaling is enabled"):
        workers_args(group={"groups": 1, "minGroups": 0, "autoscaling": {"enabled": True}})


def test_pdb_covers_every_pod_of_the_set(workers_args):
    pdb = workers_pdb_manifest("llama-workers", workers_args())
    assert pdb["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {"leaderworkerset.sigs.k8s.io/name": "llama-workers"}},
    }


# ---- the component under mocks --------------------------------------------------------------


@pulumi.runtime.test
def test_component_creates_lws_hpa_and_pdb(mocks, workers_args):
    provider = k8s.Provider("k8s", kubeconfig="{}")
    leader = pulumi.Output.from_input({"metadata": {"labels": {"leader": "yes"}}, "spec": {"containers": []}})
    args = workers_args(leader_template=leader, group={"groups": 2, "maxGroups": 3, "autoscaling": {"enabled": True}})
    workers = TensorParallelWorkers("llama-workers", args, pulumi.ResourceOptions(provider=provider))

    def check(_):
        children = {r.name: r for r in mocks.recorded.values() if r.parent_name == "llama-workers"}
        assert sorted(children) == ["llama-workers-hpa", "llama-workers-leaderworkerset", "llama-workers-pdb"]
        assert all("pulumi:providers:kubernetes::k8s::" in c.provider for c in children.values())
        lws = children["llama-workers-leaderworkerset"]
        assert lws.type == "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet"
        assert lws.inputs["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["metadata"]["labels"] == {"leader": "yes"}
        assert lws.inputs["spec"]["replicas"] == 2
        hpa = children["llama-workers-hpa"].inputs["spec"]
        assert hpa["scaleTargetRef"]["kind"] == "LeaderWorkerSet" and hpa["maxReplicas"] == 3

    return pulumi.Output.all(workers.leader_worker_set.urn, workers.hpa.urn, workers.pdb.urn).apply(check)
