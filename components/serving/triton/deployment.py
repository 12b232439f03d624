"""DisaggregatedDeployment: one model served by the engine runtime (Triton + TRT-LLM engines).

The llmapi runtime (trtllm-serve) has its own composition, :mod:`components.serving.llmapi.deployment`.
Both add the deployment's NetworkPolicies (:mod:`components.serving.network_policies`).

* ``frontend`` (:class:`TritonFrontend`): CPU Triton, client traffic, tokenization, streaming;
  its ``tensorrt_llm`` proxy forwards to the orchestrator Service.
* ``orchestrators`` (:class:`TritonOrchestrator`, one per worker group type): Triton with the
  TRT-LLM backend in orchestrator mode, running as the leader of each LeaderWorkerSet group.
* ``workers`` (:class:`TensorParallelWorkers`, one LeaderWorkerSet per worker group type):
  ``groups`` copies of the engine, each ``podsPerGroup`` pods × ``gpusPerPod`` GPUs.

Mode ``tensor-parallel``: one worker group type (role ``workers``). Mode ``prefill-decode``:
roles ``prefill`` (context engine) and ``decode`` (generation engine), each with its own
orchestrator; the frontend runs TRT-LLM's disaggregated flow (``request_type: context_only``
to the prefill orchestrator, then ``generation_only`` with the returned
``context_phase_params`` to the decode orchestrator) and the executors move the KV cache
between the phases over UCX (``TRTLLM_USE_UCX_KVCACHE=1``).

**Why two LeaderWorkerSets and not one LWS DisaggregatedSet** (CRD
``disaggregatedsets.disaggregatedset.x-k8s.io``, /work/shared/reference): the DisaggregatedSet
would give the roles a common rollout and slice placement, but

1. it has no ``scale`` subresource (only ``status``), so no HPA can target it; per-role scaling
   either is inline ``replicas`` (static) or ``scaling.mode: External``, where the controller
   creates a *DisaggregatedSetRoleScaler* whose CRD and naming are not part of the reference,
   so nothing here could be validated against it. Prefill and decode must scale on their own
   metrics (prompt-heavy vs. generation-heavy load), which an HPA per LeaderWorkerSet does
   through the LWS scale subresource;
2. its CEL rule forces every non-External role's ``replicas`` to be all zero or all non-zero;
3. the LeaderWorkerSets it creates are named and re-created by its controller, while the
   orchestrator Services, HPAs and PDBs here need stable LWS names;
4. the pinned LWS controller chart must ship the DisaggregatedSet API, a newer addition than
   the LeaderWorkerSet v1 API everything else uses.

The cost: prefill and decode roll out independently; both templates change in the same
``pulumi up`` when the shared model changes.

Everything is validated before any resource is declared (:func:`plan_deployment` raises a
``ValueError`` naming the configuration key and the fix).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from components.cluster.contract import ClusterHandle
from components.config.capacity import GIB, host_memory_request_gib, quantity_gib, weight_bytes_per_param
from components.config.deployment import (
    ImagesConfig,
    ModelDeploymentConfig,
    OrchestratorConfig,
    ResourcesConfig,
    WorkerGroupConfig,
)
from components.config.scheduling import NodePool
from components.config.security import (
    SecurityConfig,
    frontend_auth_args,
    mpi_ssh_secret_name,
    triton_restricted_api_args,
)
from components.serving.group_layout import GroupLayout, group_layout
from components.serving.labels import LWS_NAME_LABEL, labels
from components.serving.network_policies import (
    NetworkPolicies,
    NetworkPoliciesArgs,
    TierPolicy,
    metrics_ingress,
    pods_peer,
    rule,
    tcp_ports,
    worker_tier,
)
from components.serving.pods import GRPC_PORT, HTTP_PORT, METRICS_PORT
from components.serving.pulumi_options import check_input_str
from components.serving.resources import memory_bytes
from components.serving.triton.frontend import TritonFrontend, TritonFrontendArgs
from components.serving.triton.model_repository import (
    EngineLimits,
    FrontendSettings,
    ModelRepositoryArgs,
    TensorrtLlmSettings,
    TokenizerSettings,
)
from components.serving.triton.orchestrator import (
    TritonOrchestrator,
    TritonOrchestratorArgs,
    orchestrator_url,
)
from components.serving.triton.workers import (
    TensorParallelWorkers,
    TensorParallelWorkersArgs,
    default_placement_key,
    min_groups,
)
from engines.catalog import MODELS
from engines.llm_api import MODE_GROUPS, GroupKey
from engines.spec import EngineSpec

TYPE_TOKEN = "disagg:serving:DisaggregatedDeployment"
PENDING_ENGINE_DIR = "/pending-engine-build"
"""Stand-in engine directory for validation and object layout; the real one is an Output."""


class DisaggregatedDeploymentArgs(BaseModel):
    """One model deployment and everything it is wired to."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    deployment: ModelDeploymentConfig
    engines: dict[str, EngineSpec]
    """Worker-group role ('workers' | 'prefill' | 'decode') -> engine spec."""
    engine_dirs: dict[str, Any]
    """Role -> ``pulumi.Input[str]``: engine directory on the shared volume (EngineBuild output)."""
    images: ImagesConfig
    namespace: str
    cluster: ClusterHandle
    claim_name: str
    """ReadWriteMany PVC with engines and tokenizers."""
    mount_path: str = "/models"
    custom_metrics: bool = False
    """The cluster's custom metrics API serves the Triton/TRT-LLM metrics (``platform.metricsAdapter``
    or your own adapter with ``components.platform.autoscaling_metrics.adapter_rules()``). Required by worker
    ``autoscaling``; adds queue time to the frontend HPA."""
    mpi_ssh_secret: str | None = None
    """Secret with the SSH keys of multi-node groups (``mpi_ssh.SECRET_KEYS``); None: ``<name>-mpi-ssh``."""
    load_balancer_source_ranges: tuple[str, ...] = ()
    """Client CIDRs of an internet-facing frontend (``frontend.internalLoadBalancer: false`` needs them)."""
    network_policies: bool = True
    """Default-deny NetworkPolicies plus the tiers' flows (:mod:`components.serving.network_policies`)."""
    monitoring_namespaces: tuple[str, ...] = ("monitoring",)
    """Namespaces whose pods may scrape the metrics ports."""
    storage_cidrs: tuple[str, ...] = ()
    """Lustre egress for in-pod clients (none with the FSx CSI driver, which mounts on the node)."""
    keda_prometheus_url: str | None = None
    """KEDA is installed and queries this Prometheus: frontend and worker groups get ScaledObjects."""
    drain_seconds: int | None = Field(default=None, ge=0)
    """The longest stream (``capacity.deployment_drain_seconds``): preStop, grace and Triton's exit
    timeout of every tier; None: the components' fixed defaults."""
    security: SecurityConfig = SecurityConfig()
    """``platform.security``: Triton's restricted admin APIs on every Triton; for an internet-facing
    frontend, its ``publicFrontends`` entry (client key and source ranges)."""
    size_group_memory: bool = True
    """Size group pods' memory from the engine (``capacity.host_memory_request_gib``) when
    ``orchestrator.resources`` is not set."""

    @field_validator("engine_dirs")
    @classmethod
    def _inputs(cls, engine_dirs: dict[str, Any]) -> dict[str, Any]:
        for role, value in engine_dirs.items():
            check_input_str(value, f"engine_dirs['{role}']")
        return engine_dirs


WorkerRole = GroupKey


@dataclass(frozen=True)
class RolePlan:
    """Everything static about one worker group type."""

    role: WorkerRole
    group: WorkerGroupConfig
    engine: EngineSpec
    pool: NodePool
    layout: GroupLayout
    repository: ModelRepositoryArgs
    orchestrator_name: str
    workers_name: str


@dataclass(frozen=True)
class DeploymentPlan:
    roles: tuple[RolePlan, ...]
    frontend_repository: ModelRepositoryArgs
    tokenizer_from_engine: bool
    """The tokenizer is the engine build's copy (``<engine dir>/tokenizer``)."""

    def role(self, role: str) -> RolePlan:
        return next(r for r in self.roles if r.role == role)

    @property
    def entry_role(self) -> str:
        """Role whose orchestrator takes each request first (``orchestrator_endpoint``)."""
        return self.roles[0].role


ADMIN_KEY_ENV = "TRITON_ADMIN_KEY"
FRONTEND_KEY_ENV = "FRONTEND_API_KEY"


def triton_security(
    security: SecurityConfig, deployment: ModelDeploymentConfig, frontend: bool
) -> tuple[tuple[str, ...], dict[str, tuple[str, str]], tuple[str, ...]]:
    """(tritonserver arguments, their keys' Secrets by ``$(VAR)``, loadBalancerSourceRanges) of a Triton of this
    deployment: the restricted admin APIs everywhere; on an internet-facing frontend also the
    client key on inference and metadata and the source ranges of ``publicFrontends``."""
    restricted = security.triton_restricted_apis
    args = list(triton_restricted_api_args(restricted, ADMIN_KEY_ENV))
    env = {ADMIN_KEY_ENV: (restricted.key.secret_name, restricted.key.secret_key)} if args else {}
    ranges: tuple[str, ...] = ()
    public = security.public_frontends.get(deployment.name)
    if frontend and public is not None and not deployment.frontend.internal_load_balancer:
        args += frontend_auth_args(public.auth, FRONTEND_KEY_ENV)
        env[FRONTEND_KEY_ENV] = (public.auth.key.secret_name, public.auth.key.secret_key)
        ranges = tuple(public.source_ranges)
    return tuple(args), env, ranges


def group_resources(resources: ResourcesConfig, engine: EngineSpec, group: WorkerGroupConfig, gpus_per_pod: int) -> ResourcesConfig:
    """Resources of a group pod when the stack sets none: memory from the engine's shard per rank
    (:func:`capacity.host_memory_request_gib`), the request without /dev/shm (the limit adds it)."""
    model = MODELS.get(engine.model)
    shm = quantity_gib(group.shm_size)
    if model is None or shm is None:
        return resources
    total = host_memory_request_gib(
        model.param_count,
        weight_bytes_per_param(engine.dtype, engine.quantization),
        engine.world_size,
        gpus_per_pod,
        shm,
    )
    request = max(1, total - int(shm))
    if shm != int(shm):  # a fractional GiB /dev/shm: keep the request in MiB
        request = max(1, round(total * GIB / 2**20 - shm * 1024))
        return ResourcesConfig(cpu=resources.cpu, memory=f"{request}Mi")
    return ResourcesConfig(cpu=resources.cpu, memory=f"{request}Gi")


def worker_roles(deployment: ModelDeploymentConfig) -> list[WorkerRole]:
    return list(MODE_GROUPS[deployment.mode])


def orchestrator_component_name(name: str, role: str) -> str:
    return f"{name}-orchestrator" if role == "workers" else f"{name}-{role}-orchestrator"


def workers_component_name(name: str, role: str) -> str:
    return f"{name}-{role}"


def serving_limits(orchestrator: OrchestratorConfig, engine: EngineSpec) -> EngineLimits:
    """Triton's limits for an engine: its own, with ``orchestrator.maxBatchSize`` if set."""
    limits = EngineLimits.from_engine_spec(engine)
    if orchestrator.max_batch_size is not None:
        limits = limits.model_copy(update={"max_batch_size": orchestrator.max_batch_size})
    return limits


def frontend_limits(limits: list[EngineLimits]) -> EngineLimits:
    """Limits every orchestrator accepts (element-wise minimum)."""
    return EngineLimits(
        max_batch_size=min(x.max_batch_size for x in limits),
        max_input_len=min(x.max_input_len for x in limits),
        max_seq_len=min(x.max_seq_len for x in limits),
    )


def tensorrt_llm_settings(orchestrator: OrchestratorConfig, engine_dir: str) -> TensorrtLlmSettings:
    return TensorrtLlmSettings(
        engine_dir=engine_dir,
        batching_strategy="V1" if orchestrator.batching_strategy == "v1" else "inflight_fused_batching",
        kv_cache_free_gpu_mem_fraction=orchestrator.kv_cache_free_gpu_mem_fraction,
        enable_kv_cache_reuse=orchestrator.enable_kv_cache_reuse,
        max_queue_delay_microseconds=orchestrator.max_queue_delay_microseconds,
    )


_LIMIT_KEYS = {"max_batch_size": "orchestrator.maxBatchSize", "max_input_len": "maxInputLen", "max_seq_len": "maxSeqLen"}


def _role_problems(name: str, role: str, args: DisaggregatedDeploymentArgs) -> list[str]:
    where = f"deployment '{name}' {role}"
    group = args.deployment.worker_groups()[role]
    engine = args.engines[role]
    pool = args.cluster.gpu_pools.get(group.pool)
    problems: list[str] = []
    if pool is None:
        known = ", ".join(sorted(args.cluster.gpu_pools)) or "none"
        return [f"{where}.pool: the cluster has no GPU pool '{group.pool}' (pools: {known}): fix the name"]
    layout = group_layout(group.pods_per_group, group.gpus_per_pod, pool)
    if layout.gpus_per_pod > pool.gpus_per_node:
        problems.append(
            f"{where}.gpusPerPod: {layout.gpus_per_pod} GPUs asked but pool '{pool.name}' nodes have "
            f"{pool.gpus_per_node}: lower gpusPerPod and raise podsPerGroup"
        )
    if layout.world_size != engine.world_size:
        problems.append(
            f"{where}: engine needs tpSize × ppSize = {engine.world_size} GPUs but the group has "
            f"podsPerGroup {layout.pods_per_group} × gpusPerPod {layout.gpus_per_pod} = "
            f"{layout.world_size}: make them equal"
        )
    if layout.multi_node and pool.fabric == "none":
        problems.append(
            f"{where}.podsPerGroup: {layout.pods_per_group} pods span nodes but pool '{pool.name}' has "
            "no RDMA fabric: keep the group on one node or use an EFA/InfiniBand/RoCE pool"
        )
    if layout.multi_node and layout.gpus_per_pod != pool.gpus_per_node:
        problems.append(
            f"{where}.gpusPerPod: multi-node groups must take whole nodes ({pool.gpus_per_node} GPUs; "
            f"{layout.gpus_per_pod} asked): TRT-LLM maps rank r to GPU r mod GPUs-per-node, so set "
            f"gpusPerPod: {pool.gpus_per_node}"
        )
    if group.autoscaling.enabled and min_groups(group) < 1:
        problems.append(
            f"{where}.minGroups: 0 with autoscaling enabled (an HPA keeps at least one group): "
            "set minGroups to 1 or more, or disable autoscaling"
        )
    problems += _quantity_problem(f"{where}.shmSize", group.shm_size)
    limits = serving_limits(args.deployment.orchestrator, engine)
    for violation in limits.violations(engine):
        key = _LIMIT_KEYS[violation.split("=", 1)[0]]
        problems.append(f"deployment '{name}' {key} ({role} engine): {violation}")
    if args.deployment.orchestrator.enable_kv_cache_reuse and not engine.use_paged_context_fmha:
        problems.append(
            f"deployment '{name}' orchestrator.enableKvCacheReuse is true but the {role} engine is built "
            "without usePagedContextFmha: set enableKvCacheReuse: false or rebuild with usePagedContextFmha"
        )
    return problems


MAX_NAME_LENGTH = 63
"""Service names are DNS labels; LWS pods carry ``<set>-<group>-<10-char hash>`` label values."""


def _name_problems(name: str, roles: list[WorkerRole]) -> list[str]:
    derived = [orchestrator_component_name(name, r) for r in roles]
    derived += [f"{workers_component_name(name, r)}-999-0123456789" for r in roles]
    longest = max(derived, key=len)
    if len(longest) <= MAX_NAME_LENGTH:
        return []
    room = len(name) - (len(longest) - MAX_NAME_LENGTH)
    return [
        f"deployment name '{name}' is {len(name)} characters; the Kubernetes names derived from it "
        f"(e.g. '{longest}') exceed {MAX_NAME_LENGTH}: use a name of at most {room} characters"
    ]


def _quantity_problem(key: str, quantity: str) -> list[str]:
    try:
        memory_bytes(quantity)
    except ValueError as err:
        return [f"{key}: {err}"]
    return []


def _tokenizer(args: DisaggregatedDeploymentArgs) -> tuple[TokenizerSettings, bool]:
    """Tokenizer settings and whether the path is the engine build's copy (known later)."""
    configured = args.deployment.frontend.tokenizer
    if configured is None:
        return TokenizerSettings(path=f"{PENDING_ENGINE_DIR}/tokenizer"), True
    return TokenizerSettings(path=configured), False


def plan_deployment(name: str, args: DisaggregatedDeploymentArgs) -> DeploymentPlan:
    """Validate ``args`` and lay the deployment out; ValueError lists every problem with its fix."""
    roles = worker_roles(args.deployment)
    problems: list[str] = []
    for what, given in (("engines", args.engines), ("engine_dirs", args.engine_dirs)):
        if sorted(given) != sorted(roles):
            problems.append(
                f"deployment '{name}' (mode {args.deployment.mode}) has worker groups {roles} but "
                f"{what} has {sorted(given)}: pass one entry per worker group role"
            )
    if problems:
        raise ValueError("; ".join(problems))
    for role in roles:
        problems += _role_problems(name, role, args)
    for key in ("frontend", "orchestrator"):
        memory = getattr(args.deployment, key).resources.memory
        problems += _quantity_problem(f"deployment '{name}' {key}.resources.memory", memory)
    problems += _name_problems(name, roles)
    for role in roles:
        autoscaled = args.deployment.worker_groups()[role].autoscaling.enabled
        if autoscaled and not args.custom_metrics and args.keda_prometheus_url is None:
            problems.append(
                f"deployment '{name}' {role}.autoscaling is enabled but neither KEDA (keda_prometheus_url) "
                "nor a metrics adapter (custom_metrics) serves Triton metrics: enable platform.keda, or "
                "disable autoscaling"
            )
    if len({args.engines[r].model for r in roles}) > 1:
        models = {r: args.engines[r].model for r in roles}
        problems.append(
            f"deployment '{name}': prefill and decode engines serve different models {models}: "
            "build both from the same model"
        )
    if problems:
        raise ValueError("; ".join(problems))

    tokenizer, from_engine = _tokenizer(args)
    limits = {r: serving_limits(args.deployment.orchestrator, args.engines[r]) for r in roles}
    urls = {r: orchestrator_url(orchestrator_component_name(name, r), args.namespace) for r in roles}
    frontend = FrontendSettings(
        orchestrator_url=urls[roles[0]],
        generation_orchestrator_url=urls.get("decode"),
        default_max_tokens=args.deployment.orchestrator.default_max_tokens,
    )
    try:
        frontend_repository = ModelRepositoryArgs(
            limits=frontend_limits(list(limits.values())),
            tokenizer=tokenizer,
            tensorrt_llm=tensorrt_llm_settings(args.deployment.orchestrator, PENDING_ENGINE_DIR),
            frontend=frontend,
        )
        plans = []
        for role in roles:
            group = args.deployment.worker_groups()[role]
            pool = args.cluster.gpu_pools[group.pool]
            plans.append(
                RolePlan(
                    role=role,
                    group=group,
                    engine=args.engines[role],
                    pool=pool,
                    layout=group_layout(group.pods_per_group, group.gpus_per_pod, pool),
                    repository=frontend_repository.model_copy(update={"limits": limits[role]}),
                    orchestrator_name=orchestrator_component_name(name, role),
                    workers_name=workers_component_name(name, role),
                )
            )
    except ValidationError as err:
        raise ValueError(f"deployment '{name}': {err}") from err
    return DeploymentPlan(tuple(plans), frontend_repository, from_engine)


def engine_network_tiers(
    name: str, roles: list[str], monitoring_namespaces: tuple[str, ...], frontend_internet: bool = False
) -> list[TierPolicy]:
    """Allow policies of an engine deployment: clients to the frontend (HTTP/gRPC), the frontend to
    the orchestrators' gRPC, each LeaderWorkerSet's pods among themselves (MPI, NCCL) and, in
    prefill-decode mode, with the other role's set (UCX KV-cache transfer); metrics from monitoring."""
    frontend = labels(name, "frontend")
    sets = {role: {LWS_NAME_LABEL: workers_component_name(name, role)} for role in roles}
    leaders = [labels(name, "orchestrator", role) for role in roles]
    frontend_egress = [rule([pods_peer(leader) for leader in leaders], tcp_ports(GRPC_PORT, HTTP_PORT))]
    if frontend_internet:  # tokenizer downloaded from Hugging Face at model load
        frontend_egress.append(rule(None, tcp_ports(443)))
    tiers = [
        TierPolicy(
            name=f"{name}-frontend",
            selector=frontend,
            ingress=[rule(None, tcp_ports(HTTP_PORT, GRPC_PORT)), *metrics_ingress(monitoring_namespaces, METRICS_PORT)],
            egress=frontend_egress,
        )
    ]
    for role in roles:
        kv_peers = [sets[other] for other in roles if other != role]
        tiers.append(
            worker_tier(
                f"{name}-{role}", sets[role], frontend, [HTTP_PORT, GRPC_PORT], [METRICS_PORT], kv_peers,
                monitoring_namespaces,
            )  # fmt: skip
        )
    return tiers


class DisaggregatedDeployment(pulumi.ComponentResource):
    """Frontend, orchestrator(s) and worker groups of one model deployment."""

    frontend: TritonFrontend
    orchestrators: dict[str, TritonOrchestrator]
    """By worker-group role ('workers', or 'prefill' and 'decode')."""
    workers: dict[str, TensorParallelWorkers]
    """By worker-group role."""
    network_policies: NetworkPolicies | None
    frontend_needs_internet: bool
    """The frontend tokenizer is a Hugging Face repository id (HTTPS egress allowed for it)."""
    frontend_endpoint: pulumi.Output[dict]
    """``{"grpc": "host:8001", "http": "host:8000"}`` (load balancer hostname, or cluster DNS)."""
    orchestrator_endpoint: pulumi.Output[str]
    """gRPC ``host:8001`` of the orchestrator requests enter (prefill in prefill-decode mode)."""

    def __init__(self, name: str, args: DisaggregatedDeploymentArgs, opts: pulumi.ResourceOptions | None = None):
        plan = plan_deployment(name, args)
        super().__init__(TYPE_TOKEN, name, None, opts)
        depends_on = opts.depends_on if opts is not None else None

        def child() -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, provider=args.cluster.provider, depends_on=depends_on)

        orchestrator = args.deployment.orchestrator
        disaggregated = args.deployment.mode == "prefill-decode"
        restricted, admin_env, _ = triton_security(args.security, args.deployment, frontend=False)
        self.orchestrators, self.workers = {}, {}
        for rp in plan.roles:
            engine_dir = args.engine_dirs[rp.role]
            resources = orchestrator.resources
            if args.size_group_memory and "resources" not in orchestrator.model_fields_set:
                resources = group_resources(resources, rp.engine, rp.group, rp.layout.gpus_per_pod)
            self.orchestrators[rp.role] = TritonOrchestrator(
                rp.orchestrator_name,
                TritonOrchestratorArgs(
                    instance=name,
                    role=rp.role,
                    namespace=args.namespace,
                    repository=rp.repository,
                    engine_dir=engine_dir,
                    layout=rp.layout,
                    pool=rp.pool,
                    resources=resources,
                    image=args.images.triton_trtllm,
                    claim_name=args.claim_name,
                    mount_path=args.mount_path,
                    shm_size=rp.group.shm_size,
                    kv_cache_transfer=disaggregated,
                    mpi_ssh_secret=args.mpi_ssh_secret or mpi_ssh_secret_name(name),
                    drain_seconds=args.drain_seconds,
                    restricted_api_args=restricted,
                    secret_keys=admin_env,
                ),
                child(),
            )
            self.workers[rp.role] = TensorParallelWorkers(
                rp.workers_name,
                TensorParallelWorkersArgs(
                    instance=name,
                    role=rp.role,
                    namespace=args.namespace,
                    group=rp.group,
                    layout=rp.layout,
                    pool=rp.pool,
                    leader_template=self.orchestrators[rp.role].leader_template,
                    repository_volume=self.orchestrators[rp.role].repository_volume,
                    engine_dir=engine_dir,
                    resources=resources,
                    image=args.images.triton_trtllm,
                    claim_name=args.claim_name,
                    mount_path=args.mount_path,
                    kv_cache_transfer=disaggregated,
                    mpi_ssh_secret=args.mpi_ssh_secret or mpi_ssh_secret_name(name),
                    placement_key=default_placement_key(rp.pool, rp.layout),
                    keda_prometheus_url=args.keda_prometheus_url,
                    drain_seconds=args.drain_seconds,
                ),
                child(),
            )
        tokenizer_dir = None
        self.frontend_needs_internet = not plan.tokenizer_from_engine and not str(
            args.deployment.frontend.tokenizer
        ).startswith("/")
        if plan.tokenizer_from_engine:
            entry_dir = pulumi.Output.from_input(args.engine_dirs[plan.entry_role])
            tokenizer_dir = entry_dir.apply(lambda d: f"{d.rstrip('/')}/tokenizer")
        frontend_args, frontend_env, public_ranges = triton_security(args.security, args.deployment, frontend=True)
        self.frontend = TritonFrontend(
            f"{name}-frontend",
            TritonFrontendArgs(
                instance=name,
                namespace=args.namespace,
                config=args.deployment.frontend,
                repository=plan.frontend_repository,
                tokenizer_dir=tokenizer_dir,
                image=args.images.frontend_image(),
                pool=args.cluster.system_pool,
                claim_name=args.claim_name,
                mount_path=args.mount_path,
                aws_load_balancer=args.cluster.platform == "eks",
                custom_metrics=args.custom_metrics,
                load_balancer_source_ranges=args.load_balancer_source_ranges or public_ranges,
                drain_seconds=args.drain_seconds,
                keda_prometheus_url=args.keda_prometheus_url,
                restricted_api_args=frontend_args,
                secret_keys=frontend_env,
            ),
            child(),
        )
        self.network_policies = None
        if args.network_policies:
            tiers = engine_network_tiers(
                name, [rp.role for rp in plan.roles], args.monitoring_namespaces, self.frontend_needs_internet
            )
            self.network_policies = NetworkPolicies(
                f"{name}-network-policies",
                NetworkPoliciesArgs(
                    instance=name, namespace=args.namespace, tiers=tuple(tiers), storage_cidrs=args.storage_cidrs
                ),
                child(),
            )
        self.frontend_endpoint = self.frontend.endpoint
        self.orchestrator_endpoint = pulumi.Output.from_input(self.orchestrators[plan.entry_role].url)
        self.register_outputs(
            {"frontend_endpoint": self.frontend_endpoint, "orchestrator_endpoint": self.orchestrator_endpoint}
        )
