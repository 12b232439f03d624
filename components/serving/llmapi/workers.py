"""LlmApiWorkers: one role's GPU worker groups of the llmapi runtime, as one LeaderWorkerSet.

Group ``workers`` (mode tensor-parallel; server role aggregated), or ``prefill`` (context) / ``decode`` (generation) in
prefill-decode mode: each role is its own LeaderWorkerSet with its own replicas, HPA, PDB,
headless Service and LLM API YAML, so scaling one side never touches the other's objects.

Per group, the leader runs ``trtllm-serve serve <model dir> --host 0.0.0.0 --port 8000 --backend
pytorch --extra_llm_api_options /etc/trtllm/llm_api.yaml`` (flags of
tensorrt_llm/commands/serve.py @00209af149e7; ``--extra_llm_api_options`` is an alias of
``--config`` there). A group spanning nodes (podsPerGroup > 1) starts as upstream documents for
LLM API multi-node serving (examples/llm-api/llm_mgmn_trtllm_serve.sh @b35ac1b64368): one MPI
rank per GPU across the group's pods, each rank ``trtllm-llmapi-launch trtllm-serve ...``
(tensorrt_llm/llmapi/trtllm-llmapi-launch @020c89e64e49: rank 0 serves, the others run
``mgmn_worker_node``); mpirun reaches the worker pods over the hardened sshd of
:mod:`components.serving.mpi_ssh`.

A headless Service selects only the leaders (``leaderworkerset.sigs.k8s.io/worker-index: "0"``)
and only when ready: the router resolves it (``dns://<service>:8000``) to find the groups.
Leaders serve ``/health`` and, where the capability table (``runtime/capabilities.py``) proves it
for the image's generation (1.3), Prometheus text on ``/prometheus/metrics`` with
``return_perf_metrics: true`` (tensorrt_llm/serve/openai_server.py @00057725d9a6): only there do
scalers and the preStop drain read the leaders' own ``trtllm_*`` gauges. Elsewhere KEDA scales
the groups on the router's per-pool gauges and the drain asks Prometheus for the routers' view
of the leader (or sleeps the worst case without Prometheus).
"""

from __future__ import annotations

import copy
import functools
import shlex
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from components.config.images import DEFAULT_GENERATION
from components.config.scheduling import NodePool
from components.platform.autoscaling_metrics import LLMAPI_KV_CACHE_UTILIZATION, LLMAPI_WAITING_REQUESTS
from components.platform.keda import ROUTER_POOLS, llmapi_scaled_object, router_scaled_triggers
from components.serving.autoscaling import pod_disruption_budget_manifest, pods_metric
from components.serving.cpu_tier import health_probe, prometheus_annotations
from components.serving.drain import ENDPOINT_REMOVAL_S, worker_grace_seconds
from components.serving.fabric_env import fabric_env, kv_transfer_env
from components.serving.group_layout import GroupLayout
from components.serving.labels import (
    LWS_API_VERSION,
    LWS_EXCLUSIVE_TOPOLOGY,
    LWS_KIND,
    LWS_NAME_LABEL,
    LWS_WORKER_INDEX_LABEL,
    labels,
    metadata,
)
from components.serving.load_balancer import service_host
from components.serving.mpi_ssh import (
    HOSTFILE,
    SSH_PORT,
    leader_hostfile_lines,
    mpirun_base,
    mpirun_ssh_options,
    secret_mount,
    secret_volume,
    sshd_script,
)
from components.serving.pods import (
    STATE_DIR,
    env_list,
    memory_volume,
    mount,
    node_selector,
    scratch_volume,
    storage_volume,
    tolerations,
)
from components.serving.probes import tcp_probe
from components.serving.pulumi_options import check_input_str, child_options, k8s_provider
from components.serving.repository_config_maps import content_hash
from components.serving.resources import gpu_resources
from components.serving.scaled_objects import (
    pre_stop_drain,
    pre_stop_router_drain,
    pre_stop_sleep,
    router_drain_query,
    scaled_object,
)
from components.serving.security import (
    WRITABLE_ENV,
    gpu_security_context,
    secure_pod_spec,
    tmp_mount,
    tmp_volume,
)
from engines.llm_api import GROUP_ROLES, GroupKey
from engines.llm_api_checks import kv_transfer_problem
from runtime.capabilities import METRICS_OPTIONS, Capabilities, capabilities

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` over libyaml when it is there; each group's options are parsed by several
    checks, so a text is parsed once and every caller gets its own copy."""
    return copy.deepcopy(_parsed(text))


@functools.lru_cache(maxsize=256)
def _parsed(text: str) -> Any:
    return yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader

TYPE_TOKEN = "disagg:serving:LlmApiWorkers"
APP = "llmapi"
LEADER_COMPONENT = "trtllm-serve"
WORKER_COMPONENT = "mpi-worker"
SET_COMPONENT = "llmapi-workers"
PORT = 8000
METRICS_PATH = "/prometheus/metrics"
CONFIG_DIR = "/etc/trtllm"
CONFIG_FILE = f"{CONFIG_DIR}/llm_api.yaml"
CONFIG_HASH_ANNOTATION = "disagg.dev/llm-api-hash"
LAUNCHER = "trtllm-llmapi-launch"

Role = GroupKey
"""Deployment role -> TRT-LLM server role (``llm_api_yaml(role=...)``)."""


class LlmApiWorkersArgs(BaseModel):
    """One role's worker groups."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    instance: str
    role: Role
    namespace: str
    image: str
    pool: NodePool
    pods_per_group: int = Field(ge=1)
    gpus_per_pod: int = Field(ge=1)
    llm_api_yaml: str
    """The LLM API options trtllm-serve reads (``engines.llm_api.llm_api_yaml(..., role=...)``)."""
    model_dir: Any
    """``pulumi.Input[str]``: the prepared model directory on the shared storage."""
    claim_name: str
    mount_path: str = "/models"
    groups: int = Field(default=1, ge=0)
    min_groups: int | None = Field(default=None, ge=0)
    max_groups: int | None = Field(default=None, ge=1)
    autoscaling: bool = False
    target_kv_cache_utilization: float = Field(default=0.8, gt=0, le=1)
    target_waiting_requests: float = Field(default=4, gt=0)
    cpu: str = "16"
    memory: str = "64Gi"
    memory_includes_shm: bool = False
    """``memory`` already counts the RAM-backed /dev/shm (``capacity.host_memory_request_gib``):
    request = limit = memory. False: the limit is memory + shmSize."""
    shm_size: str = "32Gi"
    placement_key: str | None = None
    """Exclusive-topology key (``triton.workers.default_placement_key``); None: no exclusivity."""
    startup_timeout_s: int = Field(default=1800, ge=60)
    drain_seconds: int = Field(default=60, ge=0)
    """How long the longest stream runs (``capacity.stream_drain_seconds``): a terminating pod keeps
    serving that long after the router dropped it (preStop), so scale-in never cuts a stream."""
    keda_prometheus_url: str | None = None
    """Autoscaling through a KEDA ScaledObject querying this Prometheus (instead of an HPA on
    the metrics adapter's custom metrics)."""
    trust_remote_code: bool = False
    """Pass ``--trust_remote_code`` (runs the model repository's Python): only for models that need it."""
    mpi_ssh_secret: str = "mpi-ssh"
    """Secret with the group's SSH keys (``mpi_ssh.SECRET_KEYS``); multi-node groups only."""
    nixl_plugins_dir: str | None = None
    """Directory holding NIXL's LIBFABRIC plugin (EFA prefill-decode; the release image lacks it)."""
    read_only_root_filesystem: bool = True
    trtllm_generation: str = DEFAULT_GENERATION
    """Capability-table generation of ``image`` (``runtime.capabilities``): which metrics the
    leaders export, hence what the scalers and the drain read."""
    router_deployment: str | None = None
    """The router Deployment of this model (``<instance>-router``): scalers and the drain read its
    per-pool gauges. None: ``<instance>-router``."""
    target_outstanding_requests: float | None = Field(default=None, gt=0)
    """Requests outstanding per group (router gauge) above which KEDA adds a group; None: the
    group's maxBatchSize plus targetWaitingRequests (a full batch and the accepted queue)."""
    target_outstanding_prompt_tokens: float | None = Field(default=None, gt=0)
    """Context groups: prompt tokens outstanding per group above which KEDA adds one; None: two
    forward passes (2 × maxNumTokens)."""

    @field_validator("model_dir")
    @classmethod
    def _model_dir(cls, value: Any) -> Any:
        return check_input_str(value, "model_dir")

    @model_validator(mode="after")
    def _checks(self) -> LlmApiWorkersArgs:
        problems = llm_api_yaml_problems(self)
        lo, hi = min_groups(self), max_groups(self)
        if not lo <= self.groups <= hi:
            problems.append(f"{self.role}.groups ({self.groups}) must lie between minGroups ({lo}) and maxGroups ({hi})")
        if self.autoscaling and lo < 1:
            problems.append(f"{self.role}.minGroups is 0 but autoscaling is enabled: set it to 1 or more")
        if self.gpus_per_pod > self.pool.gpus_per_node:
            problems.append(
                f"{self.role}.gpusPerPod: {self.gpus_per_pod} GPUs asked but pool '{self.pool.name}' nodes have "
                f"{self.pool.gpus_per_node}: lower gpusPerPod and raise podsPerGroup"
            )
        if self.pods_per_group > 1 and self.pool.fabric == "none":
            problems.append(
                f"{self.role}.podsPerGroup: {self.pods_per_group} pods span nodes but pool '{self.pool.name}' has no "
                "RDMA fabric: keep the group on one node or use an EFA/InfiniBand/RoCE pool"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def capabilities(self) -> Capabilities:
        return capabilities(self.trtllm_generation)

    @property
    def router_name(self) -> str:
        return self.router_deployment or f"{self.instance}-router"

    @property
    def layout(self) -> GroupLayout:
        return GroupLayout(self.pods_per_group, self.gpus_per_pod)

    @property
    def server_role(self) -> str:
        return GROUP_ROLES[self.role]

    def options(self) -> dict:
        return cast(dict, load_yaml(self.llm_api_yaml) or {})

    def kv_transfer_backend(self) -> str | None:
        """``cache_transceiver_config.backend`` of a prefill/decode group (None: aggregated)."""
        if self.role == "workers":
            return None
        return str((self.options().get("cache_transceiver_config") or {}).get("backend", "DEFAULT")).upper()


def min_groups(args: LlmApiWorkersArgs) -> int:
    return args.min_groups if args.min_groups is not None else args.groups


def max_groups(args: LlmApiWorkersArgs) -> int:
    return args.max_groups if args.max_groups is not None else args.groups


def llm_api_yaml_problems(args: LlmApiWorkersArgs) -> list[str]:
    """What in the LLM API YAML contradicts the group (one line each, with the fix)."""
    where = f"{args.role}.llmApi"
    try:
        options = load_yaml(args.llm_api_yaml)
    except yaml.YAMLError as err:
        return [f"{where}: the rendered LLM API YAML does not parse ({str(err).splitlines()[0]}): fix llm_api_yaml"]
    if not isinstance(options, dict):
        return [f"{where}: the LLM API YAML is not a mapping: render it with llm_api_yaml()"]
    problems = []
    tp = int(options.get("tensor_parallel_size", 1) or 1)
    pp = int(options.get("pipeline_parallel_size", 1) or 1)
    world = args.pods_per_group * args.gpus_per_pod
    if tp * pp != world:
        problems.append(
            f"{where}: tensorParallelSize × pipelineParallelSize = {tp} × {pp} = {tp * pp} but the group has "
            f"podsPerGroup {args.pods_per_group} × gpusPerPod {args.gpus_per_pod} = {world} GPUs: make them equal"
        )
    if options.get("trust_remote_code") and not args.trust_remote_code:
        problems.append(f"{where}: trust_remote_code is set in the YAML but not for the model: drop it from the YAML")
    if args.role != "workers":
        backend = (options.get("cache_transceiver_config") or {}).get("backend")
        if backend is None:
            problems.append(
                f"{where}.cacheTransceiverConfig: a {args.role} group needs cache_transceiver_config.backend "
                "(NIXL or UCX): set it"
            )
        else:
            problem = kv_transfer_problem(args.pool.fabric, str(backend))
            if problem is not None:
                problems.append(f"{where}.cacheTransceiverConfig.backend: {backend!r} on pool '{args.pool.name}': {problem}")
    elif "cache_transceiver_config" in options:
        problems.append(f"{where}.cacheTransceiverConfig is for prefill-decode groups only: remove it")
    caps = capabilities(args.trtllm_generation)
    if args.autoscaling and args.keda_prometheus_url is None and not caps.request_gauges:
        problems.append(
            f"{args.role}.autoscaling: without KEDA the HPA reads the leaders' trtllm_* gauges, which TensorRT-LLM "
            f"{caps.generation} does not export ({caps.row('request_gauges')}): enable platform.keda (it scales "
            "on the router's gauges) or disable autoscaling"
        )
    uses_gauges = caps.worker_metrics() and (args.autoscaling or caps.request_gauges)
    if uses_gauges and not all(options.get(k) == v for k, v in METRICS_OPTIONS.items()):
        problems.append(
            f"{where}: the scalers and the drain read {', '.join(caps.worker_metrics())}, which trtllm-serve "
            "exports only with return_perf_metrics: true and enable_iter_perf_stats: true: set both"
        )
    return problems


def set_labels(instance: str, role: str) -> dict[str, str]:
    return labels(instance, SET_COMPONENT, role, app=APP)


def leader_labels(instance: str, role: str) -> dict[str, str]:
    return labels(instance, LEADER_COMPONENT, role, app=APP)


def worker_labels(instance: str, role: str) -> dict[str, str]:
    return labels(instance, WORKER_COMPONENT, role, app=APP)


def serve_argv(model_dir: str, trust_remote_code: bool = False) -> list[str]:
    """trtllm-serve's command line on the leader (rank 0)."""
    argv = [
        "trtllm-serve", "serve", model_dir,
        "--host", "0.0.0.0",
        "--port", str(PORT),
        "--backend", "pytorch",
        "--extra_llm_api_options", CONFIG_FILE,
    ]  # fmt: skip
    if trust_remote_code:
        argv.append("--trust_remote_code")
    return argv


def worker_env(args: LlmApiWorkersArgs) -> dict[str, str]:
    """Environment of every process of a group: fabric, KV transfer, writable dirs, offline HF."""
    env = {**fabric_env(args.pool), **WRITABLE_ENV, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    backend = args.kv_transfer_backend()
    if backend is not None:
        env.update(kv_transfer_env(args.pool, backend, args.nixl_plugins_dir))
    return env


def leader_argv(args: LlmApiWorkersArgs, model_dir: str, env: dict[str, str]) -> list[str]:
    """The leader's process: trtllm-serve itself (one node), or mpirun over the group (several)."""
    serve = serve_argv(model_dir, args.trust_remote_code)
    if not args.layout.multi_node:
        return serve
    argv = mpirun_base(HOSTFILE) + mpirun_ssh_options()
    for name in ["PATH", "LD_LIBRARY_PATH", *sorted(env)]:
        argv += ["-x", name]
    return argv + ["-n", str(args.layout.world_size), LAUNCHER, *serve]


def leader_script(args: LlmApiWorkersArgs, model_dir: str, env: dict[str, str]) -> str:
    """bash of the leader container: check the model, build the hostfile (multi-node), exec."""
    lines = [
        "set -euo pipefail",
        'log() { echo "[trtllm-serve] $*" >&2; }',
        f'if [ ! -f {shlex.quote(model_dir)}/config.json ]; then',
        f'  log "no model in {model_dir} (config.json missing): check the model preparation Job and the storage mount"',
        "  exit 1",
        "fi",
        f"mkdir -p {WRITABLE_ENV['HOME']} {WRITABLE_ENV['XDG_CACHE_HOME']}",
    ]
    if args.layout.multi_node:
        lines += leader_hostfile_lines(args.layout, args.gpus_per_pod)
    lines.append("exec " + " ".join(shlex.quote(a) for a in leader_argv(args, model_dir, env)))
    return "\n".join(lines) + "\n"


def _volumes(args: LlmApiWorkersArgs, config_map: str) -> tuple[list[dict], list[dict]]:
    volumes = [
        {"name": "llm-api", "configMap": {"name": config_map, "defaultMode": 0o444}},
        storage_volume("store", args.claim_name),
        memory_volume("dshm", args.shm_size),
        scratch_volume("state"),
        tmp_volume("32Gi"),
    ]
    mounts = [
        mount("llm-api", CONFIG_DIR, read_only=True),
        mount("store", args.mount_path, read_only=True),
        mount("dshm", "/dev/shm"),
        mount("state", STATE_DIR),
        tmp_mount(),
    ]
    if args.layout.multi_node:
        volumes.append(secret_volume(args.mpi_ssh_secret))
        mounts.append(secret_mount())
    return volumes, mounts


def termination_grace_seconds(args: LlmApiWorkersArgs) -> int:
    """Grace of every pod of a group: the preStop drain, then trtllm-serve's exit."""
    return worker_grace_seconds(args.drain_seconds)


def group_resources(args: LlmApiWorkersArgs) -> dict:
    """Requests/limits of a group pod (memory limit with /dev/shm, see ``memory_includes_shm``)."""
    shm = "0" if args.memory_includes_shm else args.shm_size
    return gpu_resources(args.pool, args.gpus_per_pod, args.cpu, args.memory, shm)


POD_IP_ENV = {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
"""The leader's address as the router names it (its endpoint label), for the router-view drain."""


def uses_router_drain(args: LlmApiWorkersArgs) -> bool:
    """The drain asks Prometheus for the router's view (no request gauges on this generation)."""
    return not args.capabilities.request_gauges and args.keda_prometheus_url is not None


def drain_lifecycle(args: LlmApiWorkersArgs, metrics_host: str, leader_host: str) -> dict:
    """The preStop drain of a group pod, on the best signal the image's generation has:

    * the leader's own request gauges where the capability table proves them (``request_gauges``);
    * otherwise the routers' ``router_endpoint_inflight`` for this leader, through Prometheus
      (KEDA's ``prometheusUrl``);
    * otherwise (no Prometheus) the worst case: sleep the endpoint removal plus the longest stream.

    ``metrics_host``/``leader_host``: how this pod reaches the leader and how it names it for the
    router's query (``{VAR}`` reads the environment)."""
    if args.capabilities.request_gauges:
        return pre_stop_drain(f"http://{metrics_host}:{PORT}{METRICS_PATH}", ENDPOINT_REMOVAL_S, args.drain_seconds)
    if uses_router_drain(args):
        assert args.keda_prometheus_url is not None
        query = router_drain_query(args.namespace, args.router_name, ROUTER_POOLS[args.role], PORT)
        return pre_stop_router_drain(args.keda_prometheus_url, query, leader_host, ENDPOINT_REMOVAL_S, args.drain_seconds)
    return pre_stop_sleep(ENDPOINT_REMOVAL_S + args.drain_seconds)


def _pod_spec(args: LlmApiWorkersArgs, container: dict, volumes: list[dict], grace: int) -> dict:
    return secure_pod_spec(
        {
            "containers": [container],
            "volumes": volumes,
            "nodeSelector": node_selector(args.pool),
            "tolerations": tolerations(args.pool),
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": grace,
        }
    )


def leader_pod_template(args: LlmApiWorkersArgs, model_dir: str, config_map: str) -> dict:
    """``leaderTemplate``: trtllm-serve (rank 0), probes on /health, scrape annotations."""
    env = worker_env(args)
    volumes, mounts = _volumes(args, config_map)
    period = 10
    container = {
        "name": "trtllm-serve",
        "image": args.image,
        "command": ["/bin/bash", "-c", leader_script(args, model_dir, env)],
        "env": env_list(env) + ([POD_IP_ENV] if uses_router_drain(args) else []),
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "resources": group_resources(args),
        # drains its own streams instead of sleeping the worst case, where a signal exists
        "lifecycle": drain_lifecycle(args, "127.0.0.1", "{POD_IP}"),
        "startupProbe": health_probe(period=period, failure_threshold=args.startup_timeout_s // period),
        "readinessProbe": health_probe(period=10, failure_threshold=3),
        "livenessProbe": health_probe(period=15, failure_threshold=8),
        "volumeMounts": mounts,
        "securityContext": gpu_security_context(args.pool, args.read_only_root_filesystem),
    }
    annotations = {
        # scraped only where the release is proven to serve it (a 404 scrape target otherwise)
        **(prometheus_annotations(PORT, METRICS_PATH) if args.capabilities.prometheus_endpoint else {}),
        CONFIG_HASH_ANNOTATION: content_hash({"llm_api.yaml": args.llm_api_yaml}),
    }
    return {
        "metadata": {"labels": leader_labels(args.instance, args.role), "annotations": annotations},
        "spec": _pod_spec(args, container, volumes, termination_grace_seconds(args)),
    }


def worker_pod_template(args: LlmApiWorkersArgs, config_map: str) -> dict:
    """``workerTemplate``: sshd for the leader's mpirun (multi-node groups only)."""
    env = worker_env(args)
    volumes, mounts = _volumes(args, config_map)
    container = {
        "name": "mpi-worker",
        "image": args.image,
        "command": ["/bin/bash", "-c", sshd_script()],
        "env": env_list(env),
        "ports": [{"name": "ssh", "containerPort": SSH_PORT, "protocol": "TCP"}],
        "resources": group_resources(args),
        # the ranks on this pod serve the leader's streams: they stay while the leader drains
        # (LWS gives every pod the leader's address)
        "lifecycle": drain_lifecycle(args, "{LWS_LEADER_ADDRESS}", "{LWS_LEADER_ADDRESS}"),
        "startupProbe": tcp_probe("ssh", period=5, failure_threshold=args.startup_timeout_s // 5),
        "readinessProbe": tcp_probe("ssh", period=10, failure_threshold=3),
        "livenessProbe": tcp_probe("ssh", period=20, failure_threshold=3),
        "volumeMounts": mounts,
        "securityContext": gpu_security_context(args.pool, args.read_only_root_filesystem),
    }
    return {
        "metadata": {"labels": worker_labels(args.instance, args.role)},
        "spec": _pod_spec(args, container, volumes, termination_grace_seconds(args)),
    }


def config_map_name(name: str) -> str:
    return f"{name}-llm-api"


def headless_service_name(name: str) -> str:
    return f"{name}-leaders"


def discovery_url(name: str, namespace: str) -> str:
    """``dns://<headless service FQDN>:8000``: what the router resolves to find this role's leaders."""
    return f"dns://{service_host(headless_service_name(name), namespace)}:{PORT}"


def leader_worker_set_manifest(name: str, args: LlmApiWorkersArgs, model_dir: str) -> dict:
    annotations = {LWS_EXCLUSIVE_TOPOLOGY: args.placement_key} if args.placement_key else None
    template: dict = {
        "size": args.pods_per_group,
        "restartPolicy": "RecreateGroupOnPodRestart",
        "leaderTemplate": leader_pod_template(args, model_dir, config_map_name(name)),
    }
    if args.layout.multi_node:
        template["workerTemplate"] = worker_pod_template(args, config_map_name(name))
    else:
        template["workerTemplate"] = template["leaderTemplate"]
    return {
        "apiVersion": LWS_API_VERSION,
        "kind": LWS_KIND,
        "metadata": metadata(name, args.namespace, set_labels(args.instance, args.role), annotations),
        "spec": {
            "replicas": args.groups,
            "startupPolicy": "LeaderCreated",
            "networkConfig": {"subdomainPolicy": "Shared"},
            "rolloutStrategy": {
                "type": "RollingUpdate",
                "rollingUpdateConfiguration": {"maxUnavailable": 1, "maxSurge": 0},
            },
            "leaderWorkerTemplate": template,
        },
    }


def headless_service_manifest(name: str, args: LlmApiWorkersArgs) -> dict:
    """Headless Service over the ready group leaders only (the router's DNS discovery)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(headless_service_name(name), args.namespace, leader_labels(args.instance, args.role)),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": False,
            "selector": {LWS_NAME_LABEL: name, LWS_WORKER_INDEX_LABEL: "0"},
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def workers_scaled_object_manifest(name: str, args: LlmApiWorkersArgs) -> dict | None:
    """KEDA ScaledObject on the LWS scale subresource (None: no autoscaling, or no KEDA)."""
    if not args.autoscaling or args.keda_prometheus_url is None:
        return None
    options = args.options()
    outstanding = args.target_outstanding_requests or int(options.get("max_batch_size", 1)) + args.target_waiting_requests
    prompt_tokens = None
    if args.role == "prefill":
        prompt_tokens = args.target_outstanding_prompt_tokens or 2 * int(options.get("max_num_tokens", 8192))
    triggers = router_scaled_triggers(
        args.namespace, args.router_name, args.role, args.keda_prometheus_url, outstanding, prompt_tokens
    )
    caps = args.capabilities
    return llmapi_scaled_object(
        name, args.namespace, name, min_groups(args), max_groups(args), args.keda_prometheus_url, triggers,
        caps.request_gauges and caps.kv_cache_utilization_gauge, args.target_waiting_requests,
        args.target_kv_cache_utilization, args.drain_seconds, set_labels(args.instance, args.role),
    )  # fmt: skip


def workers_hpa_manifest(name: str, args: LlmApiWorkersArgs) -> dict | None:
    """HPA on the LWS scale subresource from the leaders' KV-cache use and queue (None: off, or
    KEDA scales the groups)."""
    if not args.autoscaling or args.keda_prometheus_url is not None:
        return None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(name, args.namespace, set_labels(args.instance, args.role)),
        "spec": {
            "scaleTargetRef": {"apiVersion": LWS_API_VERSION, "kind": LWS_KIND, "name": name},
            "minReplicas": min_groups(args),
            "maxReplicas": max_groups(args),
            "metrics": [
                pods_metric(LLMAPI_KV_CACHE_UTILIZATION, args.target_kv_cache_utilization),
                pods_metric(LLMAPI_WAITING_REQUESTS, args.target_waiting_requests),
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


def workers_pdb_manifest(name: str, args: LlmApiWorkersArgs) -> dict:
    return pod_disruption_budget_manifest(
        name, args.namespace, set_labels(args.instance, args.role), {LWS_NAME_LABEL: name}, max_unavailable=1
    )


class LlmApiWorkers(pulumi.ComponentResource):
    """ConfigMap (LLM API YAML), LeaderWorkerSet, headless Service, HPA and PDB of one role."""

    config_map: k8s.core.v1.ConfigMap
    leader_worker_set: k8s.apiextensions.CustomResource
    service: k8s.core.v1.Service
    hpa: k8s.autoscaling.v2.HorizontalPodAutoscaler | None
    scaled_object: k8s.apiextensions.CustomResource | None
    pdb: k8s.policy.v1.PodDisruptionBudget
    set_name: str
    discovery_url: str
    """``dns://<name>-leaders.<namespace>.svc.cluster.local:8000``."""

    def __init__(self, name: str, args: LlmApiWorkersArgs, opts: pulumi.ResourceOptions | None = None):
        provider = k8s_provider(opts, f"LlmApiWorkers '{name}'")
        super().__init__(TYPE_TOKEN, name, None, opts)

        def child(**extra) -> pulumi.ResourceOptions:
            return child_options(self, provider, opts, **extra)

        self.set_name = name
        self.config_map = k8s.core.v1.ConfigMap(
            f"{name}-llm-api",
            metadata=cast(Any, metadata(config_map_name(name), args.namespace, set_labels(args.instance, args.role))),
            data={"llm_api.yaml": args.llm_api_yaml},
            opts=child(),
        )
        manifest = pulumi.Output.from_input(args.model_dir).apply(
            lambda d: leader_worker_set_manifest(name, args, d)
        )
        self.leader_worker_set = k8s.apiextensions.CustomResource(
            f"{name}-leaderworkerset",
            api_version=LWS_API_VERSION,
            kind=LWS_KIND,
            metadata=leader_worker_set_manifest(name, args, "/pending")["metadata"],
            spec=manifest.apply(lambda m: m["spec"]),
            opts=child(depends_on=[self.config_map], ignore_changes=["spec.replicas"] if args.autoscaling else None),
        )
        service = headless_service_manifest(name, args)
        self.service = k8s.core.v1.Service(
            f"{name}-leaders", metadata=service["metadata"], spec=service["spec"], opts=child()
        )
        hpa = workers_hpa_manifest(name, args)
        self.hpa = None
        if hpa is not None:
            self.hpa = k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-hpa", metadata=hpa["metadata"], spec=hpa["spec"], opts=child(depends_on=[self.leader_worker_set])
            )
        scaled = workers_scaled_object_manifest(name, args)
        self.scaled_object = None
        if scaled is not None:
            self.scaled_object = scaled_object(name, scaled, child(depends_on=[self.leader_worker_set]))
        pdb = workers_pdb_manifest(name, args)
        self.pdb = k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb", metadata=pdb["metadata"], spec=pdb["spec"], opts=child()
        )
        self.discovery_url = discovery_url(name, args.namespace)
        self.register_outputs({"set_name": name, "discovery_url": self.discovery_url})
