"""TritonOrchestrator: request flow and state of one worker group type (the LWS leaders).

tritonserver with the TensorRT-LLM backend in orchestrator mode (``ORCHESTRATOR_ENV``) serves
the *orchestrator* model repository (the real ``tensorrt_llm``). It runs as the **leader** of
every LeaderWorkerSet group: this module builds the leader's container and pod template (pure
functions), and the component creates the repository ConfigMap and a ClusterIP Service that
selects only group leaders (``leaderworkerset.sigs.k8s.io/worker-index: "0"``), which is the
frontend's ``orchestrator_url`` (``<name>.<namespace>.svc.cluster.local:8001``).

What the leader container runs (``leader_script``), see also ``GroupLayout``:

1. Checks the engine (``$ENGINE_DIR/config.json`` on the shared storage) is there.
2. Single-node group: writes the hostfile ``localhost slots=<gpus + 1>`` and execs
   ``mpirun -n 1 tritonserver ...``; the backend spawns the executor ranks on the pod's GPUs.
3. Multi-node group (``podsPerGroup`` > 1):

   a. checks ``LWS_GROUP_SIZE`` is the size it was rendered for;
   b. installs the group's SSH client key and pins the workers' host key, both from the
      ``mpi_ssh_secret`` Secret (see :mod:`components.serving.mpi_ssh`);
   c. derives every worker's DNS name from the LWS headless service:
      ``LWS_LEADER_ADDRESS`` is ``<lws>-<group>.<lws>.<namespace>``, worker ``i`` is
      ``<lws>-<group>-<i>.<lws>.<namespace>``; waits (up to 15 min) until each resolves and
      accepts SSH on 2222, appending ``<worker> slots=<gpus>`` to the hostfile after the leader's
      ``<leader address> slots=<gpus + 1>``; then stops serving the key;
   d. execs one MPMD ``mpirun`` over the hostfile (``--map-by slot``): rank 0 the orchestrator
      tritonserver, ranks 1..N tritonservers loading only ``tensorrt_llm`` as its executor
      (``participant_ids``), orted started on the workers over ssh (no tree spawn: only the
      leader holds the client key).

Any rank dying ends mpirun and the leader container; ``RecreateGroupOnPodRestart`` then
recreates the whole group.
"""

from __future__ import annotations

from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field, field_validator

from components.config.deployment import ResourcesConfig
from components.config.scheduling import NodePool
from components.models.await_budget import SKIP_AWAIT
from components.serving.drain import ENDPOINT_REMOVAL_S, cpu_tier_grace_seconds
from components.serving.fabric_env import fabric_env, kv_transfer_env
from components.serving.group_layout import GroupLayout
from components.serving.labels import LWS_WORKER_INDEX_LABEL, REPOSITORY_HASH_ANNOTATION, labels, metadata
from components.serving.mpi_ssh import (
    HOSTFILE,
    WORKER_WAIT_S,
    leader_hostfile_lines,
    mpirun_base,
    mpirun_ssh_options,
    secret_mount,
    secret_volume,
)
from components.serving.pods import (
    GRPC_PORT,
    HTTP_PORT,
    LIVE_PATH,
    METRICS_PORT,
    READY_PATH,
    REPOSITORY_PATH,
    env_list,
    gpu_mounts,
    gpu_volumes,
    node_selector,
    tolerations,
    triton_ports,
)
from components.serving.probes import http_probe
from components.serving.pulumi_options import check_input_str, child_options, k8s_provider
from components.serving.repository_config_maps import (
    RepositoryConfigMap,
    config_map_data,
    content_hash,
    repository_config_maps,
    repository_files_from_config_maps,
    repository_volume,
)
from components.serving.resources import gpu_resources
from components.serving.scaled_objects import pre_stop_sleep
from components.serving.security import (
    WRITABLE_ENV,
    gpu_security_context,
    key_mounts,
    key_volumes,
    read_keys_lines,
    secure_pod_spec,
    shell_word,
    tmp_mount,
    tmp_volume,
)
from components.serving.triton.model_repository import (
    ORCHESTRATOR_ENV,
    ModelRepository,
    ModelRepositoryArgs,
    orchestrator_repository,
    repository_files,
)
from engines.llm_api import GroupKey

TYPE_TOKEN = "disagg:serving:TritonOrchestrator"
COMPONENT = "orchestrator"
REPOSITORY_VOLUME = "model-repository"


class TritonOrchestratorArgs(BaseModel):
    """One worker group type's orchestrator."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    instance: str
    """Model deployment (``app.kubernetes.io/instance``)."""
    role: GroupKey
    namespace: str
    repository: ModelRepositoryArgs
    """Rendered with ``orchestrator_repository``; ``engine_dir`` replaces its engine directory."""
    engine_dir: Any
    """``pulumi.Input[str]``: the engine directory on the shared storage (the build's output)."""
    layout: GroupLayout
    pool: NodePool
    resources: ResourcesConfig = ResourcesConfig(cpu="8", memory="32Gi")
    """CPU/memory of the leader container (orchestrator plus the first node's executor ranks)."""
    image: str
    claim_name: str
    """ReadWriteMany PVC with the engines, mounted read-only at ``mount_path``."""
    mount_path: str = "/models"
    shm_size: str = "64Gi"
    kv_cache_transfer: bool = False
    mpi_ssh_secret: str = "mpi-ssh"
    """Secret with the group's SSH keys (``mpi_ssh.SECRET_KEYS``), mounted in multi-node groups."""
    """Prefill/decode group: KV caches move between context and generation executors (UCX)."""
    startup_timeout_s: int = Field(default=1800, ge=60)
    """Engine load budget before the startup probe fails (70B over FSx takes minutes)."""
    termination_grace_period_s: int = Field(default=90, ge=10)
    """Used when ``drain_seconds`` is None (Triton then gets grace − 30 s to finish)."""
    drain_seconds: int | None = Field(default=None, ge=0)
    """The longest stream: the leader keeps serving through the endpoint removal (preStop), then
    Triton's ``--exit-timeout-secs`` gives the streams this long; grace covers both."""
    restricted_api_args: tuple[str, ...] = ()
    """``security.triton_restricted_api_args``: admin APIs behind a key ($(VAR) from a Secret)."""
    secret_keys: dict[str, tuple[str, str]] = {}
    """Variable -> (Secret name, key) the restricted-API arguments' ``$(VAR)`` stand for: mounted
    as files and read by the leader's bash (never environment variables, never forwarded to
    other ranks)."""

    @field_validator("engine_dir")
    @classmethod
    def _engine_dir(cls, value: Any) -> Any:
        return check_input_str(value, "engine_dir")


def with_engine_dir(repository: ModelRepositoryArgs, engine_dir: str) -> ModelRepositoryArgs:
    tensorrt_llm = repository.tensorrt_llm.model_copy(update={"engine_dir": engine_dir})
    return repository.model_copy(update={"tensorrt_llm": tensorrt_llm})


def orchestrator_model_repository(repository: ModelRepositoryArgs, layout: GroupLayout) -> ModelRepository:
    """The orchestrator repository for ``layout`` (``participant_ids`` when mpirun starts the ranks)."""
    tensorrt_llm = repository.tensorrt_llm.model_copy(update={"participant_ids": layout.participant_ids()})
    return orchestrator_repository(repository.model_copy(update={"tensorrt_llm": tensorrt_llm}))


def orchestrator_config_maps(
    name: str, repository: ModelRepositoryArgs, layout: GroupLayout
) -> list[RepositoryConfigMap]:
    return repository_config_maps(name, repository_files(orchestrator_model_repository(repository, layout)))


def leader_labels(instance: str, role: str) -> dict[str, str]:
    """Labels of the leader pods (the orchestrators)."""
    return labels(instance, COMPONENT, role)


def orchestrator_server_args(
    layout: GroupLayout, exit_timeout_s: int, restricted: tuple[str, ...] = ()
) -> list[str]:
    """Rank 0: the serving tritonserver. It keeps GPU memory for the executors (no CUDA pools);
    ``restricted``: the restricted-API arguments (admin APIs behind a key)."""
    return [
        "tritonserver",
        f"--model-repository={REPOSITORY_PATH}",
        f"--http-port={HTTP_PORT}",
        f"--grpc-port={GRPC_PORT}",
        f"--metrics-port={METRICS_PORT}",
        "--disable-auto-complete-config",
        "--strict-readiness=true",
        "--allow-gpu-metrics=false",
        "--pinned-memory-pool-byte-size=0",
        "--enable-peer-access=false",
        *[f"--cuda-memory-pool-byte-size={gpu}:0" for gpu in range(layout.gpus_per_pod)],
        f"--exit-timeout-secs={exit_timeout_s}",
        *restricted,
    ]


def executor_rank_server_args() -> list[str]:
    """Ranks 1..N of a multi-node group: tritonservers that only host the tensorrt_llm executor."""
    return [
        "tritonserver",
        f"--model-repository={REPOSITORY_PATH}",
        "--model-control-mode=explicit",
        "--load-model=tensorrt_llm",
        "--allow-http=false",
        "--allow-grpc=false",
        "--allow-metrics=false",
        "--disable-auto-complete-config",
    ]


def executor_env(pool: NodePool, layout: GroupLayout, engine_dir: str, kv_cache_transfer: bool) -> dict[str, str]:
    """Environment of every process of a worker group (leader and worker pods alike).

    ``kv_cache_transfer``: the group is a prefill or decode group of a disaggregated deployment;
    TRT-LLM then moves KV caches between the context and generation executors over UCX.
    """
    env = {**fabric_env(pool), **ORCHESTRATOR_ENV, **WRITABLE_ENV}
    env["TRTLLM_ORCHESTRATOR_SPAWN_PROCESSES"] = "1" if layout.spawn else "0"
    env["ENGINE_DIR"] = engine_dir
    if kv_cache_transfer:
        env["TRTLLM_USE_UCX_KVCACHE"] = "1"
        if pool.fabric in ("infiniband", "roce"):  # UCX on the RDMA device (EFA: UCX has no transport)
            env.update(kv_transfer_env(pool, "UCX"))
    return env


def mpirun_argv(
    layout: GroupLayout, forwarded_env: list[str], exit_timeout_s: int, restricted: tuple[str, ...] = ()
) -> list[str]:
    """The leader's mpirun: ranks placed slot by slot over the hostfile, leader first."""
    argv = mpirun_base(HOSTFILE)
    if layout.multi_node:
        argv += mpirun_ssh_options()
    for name in ["PATH", "LD_LIBRARY_PATH", *sorted(forwarded_env)]:
        argv += ["-x", name]
    argv += ["-n", "1", *orchestrator_server_args(layout, exit_timeout_s, restricted)]
    if layout.multi_node:
        argv += [":", "-n", str(layout.world_size), *executor_rank_server_args()]
    return argv


def leader_script(
    layout: GroupLayout, mpirun: list[str], worker_wait_s: int = WORKER_WAIT_S,
    keys: dict[str, tuple[str, str]] | None = None,
) -> str:
    """bash run by the leader container (``bash -c``); see the module docstring. ``keys``: key
    files read into shell variables that the arguments' ``$(VAR)`` expand."""
    lines = [
        "set -euo pipefail",
        'log() { echo "[orchestrator] $*" >&2; }',
        'if [ ! -f "$ENGINE_DIR/config.json" ]; then',
        '  log "no TensorRT-LLM engine in $ENGINE_DIR (config.json missing): check the engine build Job '
        'and the shared storage mount"',
        "  exit 1",
        "fi",
        *leader_hostfile_lines(layout, layout.leader_slots(), worker_wait_s),
        f'log "starting {layout.world_size} executor ranks: $(tr "\\n" " " < {HOSTFILE})"',
        *read_keys_lines(keys or {}),
        "exec " + " ".join(shell_word(a) for a in mpirun),
    ]
    return "\n".join(lines) + "\n"


def leader_pod_template(
    args: TritonOrchestratorArgs, config_maps: list[RepositoryConfigMap], engine_dir: str
) -> dict:
    """``leaderTemplate`` of the group's LeaderWorkerSet."""
    layout = args.layout
    env = executor_env(args.pool, layout, engine_dir, args.kv_cache_transfer)
    grace, exit_timeout = args.termination_grace_period_s, args.termination_grace_period_s - 30
    if args.drain_seconds is not None:
        grace, exit_timeout = cpu_tier_grace_seconds(args.drain_seconds), args.drain_seconds
    # the secret variables are not forwarded to the other ranks (only rank 0 serves HTTP/gRPC)
    script = leader_script(
        layout, mpirun_argv(layout, list(env), exit_timeout, args.restricted_api_args), keys=args.secret_keys
    )
    mounts = [*gpu_mounts(REPOSITORY_VOLUME, args.mount_path), tmp_mount()]
    volumes = [
        *gpu_volumes(repository_volume(REPOSITORY_VOLUME, config_maps), args.claim_name, args.shm_size),
        tmp_volume(),
    ]
    if layout.multi_node:
        mounts.append(secret_mount())
        volumes.append(secret_volume(args.mpi_ssh_secret))
    mounts += key_mounts(args.secret_keys)
    volumes += key_volumes(args.secret_keys)
    container = {
        "name": "triton",
        "image": args.image,
        "command": ["/bin/bash", "-c", script],
        "env": env_list(env),
        "ports": triton_ports(),
        "resources": gpu_resources(
            args.pool, layout.gpus_per_pod, args.resources.cpu, args.resources.memory, args.shm_size
        ),
        "startupProbe": http_probe(READY_PATH, period=10, failure_threshold=args.startup_timeout_s // 10),
        "readinessProbe": http_probe(READY_PATH, period=10, failure_threshold=3),
        "livenessProbe": http_probe(LIVE_PATH, period=15, failure_threshold=4),
        "volumeMounts": mounts,
        "securityContext": gpu_security_context(args.pool),
    }
    if args.drain_seconds is not None:
        container["lifecycle"] = pre_stop_sleep(ENDPOINT_REMOVAL_S)
    files = repository_files_from_config_maps(config_maps)
    return {
        "metadata": {
            "labels": leader_labels(args.instance, args.role),
            "annotations": {REPOSITORY_HASH_ANNOTATION: content_hash(files)},
        },
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


def orchestrator_service_manifest(name: str, args: TritonOrchestratorArgs) -> dict:
    """ClusterIP Service over the group leaders only (worker pods run no Triton endpoint)."""
    selector = {**leader_labels(args.instance, args.role), LWS_WORKER_INDEX_LABEL: "0"}
    # skipAwait: the leaders are GPU pods (GPU nodes, engine loading, perhaps a Capacity Block
    # that has not started); pulumi up must not wait for them through this Service.
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name, args.namespace, leader_labels(args.instance, args.role), SKIP_AWAIT),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [
                {"name": port, "port": number, "targetPort": port, "protocol": "TCP"}
                for port, number in (("http", HTTP_PORT), ("grpc", GRPC_PORT), ("metrics", METRICS_PORT))
            ],
        },
    }


def orchestrator_url(name: str, namespace: str) -> str:
    """gRPC ``host:port`` of the orchestrator Service (the frontend proxy's target)."""
    return f"{name}.{namespace}.svc.cluster.local:{GRPC_PORT}"


class TritonOrchestrator(pulumi.ComponentResource):
    """Orchestrator tier of one worker group type: repository ConfigMap, leader template, Service."""

    config_maps: list[k8s.core.v1.ConfigMap]
    service: k8s.core.v1.Service
    leader_template: pulumi.Output[dict]
    """``leaderTemplate`` for the group's LeaderWorkerSet (known once the engine directory is)."""
    repository_volume: dict
    """The repository's projected volume (multi-node worker pods mount it too)."""
    url: str
    """``<name>.<namespace>.svc.cluster.local:8001``."""

    def __init__(self, name: str, args: TritonOrchestratorArgs, opts: pulumi.ResourceOptions | None = None):
        provider = k8s_provider(opts, f"TritonOrchestrator '{name}'")
        layout_maps = orchestrator_config_maps(name, args.repository, args.layout)
        super().__init__(TYPE_TOKEN, name, None, opts)

        def child(**extra) -> pulumi.ResourceOptions:
            return child_options(self, provider, opts, **extra)

        engine_dir = pulumi.Output.from_input(args.engine_dir)
        maps = engine_dir.apply(
            lambda d: orchestrator_config_maps(name, with_engine_dir(args.repository, d), args.layout)
        )
        object_labels = leader_labels(args.instance, args.role)
        self.config_maps = [
            k8s.core.v1.ConfigMap(
                f"{name}-repository-{planned.name[len(name) + 1 :]}",
                metadata=cast(
                    Any,
                    metadata(
                        planned.name, args.namespace, {**object_labels, "disagg.dev/model": planned.model}
                    ),
                ),
                data=config_map_data(maps, planned.name),
                opts=child(),
            )
            for planned in layout_maps
        ]
        self.repository_volume = repository_volume(REPOSITORY_VOLUME, layout_maps)
        self.leader_template = pulumi.Output.all(maps, engine_dir).apply(
            lambda values: leader_pod_template(args, values[0], values[1])
        )
        service = orchestrator_service_manifest(name, args)
        self.service = k8s.core.v1.Service(
            f"{name}-service", metadata=service["metadata"], spec=service["spec"], opts=child()
        )
        self.url = orchestrator_url(name, args.namespace)
        self.register_outputs({"url": self.url, "leader_template": self.leader_template})
