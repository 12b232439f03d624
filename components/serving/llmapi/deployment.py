"""LlmApiDeployment: one model served by the llmapi runtime, its tiers composed per mode.

* ``runtime``: :class:`RuntimePackage`, the ConfigMap with the ``runtime/`` package;
* ``router`` (:class:`LlmApiRouter`): ``--workers dns://<workers leaders>:8000``, or in
  prefill-decode mode ``--context dns://<prefill leaders>:8000 --generation dns://<decode
  leaders>:8000``;
* ``frontend`` (:class:`LlmApiFrontend`): OpenAI/KServe, ``--router http://<router>:8000``;
* ``workers`` (:class:`LlmApiWorkers`): one LeaderWorkerSet per role (``workers``, or ``prefill``
  and ``decode``), each with its own YAML, replicas, HPA and PDB;
* ``network_policies`` (:class:`NetworkPolicies`): default deny plus the flows above.

Kubernetes names: ``<name>-frontend``, ``<name>-router``, ``<name>-runtime``, ``<name>-<role>``
(LeaderWorkerSet, HPA, PDB), ``<name>-<role>-leaders`` (headless Service), ``<name>-<role>-llm-api``
(ConfigMap), ``<name>-<policy>`` (NetworkPolicies).
"""

from __future__ import annotations

from typing import Any, Literal

import pulumi
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from components.config.capacity import TIME_PER_OUTPUT_TOKEN_S, quantity_gib, stream_drain_seconds
from components.config.deployment import RoutingConfig
from components.config.errors import ConfigError
from components.config.images import DEFAULT_GENERATION
from components.config.models import ModelSourceConfig
from components.config.scheduling import NodePool
from components.config.security import mpi_ssh_secret_name
from components.config.serving_tiers import ServingTiersConfig, TierSettings, resolve_tiers
from components.serving.cpu_tier import PORT
from components.serving.labels import LWS_NAME_LABEL
from components.serving.llmapi.checks import deployment_problems, group_memory_gib
from components.serving.llmapi.frontend import (
    ApiKeySpec,
    LlmApiFrontend,
    LlmApiFrontendArgs,
    frontend_pod_labels,
)
from components.serving.llmapi.router import LlmApiRouter, LlmApiRouterArgs, router_pod_labels, router_url
from components.serving.llmapi.workers import (
    LlmApiWorkers,
    LlmApiWorkersArgs,
    discovery_url,
    leader_labels,
    uses_router_drain,
)
from components.serving.network_policies import (
    NetworkPolicies,
    NetworkPoliciesArgs,
    TierPolicy,
    metrics_ingress,
    pods_peer,
    prometheus_egress,
    rule,
    tcp_ports,
    worker_tier,
)
from components.serving.pulumi_options import check_input_str
from components.serving.repository_config_maps import content_hash
from components.serving.runtime_package import RuntimePackage, RuntimePackageArgs, runtime_volume
from engines.llm_api import GROUP_KEYS, GROUP_ROLES, MODE_GROUPS, LlmApiOptions, Mode, llm_api_yaml
from runtime.capabilities import capabilities

TYPE_TOKEN = "disagg:serving:LlmApiDeployment"
MAX_NAME_LENGTH = 63


class WorkerGroupSpec(BaseModel):
    """One role's worker groups (plain values; ``llmapi.args`` maps WorkerGroupConfig onto it)."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    pool: NodePool
    pods_per_group: int = Field(default=1, ge=1)
    gpus_per_pod: int = Field(ge=1)
    llm_api: LlmApiOptions | None = None
    """The LLM API options of the role (typed): rendered for its server role, and checked against
    the pool and the deployment's ``model`` (``llmapi.checks``). Give this or ``llm_api_yaml``."""
    llm_api_yaml: str | None = None
    """The LLM API options as YAML already rendered (``engines.llm_api.llm_api_yaml``), for options
    the typed model does not carry; only its YAML-level checks run."""
    groups: int = Field(default=1, ge=0)
    min_groups: int | None = None
    max_groups: int | None = None
    autoscaling: bool = False
    target_kv_cache_utilization: float = Field(default=0.8, gt=0, le=1)
    target_waiting_requests: float = Field(default=4, gt=0)
    cpu: str = "16"
    memory: str = "64Gi"
    memory_includes_shm: bool = False
    """``memory`` counts /dev/shm already (``capacity.llmapi_group_memory_gib``)."""
    shm_size: str = "32Gi"
    placement_key: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> WorkerGroupSpec:
        if (self.llm_api is None) == (self.llm_api_yaml is None):
            raise ValueError("give the LLM API options once: llm_api (typed, checked) or llm_api_yaml (rendered)")
        return self

    def options_yaml(self, role: str, generation: str = DEFAULT_GENERATION) -> str:
        """The YAML ``trtllm-serve`` reads for ``role`` (workers, prefill or decode), with what the
        image's capability ``generation`` takes (runtime.capabilities)."""
        if self.llm_api_yaml is not None:
            return self.llm_api_yaml
        assert self.llm_api is not None
        timeout = capabilities(generation).kv_transfer_timeout_ms
        return llm_api_yaml(self.llm_api, role=GROUP_ROLES[role], kv_transfer_timeout=timeout)  # type: ignore[index]


class TierSpec(BaseModel):
    """Replicas and resources of a CPU tier."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_replicas: int = Field(default=2, ge=1)
    max_replicas: int = Field(default=4, ge=1)
    target_cpu_utilization: int = Field(default=70, ge=10, le=100)
    cpu: str = "2"
    memory: str = "4Gi"


DEFAULT_FRONTEND = TierSpec(min_replicas=2, max_replicas=8)
DEFAULT_ROUTER = TierSpec(min_replicas=2, max_replicas=4, memory="2Gi")


class LlmApiDeploymentArgs(BaseModel):
    """Everything one llmapi deployment is wired to (plain values and Inputs)."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    namespace: str
    mode: Mode = "tensor-parallel"
    worker_image: str
    """TRT-LLM release image (trtllm-serve); also the CPU tiers' image unless given."""
    frontend_image: str | None = None
    router_image: str | None = None
    model_dir: Any
    """``pulumi.Input[str]``: ``ModelPreparation.model_dir``."""
    model: ModelSourceConfig | None = None
    """The checkpoint served (what ``ModelPreparation`` prepared): with it, the groups given typed
    ``llm_api`` are checked as the stack loader checks them (GPUs, heads, precision, GPU memory,
    prefill/decode) and a group without ``memory`` gets its host memory from the model."""
    served_model_name: str
    max_seq_len: int = Field(ge=1)
    default_max_tokens: int = Field(default=512, ge=1)
    workers: dict[str, WorkerGroupSpec]
    """Role -> groups: ``{"workers": ...}`` or ``{"prefill": ..., "decode": ...}``."""
    frontend: TierSpec = DEFAULT_FRONTEND
    router: TierSpec = DEFAULT_ROUTER
    system_pool: NodePool
    claim_name: str
    mount_path: str = "/models"
    runtime_files: dict[str, str]
    """``runtime_package_files(runtime_package_dir())``."""
    service_type: Literal["ClusterIP", "LoadBalancer"] = "LoadBalancer"
    public: bool = False
    load_balancer_source_ranges: tuple[str, ...] = ()
    aws_load_balancer: bool = True
    custom_metrics: bool = False
    """The custom metrics API serves ``llmapi_*`` metrics (Prometheus Adapter): HPAs scale the groups."""
    keda_prometheus_url: str | None = None
    """KEDA is installed and queries this Prometheus: every tier gets a ScaledObject instead of an HPA."""
    drain_seconds: int = Field(default=0, ge=0)
    """The longest stream of this deployment (``serving_tiers.serving_drain_seconds``); left out: the
    longest output ``max_seq_len`` allows at the drain's TPOT estimate (``capacity.stream_drain_seconds``),
    as the stack derives it for a deployment without a workload."""
    api_key: ApiKeySpec | None = None
    """The frontend's client key (a public frontend needs it)."""
    routing: RoutingConfig = RoutingConfig()
    """How the router picks a group (``orchestrator.routing``)."""
    kv_events: bool = False
    """kv-aware: the router polls the workers' KV-cache events (their YAML carries the event buffer)."""
    tokens_per_block: int = Field(default=32, ge=1)
    """The prefix-holding servers' ``kv_cache_config.tokens_per_block``."""
    tiers: dict[str, TierSettings] = {}
    """``{"frontend": ..., "router": ...}`` (``serving_tiers.resolve_tiers``); left out: the processes'
    defaults with a request timeout no shorter than the drain (``resolve_tiers`` without a workload),
    so a stream as long as ``max_seq_len`` allows is cut neither by a timeout nor at scale-in."""
    trust_remote_code: bool = False
    mpi_ssh_secret: str | None = None
    """Secret with the SSH keys of multi-node groups; None: ``<name>-mpi-ssh``."""
    nixl_plugins_dir: str | None = None
    trtllm_generation: str = DEFAULT_GENERATION
    """Capability-table generation of ``worker_image`` (``StackConfig.trtllm_generation``)."""
    network_policies: bool = True
    monitoring_namespaces: tuple[str, ...] = ("monitoring",)
    """Namespaces whose pods may scrape the metrics ports (Prometheus)."""
    storage_cidrs: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _derived(cls, data: Any) -> Any:
        """The drain and the tiers the stack would derive, where the caller leaves them out."""
        if not isinstance(data, dict) or not isinstance(data.get("max_seq_len"), int) or data["max_seq_len"] < 1:
            return data  # the field checks name what is wrong
        out = dict(data)
        longest = max(1, data["max_seq_len"] - 1)
        if "drain_seconds" not in out:
            out["drain_seconds"] = stream_drain_seconds(longest, TIME_PER_OUTPUT_TOKEN_S)
        if not out.get("tiers") and isinstance(out["drain_seconds"], int):
            frontend, router = out.get("frontend", DEFAULT_FRONTEND), out.get("router", DEFAULT_ROUTER)
            out["tiers"] = resolve_tiers(
                ServingTiersConfig(), None, max_output_tokens=longest, drain_seconds=out["drain_seconds"],
                frontend_min_replicas=getattr(frontend, "min_replicas", 1),
                router_min_replicas=getattr(router, "min_replicas", 1),
                phases=2 if out.get("mode") == "prefill-decode" else 1,
            )
        return out

    @model_validator(mode="after")
    def _checks(self) -> LlmApiDeploymentArgs:
        check_input_str(self.model_dir, "model_dir")
        roles = sorted(self.workers)
        expected = sorted(MODE_GROUPS[self.mode])
        problems = []
        if roles != expected:
            problems.append(f"mode {self.mode} needs worker groups {expected}, got {roles}: pass one entry per role")
        if set(self.tiers) - {"frontend", "router"}:
            problems.append(f"tiers: {sorted(self.tiers)} has keys other than 'frontend' and 'router': remove them")
        for role, spec in self.workers.items():
            if spec.autoscaling and not self.custom_metrics and self.keda_prometheus_url is None:
                problems.append(
                    f"{role}.autoscaling is enabled but neither KEDA (keda_prometheus_url) nor a metrics adapter "
                    "(custom_metrics) serves trtllm-serve metrics: enable platform.keda, or disable autoscaling"
                )
        if roles == expected:
            problems += deployment_problems(self)
        if problems:  # one line per problem (the synth CLI prints them so, without a traceback)
            raise ConfigError(problems, what="LlmApiDeploymentArgs")
        return self

    def worker_memory(self, role: str) -> tuple[str, bool]:
        """(memory, includes /dev/shm) of a ``role`` pod: as given, else from ``model`` and the shm size."""
        spec = self.workers[role]
        shm = quantity_gib(spec.shm_size)
        if "memory" in spec.model_fields_set or self.model is None or spec.llm_api is None or shm is None:
            return spec.memory, spec.memory_includes_shm
        return f"{group_memory_gib(spec, self.model, shm)}Gi", True


def role_names(name: str, roles: list[str]) -> dict[str, str]:
    return {role: f"{name}-{role}" for role in roles}


def name_problems(name: str, roles: list[str]) -> list[str]:
    """Kubernetes names derived from ``name`` that would be too long."""
    derived = [f"{name}-{r}-leaders" for r in roles] + [f"{name}-{r}-999-0123456789" for r in roles]
    longest = max(derived, key=len)
    if len(longest) <= MAX_NAME_LENGTH:
        return []
    room = len(name) - (len(longest) - MAX_NAME_LENGTH)
    return [f"deployment name '{name}' gives Kubernetes names such as '{longest}' over {MAX_NAME_LENGTH} characters: use at most {room} characters"]


def llmapi_network_tiers(
    name: str, roles: list[str], monitoring_namespaces: tuple[str, ...], drain_prometheus_url: str | None = None
) -> list[TierPolicy]:
    """The allow policies of an llmapi deployment (see :mod:`components.serving.network_policies`)."""
    frontend, router = frontend_pod_labels(name), router_pod_labels(name)
    sets = {role: {LWS_NAME_LABEL: set_name} for role, set_name in role_names(name, roles).items()}
    leaders = [leader_labels(name, role) for role in roles]
    tiers = [
        TierPolicy(
            name=f"{name}-frontend",
            selector=frontend,
            ingress=[rule(None, tcp_ports(PORT))],
            egress=[rule([pods_peer(router)], tcp_ports(PORT))],
        ),
        TierPolicy(
            name=f"{name}-router",
            selector=router,
            ingress=[rule([pods_peer(frontend)], tcp_ports(PORT)), *metrics_ingress(monitoring_namespaces, PORT)],
            egress=[rule([pods_peer(leader) for leader in leaders], tcp_ports(PORT))],
        ),
    ]
    for role in roles:
        kv_peers = [sets[other] for other in roles if other != role]
        # the preStop drain asks Prometheus for the routers' view where the release has no gauges
        drain = prometheus_egress(drain_prometheus_url, monitoring_namespaces) if drain_prometheus_url else []
        tiers.append(
            worker_tier(f"{name}-{role}", sets[role], router, [PORT], [PORT], kv_peers, monitoring_namespaces, drain)
        )
    return tiers


class LlmApiDeployment(pulumi.ComponentResource):
    """Runtime package, router, frontend, worker groups and NetworkPolicies of one model."""

    runtime: RuntimePackage
    router: LlmApiRouter
    frontend: LlmApiFrontend
    workers: dict[str, LlmApiWorkers]
    network_policies: NetworkPolicies | None
    frontend_endpoint: pulumi.Output[dict]
    router_url: str

    def __init__(self, name: str, args: LlmApiDeploymentArgs, opts: pulumi.ResourceOptions | None = None):
        roles = sorted(args.workers, key=GROUP_KEYS.index)
        names = role_names(name, roles)
        problems = name_problems(name, roles)
        if problems:
            raise ValueError("; ".join(problems))
        ssh_secret = args.mpi_ssh_secret or mpi_ssh_secret_name(name)
        try:
            runtime_args = RuntimePackageArgs(instance=name, namespace=args.namespace, files=args.runtime_files)
            worker_args = {
                role: LlmApiWorkersArgs(
                    instance=name,
                    role=role,  # type: ignore[arg-type]
                    namespace=args.namespace,
                    image=args.worker_image,
                    pool=spec.pool,
                    pods_per_group=spec.pods_per_group,
                    gpus_per_pod=spec.gpus_per_pod,
                    llm_api_yaml=spec.options_yaml(role, args.trtllm_generation),
                    model_dir=args.model_dir,
                    claim_name=args.claim_name,
                    mount_path=args.mount_path,
                    groups=spec.groups,
                    min_groups=spec.min_groups,
                    max_groups=spec.max_groups,
                    autoscaling=spec.autoscaling,
                    target_kv_cache_utilization=spec.target_kv_cache_utilization,
                    target_waiting_requests=spec.target_waiting_requests,
                    cpu=spec.cpu,
                    memory=args.worker_memory(role)[0],
                    memory_includes_shm=args.worker_memory(role)[1],
                    shm_size=spec.shm_size,
                    placement_key=spec.placement_key,
                    trust_remote_code=args.trust_remote_code,
                    mpi_ssh_secret=ssh_secret,
                    nixl_plugins_dir=args.nixl_plugins_dir,
                    drain_seconds=args.drain_seconds,
                    keda_prometheus_url=args.keda_prometheus_url,
                    trtllm_generation=args.trtllm_generation,
                    router_deployment=f"{name}-router",
                )
                for role, spec in args.workers.items()
            }
            urls = {role: discovery_url(names[role], args.namespace) for role in roles}
            cpu_image = args.router_image or args.worker_image
            tier = args.router
            router_args = LlmApiRouterArgs(
                instance=name,
                namespace=args.namespace,
                image=cpu_image,
                pool=args.system_pool,
                workers_url=urls.get("workers"),
                context_url=urls.get("prefill"),
                generation_url=urls.get("decode"),
                runtime_volume=runtime_volume(f"{name}-runtime", args.runtime_files),
                runtime_hash=content_hash(args.runtime_files),
                cpu=tier.cpu,
                memory=tier.memory,
                min_replicas=tier.min_replicas,
                max_replicas=tier.max_replicas,
                target_cpu_utilization=tier.target_cpu_utilization,
                drain_seconds=args.drain_seconds,
                keda_prometheus_url=args.keda_prometheus_url,
                trtllm_generation=args.trtllm_generation,
                routing=args.routing,
                kv_events=args.kv_events,
                tokens_per_block=args.tokens_per_block,
                serving=args.tiers.get("router"),
            )
            tier = args.frontend
            frontend_args = LlmApiFrontendArgs(
                instance=name,
                namespace=args.namespace,
                image=args.frontend_image or args.worker_image,
                pool=args.system_pool,
                router_url=router_url(f"{name}-router", args.namespace),
                served_model_name=args.served_model_name,
                tokenizer=args.model_dir,
                max_seq_len=args.max_seq_len,
                default_max_tokens=args.default_max_tokens,
                runtime_volume=runtime_volume(f"{name}-runtime", args.runtime_files),
                runtime_hash=content_hash(args.runtime_files),
                claim_name=args.claim_name,
                mount_path=args.mount_path,
                cpu=tier.cpu,
                memory=tier.memory,
                min_replicas=tier.min_replicas,
                max_replicas=tier.max_replicas,
                target_cpu_utilization=tier.target_cpu_utilization,
                service_type=args.service_type,
                public=args.public,
                load_balancer_source_ranges=args.load_balancer_source_ranges,
                aws_load_balancer=args.aws_load_balancer,
                api_key=args.api_key,
                drain_seconds=args.drain_seconds,
                keda_prometheus_url=args.keda_prometheus_url,
                serving=args.tiers.get("frontend"),
            )
        except ValidationError as err:
            messages = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in err.errors())
            raise ValueError(f"deployment '{name}': {messages}") from None
        super().__init__(TYPE_TOKEN, name, None, opts)
        provider = opts.provider if opts is not None else None
        depends_on = opts.depends_on if opts is not None else None

        def child() -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, provider=provider, depends_on=depends_on)

        self.runtime = RuntimePackage(f"{name}-runtime", runtime_args, child())
        self.workers = {role: LlmApiWorkers(names[role], worker_args[role], child()) for role in roles}
        self.router = LlmApiRouter(f"{name}-router", router_args, child())
        self.router_url = router_url(f"{name}-router", args.namespace)
        self.frontend = LlmApiFrontend(f"{name}-frontend", frontend_args, child())
        self.network_policies = None
        if args.network_policies:
            self.network_policies = NetworkPolicies(
                f"{name}-network-policies",
                NetworkPoliciesArgs(
                    instance=name,
                    namespace=args.namespace,
                    tiers=tuple(
                        llmapi_network_tiers(
                            name, roles, args.monitoring_namespaces,
                            args.keda_prometheus_url if uses_router_drain(next(iter(worker_args.values()))) else None,
                        )
                    ),  # fmt: skip
                    storage_cidrs=args.storage_cidrs,
                ),
                child(),
            )
        self.frontend_endpoint = self.frontend.endpoint
        self.register_outputs({"frontend_endpoint": self.frontend_endpoint, "router_url": self.router_url})
