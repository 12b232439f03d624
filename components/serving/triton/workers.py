"""TensorParallelWorkers: the GPU groups of one worker group type, as one LeaderWorkerSet.

``replicas`` = groups (independent copies of the model), ``leaderWorkerTemplate.size`` =
podsPerGroup (one pod per node). The leader template is the orchestrator's
(``TritonOrchestrator.leader_template``: tritonserver + the first node's executor ranks); the
worker template is built here. Every pod requests ``gpusPerPod`` GPUs and the same share of the
node's fabric (EFA interfaces or the RDMA device), gets the fabric's NCCL/libfabric env,
IPC_LOCK for RDMA, a RAM-backed ``/dev/shm`` of ``shmSize``, the shared storage read-only at
``mount_path`` (engines are read from ``engine_dir`` there) and the pool's nodeSelector and
tolerations.

Worker pods (index 1..podsPerGroup-1 of multi-node groups) run the hardened, non-root sshd of
:mod:`components.serving.mpi_ssh` on port 2222 (keys from the ``mpi_ssh_secret`` Secret, no root
login, ``PermitUserEnvironment no``) and nothing else: the leader's mpirun starts orted and the
executor ranks through it. The images must contain openssh-server for multi-node groups.

Group semantics: ``RecreateGroupOnPodRestart`` (a failed pod restarts its whole group, as the
MPI job cannot lose a rank), ``startupPolicy: LeaderCreated`` (workers start with the leader, which
waits for their sshd), exclusive placement of a group in its topology domain via the
``leaderworkerset.sigs.k8s.io/exclusive-topology`` annotation when a placement key applies.

Scaling: a HorizontalPodAutoscaler on the LWS *scale* subresource (its selector picks the leader
pods, whose Triton exports the TRT-LLM metrics) when ``autoscaling.enabled``, bounded by
minGroups/maxGroups; a PodDisruptionBudget lets at most one pod of the set be evicted at a time.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from components.config.deployment import ResourcesConfig, WorkerGroupConfig
from components.config.scheduling import NodePool
from components.platform.autoscaling_metrics import KV_CACHE_UTILIZATION, QUEUE_TIME_MS, WAITING_REQUESTS
from components.platform.keda import lws_scaled_object
from components.serving.autoscaling import pod_disruption_budget_manifest, pods_metric
from components.serving.drain import worker_grace_seconds, worker_prestop_seconds
from components.serving.group_layout import GroupLayout
from components.serving.labels import (
    LWS_API_VERSION,
    LWS_EXCLUSIVE_TOPOLOGY,
    LWS_KIND,
    LWS_NAME_LABEL,
    labels,
    metadata,
)
from components.serving.mpi_ssh import SSH_PORT, secret_mount, secret_volume, sshd_script
from components.serving.pods import env_list, gpu_mounts, gpu_volumes, node_selector, tolerations
from components.serving.probes import tcp_probe
from components.serving.pulumi_options import check_input_str, child_options, k8s_provider
from components.serving.resources import gpu_resources
from components.serving.scaled_objects import pre_stop_sleep, scaled_object
from components.serving.security import gpu_security_context, secure_pod_spec, tmp_mount, tmp_volume
from components.serving.triton.orchestrator import executor_env
from engines.llm_api import GroupKey

TYPE_TOKEN = "disagg:serving:TensorParallelWorkers"
COMPONENT = "executor"
"""``app.kubernetes.io/component`` of the worker pods (leaders are 'orchestrator')."""
SET_COMPONENT = "tensor-parallel-workers"
HOSTNAME_KEY = "kubernetes.io/hostname"
EFA_PLACEMENT_KEY = "topology.k8s.aws/network-node-layer-3"
"""EKS node label: the network node closest to the instance (nodes sharing it are fewest hops apart)."""
def default_placement_key(pool: NodePool, layout: GroupLayout) -> str | None:
    """Topology key a group gets exclusively (the LWS exclusive-topology annotation), or None.

    * single-node groups owning whole nodes: ``kubernetes.io/hostname`` (no other group's pod on
      the node); groups using part of a node (e.g. two 4-GPU groups per 8-GPU node): none, so
      they can share it;
    * multi-node groups on EFA: ``topology.k8s.aws/network-node-layer-3``, so the group's nodes
      hang off the same network node and no other group competes for it (needs enough such
      domains in the pool: one per group);
    * multi-node groups elsewhere: none (no standard topology label on IB/RoCE clusters).
    """
    if not layout.multi_node:
        return HOSTNAME_KEY if layout.gpus_per_pod == pool.gpus_per_node else None
    return EFA_PLACEMENT_KEY if pool.fabric == "efa" else None


class TensorParallelWorkersArgs(BaseModel):
    """One worker group type (``workers``, or ``prefill`` / ``decode``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    instance: str
    role: GroupKey
    namespace: str
    group: WorkerGroupConfig
    layout: GroupLayout
    pool: NodePool
    leader_template: Any
    """``pulumi.Input[dict]``: the orchestrator's leader pod template."""
    repository_volume: dict
    """The orchestrator repository's projected volume (ranks on worker pods read it)."""
    engine_dir: Any
    """``pulumi.Input[str]``: engine directory on the shared storage."""
    resources: ResourcesConfig = ResourcesConfig(cpu="8", memory="32Gi")
    """CPU/memory of a worker container (its node's executor ranks)."""
    image: str
    claim_name: str
    mount_path: str = "/models"
    kv_cache_transfer: bool = False
    mpi_ssh_secret: str = "mpi-ssh"
    """Secret with the group's SSH keys (``mpi_ssh.SECRET_KEYS``), mounted in multi-node groups."""
    placement_key: str | None = None
    """Exclusive-topology key (see ``default_placement_key``); None: no exclusivity."""
    target_waiting_requests: float = Field(default=4, gt=0)
    """Average requests waiting in a group's batch manager above which the HPA adds groups."""
    startup_timeout_s: int = Field(default=1800, ge=60)
    keda_prometheus_url: str | None = None
    """Autoscale with a KEDA ScaledObject querying this Prometheus instead of an HPA."""
    drain_seconds: int | None = Field(default=None, ge=0)
    """The longest stream: worker pods stay (preStop) while the leader drains it; None: 30 s grace."""

    @field_validator("engine_dir")
    @classmethod
    def _engine_dir(cls, value: Any) -> Any:
        return check_input_str(value, "engine_dir")

    @model_validator(mode="after")
    def _consistent(self) -> TensorParallelWorkersArgs:
        gpus = self.group.gpus_per_pod if self.group.gpus_per_pod is not None else self.pool.gpus_per_node
        if (self.layout.pods_per_group, self.layout.gpus_per_pod) != (self.group.pods_per_group, gpus):
            raise ValueError(
                f"layout {self.layout.pods_per_group} pods x {self.layout.gpus_per_pod} GPUs differs from "
                f"{self.role}.podsPerGroup {self.group.pods_per_group} x gpusPerPod {gpus}: build the "
                "layout from the group (group_layout)"
            )
        if self.group.autoscaling.enabled and min_groups(self.group) < 1:
            raise ValueError(
                f"{self.role}.minGroups is 0 but autoscaling is enabled (an HPA keeps at least one "
                f"group): set {self.role}.minGroups to 1 or more, or disable autoscaling"
            )
        return self


def min_groups(group: WorkerGroupConfig) -> int:
    return group.min_groups if group.min_groups is not None else group.groups


def max_groups(group: WorkerGroupConfig) -> int:
    return group.max_groups if group.max_groups is not None else group.groups


def worker_labels(instance: str, role: str) -> dict[str, str]:
    return labels(instance, COMPONENT, role)


def worker_pod_template(args: TensorParallelWorkersArgs, engine_dir: str) -> dict:
    """``workerTemplate``: the non-leader pods of a group (none when podsPerGroup is 1)."""
    layout = args.layout
    container = {
        "name": "mpi-worker",
        "image": args.image,
        "command": ["/bin/bash", "-c", sshd_script()],
        "env": env_list(executor_env(args.pool, layout, engine_dir, args.kv_cache_transfer)),
        "ports": [{"name": "ssh", "containerPort": SSH_PORT, "protocol": "TCP"}],
        "resources": gpu_resources(
            args.pool, layout.gpus_per_pod, args.resources.cpu, args.resources.memory, args.group.shm_size
        ),
        "startupProbe": tcp_probe("ssh", period=5, failure_threshold=args.startup_timeout_s // 5),
        "readinessProbe": tcp_probe("ssh", period=10, failure_threshold=3),
        "livenessProbe": tcp_probe("ssh", period=20, failure_threshold=3),
        "volumeMounts": [*gpu_mounts(args.repository_volume["name"], args.mount_path), tmp_mount(), secret_mount()],
        "securityContext": gpu_security_context(args.pool),
    }
    grace = 30
    if args.drain_seconds is not None:  # the executor ranks here serve the leader's streams
        container["lifecycle"] = pre_stop_sleep(worker_prestop_seconds(args.drain_seconds))
        grace = worker_grace_seconds(args.drain_seconds)
    volumes = [
        *gpu_volumes(args.repository_volume, args.claim_name, args.group.shm_size),
        tmp_volume(),
        secret_volume(args.mpi_ssh_secret),
    ]
    return {
        "metadata": {"labels": worker_labels(args.instance, args.role)},
        "spec": secure_pod_spec(
            {
                "containers": [container],
                "volumes": volumes,
                "nodeSelector": node_selector(args.pool),
                "tolerations": tolerations(args.pool),
                "enableServiceLinks": False,
                "terminationGracePeriodSeconds": grace,
            }
        ),
    }


def leader_worker_set_manifest(name: str, args: TensorParallelWorkersArgs, leader_template: dict, worker_template: dict) -> dict:
    """The LeaderWorkerSet of the worker group type."""
    annotations = {LWS_EXCLUSIVE_TOPOLOGY: args.placement_key} if args.placement_key else None
    return {
        "apiVersion": LWS_API_VERSION,
        "kind": LWS_KIND,
        "metadata": metadata(name, args.namespace, labels(args.instance, SET_COMPONENT, args.role), annotations),
        "spec": {
            "replicas": args.group.groups,
            "startupPolicy": "LeaderCreated",
            "networkConfig": {"subdomainPolicy": "Shared"},
            "rolloutStrategy": {
                "type": "RollingUpdate",
                "rollingUpdateConfiguration": {"maxUnavailable": 1, "maxSurge": 0},
            },
            "leaderWorkerTemplate": {
                "size": args.layout.pods_per_group,
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": leader_template,
                "workerTemplate": worker_template,
            },
        },
    }


def workers_hpa_manifest(name: str, args: TensorParallelWorkersArgs) -> dict | None:
    """HPA on the LWS scale subresource (None unless ``autoscaling.enabled``).

    Metrics are per leader pod (the scale subresource's selector): KV-cache utilization and
    waiting requests of the TRT-LLM batch manager, and Triton queue time. Adding a group loads
    an engine for minutes, so scale-up adds one group per 5 minutes and scale-down waits 10.
    """
    autoscaling = args.group.autoscaling
    if not autoscaling.enabled or args.keda_prometheus_url is not None:
        return None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(name, args.namespace, labels(args.instance, SET_COMPONENT, args.role)),
        "spec": {
            "scaleTargetRef": {"apiVersion": LWS_API_VERSION, "kind": LWS_KIND, "name": name},
            "minReplicas": min_groups(args.group),
            "maxReplicas": max_groups(args.group),
            "metrics": [
                pods_metric(KV_CACHE_UTILIZATION, autoscaling.target_kv_cache_utilization),
                pods_metric(WAITING_REQUESTS, args.target_waiting_requests),
                pods_metric(QUEUE_TIME_MS, autoscaling.target_queue_time_ms),
            ],
            "behavior": {
                "scaleUp": {
                    "stabilizationWindowSeconds": 60,
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}],
                },
                "scaleDown": {
                    "stabilizationWindowSeconds": 600,
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 600}],
                },
            },
        },
    }


def workers_scaled_object_manifest(name: str, args: TensorParallelWorkersArgs) -> dict | None:
    """KEDA ScaledObject on the LWS scale subresource from the leaders' TRT-LLM backend gauges
    (None: no autoscaling, or no KEDA)."""
    autoscaling = args.group.autoscaling
    if not autoscaling.enabled or args.keda_prometheus_url is None:
        return None
    return lws_scaled_object(
        name, args.namespace, name, min_groups(args.group), max_groups(args.group), args.keda_prometheus_url,
        args.target_waiting_requests, autoscaling.target_kv_cache_utilization,
        args.drain_seconds if args.drain_seconds is not None else 600,
        labels(args.instance, SET_COMPONENT, args.role), server="triton",
    )  # fmt: skip


def workers_pdb_manifest(name: str, args: TensorParallelWorkersArgs) -> dict:
    """At most one pod of the set evicted at a time (a pod's eviction restarts its whole group)."""
    return pod_disruption_budget_manifest(
        name,
        args.namespace,
        labels(args.instance, SET_COMPONENT, args.role),
        {LWS_NAME_LABEL: name},
        max_unavailable=1,
    )


class TensorParallelWorkers(pulumi.ComponentResource):
    """LeaderWorkerSet (+ HPA, PDB) of one worker group type."""

    leader_worker_set: k8s.apiextensions.CustomResource
    hpa: k8s.autoscaling.v2.HorizontalPodAutoscaler | None
    scaled_object: k8s.apiextensions.CustomResource | None
    pdb: k8s.policy.v1.PodDisruptionBudget
    set_name: str
    """Kubernetes name of the LeaderWorkerSet."""

    def __init__(self, name: str, args: TensorParallelWorkersArgs, opts: pulumi.ResourceOptions | None = None):
        provider = k8s_provider(opts, f"TensorParallelWorkers '{name}'")
        super().__init__(TYPE_TOKEN, name, None, opts)

        def child(**extra) -> pulumi.ResourceOptions:
            return child_options(self, provider, opts, **extra)

        self.set_name = name
        manifest = pulumi.Output.all(args.leader_template, args.engine_dir).apply(
            lambda values: leader_worker_set_manifest(
                name, args, values[0], worker_pod_template(args, values[1])
            )
        )
        autoscaled = args.group.autoscaling.enabled
        meta = leader_worker_set_manifest(name, args, {}, {})["metadata"]
        self.leader_worker_set = k8s.apiextensions.CustomResource(
            f"{name}-leaderworkerset",
            api_version=LWS_API_VERSION,
            kind=LWS_KIND,
            metadata=meta,
            spec=manifest.apply(lambda m: m["spec"]),
            opts=child(ignore_changes=["spec.replicas"] if autoscaled else None),
        )
        hpa = workers_hpa_manifest(name, args)
        self.hpa = None
        if hpa is not None:
            self.hpa = k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-hpa",
                metadata=hpa["metadata"],
                spec=hpa["spec"],
                opts=child(depends_on=[self.leader_worker_set]),
            )
        scaled = workers_scaled_object_manifest(name, args)
        self.scaled_object = None
        if scaled is not None:
            self.scaled_object = scaled_object(name, scaled, child(depends_on=[self.leader_worker_set]))
        pdb = workers_pdb_manifest(name, args)
        self.pdb = k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb", metadata=pdb["metadata"], spec=pdb["spec"], opts=child()
        )
        self.register_outputs({"set_name": self.set_name})
