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
   b. generates the group's SSH key (ed25519, in the pod's emptyDir) and serves the *public*
      key on port 2223 (``python3 -m http.server``) for the worker pods, which install it as
      ``authorized_keys`` before starting sshd;
   c. derives every worker's DNS name from the LWS headless service:
      ``LWS_LEADER_ADDRESS`` is ``<lws>-<group>.<lws>.<namespace>``, worker ``i`` is
      ``<lws>-<group>-<i>.<lws>.<namespace>``; waits (up to 15 min) until each resolves and
      accepts SSH on 2222, appending ``<worker> slots=<gpus>`` to the hostfile after the leader's
      ``<leader address> slots=<gpus + 1>``; then stops serving the key;
   d. execs one MPMD ``mpirun`` over the hostfile (``--map-by slot``): rank 0 the orchestrator
      tritonserver, ranks 1..N tritonservers loading only ``tensorrt_llm`` as its executor
      (``participant_ids``), orted started on the workers over ssh (no tree spawn: only the
      leader holds the key; host keys are per-pod and not pinned).

Any rank dying ends mpirun and the leader container; ``RecreateGroupOnPodRestart`` then
recreates the whole group.
"""

from __future__ import annotations

import shlex
from typing import Any, Literal, cast

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field, field_validator

from components.cluster.contract import NodePool
from components.config.deployment import ResourcesConfig
from components.serving.model_repository import (
    ModelRepository,
    ModelRepositoryArgs,
    orchestrator_repository,
    repository_files,
)
from components.serving.pods import (
    GRPC_PORT,
    HOSTFILE,
    HTTP_PORT,
    LIVE_PATH,
    LWS_WORKER_INDEX_LABEL,
    METRICS_PORT,
    READY_PATH,
    REPOSITORY_HASH_ANNOTATION,
    REPOSITORY_PATH,
    SSH_KEY,
    SSH_KEY_PORT,
    SSH_PORT,
    STATE_DIR,
    GroupLayout,
    RepositoryConfigMap,
    check_input_str,
    child_options,
    config_map_data,
    content_hash,
    env_list,
    executor_env,
    gpu_mounts,
    gpu_resources,
    gpu_security_context,
    gpu_volumes,
    http_probe,
    k8s_provider,
    labels,
    metadata,
    node_selector,
    repository_config_maps,
    repository_files_from_config_maps,
    repository_volume,
    tolerations,
    triton_ports,
)

TYPE_TOKEN = "disagg:serving:TritonOrchestrator"
COMPONENT = "orchestrator"
REPOSITORY_VOLUME = "model-repository"
WORKER_WAIT_S = 900
"""How long the leader waits for every worker pod's sshd before giving up (the group restarts)."""
RSH_ARGS = (
    f"-p {SSH_PORT} -i {SSH_KEY} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
    "-o LogLevel=ERROR -o BatchMode=yes"
)
"""ssh options of mpirun's launcher (``plm_rsh_args``)."""


class TritonOrchestratorArgs(BaseModel):
    """One worker group type's orchestrator."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    instance: str
    """Model deployment (``app.kubernetes.io/instance``)."""
    role: Literal["workers", "prefill", "decode"]
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
    """Prefill/decode group: KV caches move between context and generation executors (UCX)."""
    startup_timeout_s: int = Field(default=1800, ge=60)
    """Engine load budget before the startup probe fails (70B over FSx takes minutes)."""
    termination_grace_period_s: int = Field(default=90, ge=10)

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


def orchestrator_server_args(layout: GroupLayout, exit_timeout_s: int) -> list[str]:
    """Rank 0: the serving tritonserver. It keeps GPU memory for the executors (no CUDA pools)."""
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


def mpirun_argv(layout: GroupLayout, forwarded_env: list[str], exit_timeout_s: int) -> list[str]:
    """The leader's mpirun: ranks placed slot by slot over the hostfile, leader first."""
    argv = [
        "mpirun",
        "--allow-run-as-root",
        "--hostfile", HOSTFILE,
        "--map-by", "slot",
        "--bind-to", "none",
        "--mca", "btl_tcp_if_include", "eth0",
        "--mca", "oob_tcp_if_include", "eth0",
    ]  # fmt: skip
    if layout.multi_node:
        argv += [
            "--mca", "plm_rsh_agent", "ssh",
            "--mca", "plm_rsh_args", RSH_ARGS,
            "--mca", "plm_rsh_no_tree_spawn", "1",
            "--mca", "orte_keep_fqdn_hostnames", "1",
        ]  # fmt: skip
    for name in ["PATH", "LD_LIBRARY_PATH", *sorted(forwarded_env)]:
        argv += ["-x", name]
    argv += ["-n", "1", *orchestrator_server_args(layout, exit_timeout_s)]
    if layout.multi_node:
        argv += [":", "-n", str(layout.world_size), *executor_rank_server_args()]
    return argv


def leader_script(layout: GroupLayout, mpirun: list[str], worker_wait_s: int = WORKER_WAIT_S) -> str:
    """bash run by the leader container (``bash -c``); see the module docstring."""
    g, p = layout.gpus_per_pod, layout.pods_per_group
    lines = [
        "set -euo pipefail",
        'log() { echo "[orchestrator] $*" >&2; }',
        'if [ ! -f "$ENGINE_DIR/config.json" ]; then',
        '  log "no TensorRT-LLM engine in $ENGINE_DIR (config.json missing): check the engine build Job '
        'and the shared storage mount"',
        "  exit 1",
        "fi",
        f"mkdir -p {STATE_DIR}",
    ]
    if not layout.multi_node:
        lines.append(f'echo "localhost slots={layout.leader_slots()}" > {HOSTFILE}')
    else:
        lines += [
            f'if [ "${{LWS_GROUP_SIZE:-}}" != "{p}" ]; then',
            f'  log "LWS_GROUP_SIZE is ${{LWS_GROUP_SIZE:-unset}}, this template was rendered for {p} pods"',
            "  exit 1",
            "fi",
            "for tool in ssh ssh-keygen getent python3; do",
            '  command -v "$tool" >/dev/null || { log "$tool is missing from the image: multi-node groups need '
            'openssh-client, getent and python3"; exit 1; }',
            "done",
            'leader_host="${LWS_LEADER_ADDRESS%%.*}"',
            'domain="${LWS_LEADER_ADDRESS#*.}"',
            f"rm -f {SSH_KEY} {SSH_KEY}.pub",
            f'ssh-keygen -q -t ed25519 -N "" -C "$leader_host" -f {SSH_KEY}',
            f"mkdir -p {STATE_DIR}/pub && cp {SSH_KEY}.pub {STATE_DIR}/pub/authorized_keys",
            f"python3 -m http.server {SSH_KEY_PORT} --bind 0.0.0.0 --directory {STATE_DIR}/pub "
            ">/dev/null 2>&1 &",
            "key_server=$!",
            f'echo "$LWS_LEADER_ADDRESS slots={layout.leader_slots()}" > {HOSTFILE}',
            "tcp_check='import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 3).close()'",
            f"deadline=$((SECONDS + {worker_wait_s}))",
            f"for i in $(seq 1 {p - 1}); do",
            '  worker="$leader_host-$i.$domain"',
            f'  until getent hosts "$worker" >/dev/null && python3 -c "$tcp_check" "$worker" {SSH_PORT} 2>/dev/null; do',
            '    if [ "$SECONDS" -ge "$deadline" ]; then',
            f'      log "worker $worker did not resolve or accept SSH on port {SSH_PORT} within {worker_wait_s}s"',
            "      exit 1",
            "    fi",
            "    sleep 2",
            "  done",
            '  log "worker $worker is up"',
            f'  echo "$worker slots={g}" >> {HOSTFILE}',
            "done",
            'kill "$key_server" 2>/dev/null || true',
        ]
    lines += [f'log "starting {layout.world_size} executor ranks: $(tr "\\n" " " < {HOSTFILE})"']
    lines.append("exec " + " ".join(shlex.quote(a) for a in mpirun))
    return "\n".join(lines) + "\n"


def leader_pod_template(
    args: TritonOrchestratorArgs, config_maps: list[RepositoryConfigMap], engine_dir: str
) -> dict:
    """``leaderTemplate`` of the group's LeaderWorkerSet."""
    layout = args.layout
    env = executor_env(args.pool, layout, engine_dir, args.kv_cache_transfer)
    exit_timeout = args.termination_grace_period_s - 30
    script = leader_script(layout, mpirun_argv(layout, list(env), exit_timeout))
    ports = triton_ports()
    if layout.multi_node:
        ports.append({"name": "ssh-key", "containerPort": SSH_KEY_PORT, "protocol": "TCP"})
    container = {
        "name": "triton",
        "image": args.image,
        "command": ["/bin/bash", "-c", script],
        "env": env_list(env),
        "ports": ports,
        "resources": gpu_resources(
            args.pool, layout.gpus_per_pod, args.resources.cpu, args.resources.memory, args.shm_size
        ),
        "startupProbe": http_probe(READY_PATH, period=10, failure_threshold=args.startup_timeout_s // 10),
        "readinessProbe": http_probe(READY_PATH, period=10, failure_threshold=3),
        "livenessProbe": http_probe(LIVE_PATH, period=15, failure_threshold=4),
        "volumeMounts": gpu_mounts(REPOSITORY_VOLUME, args.mount_path),
    }
    security = gpu_security_context(args.pool)
    if security:
        container["securityContext"] = security
    files = repository_files_from_config_maps(config_maps)
    return {
        "metadata": {
            "labels": leader_labels(args.instance, args.role),
            "annotations": {REPOSITORY_HASH_ANNOTATION: content_hash(files)},
        },
        "spec": {
            "containers": [container],
            "volumes": gpu_volumes(repository_volume(REPOSITORY_VOLUME, config_maps), args.claim_name, args.shm_size),
            "nodeSelector": node_selector(args.pool),
            "tolerations": tolerations(args.pool),
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": args.termination_grace_period_s,
        },
    }


def orchestrator_service_manifest(name: str, args: TritonOrchestratorArgs) -> dict:
    """ClusterIP Service over the group leaders only (worker pods run no Triton endpoint)."""
    selector = {**leader_labels(args.instance, args.role), LWS_WORKER_INDEX_LABEL: "0"}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name, args.namespace, leader_labels(args.instance, args.role)),
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
