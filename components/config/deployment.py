"""Configuration of one disaggregated model deployment: frontend, orchestrator, workers."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from components.config.base import ConfigModel, check_dns_label
from components.config.images import (
    DEFAULT_TRITON_TRTLLM_IMAGE,
    DEFAULT_TRTLLM_IMAGE,
    ImageFeature,
    Runtime,
    parse_version,
    trtllm_capabilities,
    trtllm_generation,
)
from components.config.serving_tiers import ServingTiersConfig
from components.config.workload import WorkloadConfig
from engines.llm_api import LlmApiOptions, Mode


class ResourcesConfig(ConfigModel):
    """CPU and memory of one container (Kubernetes quantities)."""

    cpu: str = "4"
    memory: str = "16Gi"


MAX_TOKENIZER_CHARS = 1024
"""Longest ``frontend.tokenizer``: Hugging Face repository ids are at most 96 characters per part,
and a path on the shared storage needs no more (it is passed on the frontend's command line)."""


class FrontendConfig(ConfigModel):
    """CPU Triton tier: client traffic (KServe v2 HTTP/gRPC), tokenization, streaming."""

    min_replicas: int = Field(default=2, ge=1)
    max_replicas: int = Field(default=8, ge=1)
    target_cpu_utilization: int = Field(default=70, ge=10, le=100)
    resources: ResourcesConfig = ResourcesConfig(cpu="8", memory="16Gi")
    service_type: Literal["ClusterIP", "LoadBalancer"] = "LoadBalancer"
    internal_load_balancer: bool = True
    """On AWS, keep the NLB internal (no public endpoint) unless set to false."""
    tokenizer: str | None = None
    """Tokenizer location (HF repo id or path on shared storage); defaults to the engine's model."""
    served_model_name: str | None = None
    """Model name clients send (OpenAI ``model``, KServe ``/v2/models/<name>``); None: the
    deployment's name."""

    @field_validator("tokenizer")
    @classmethod
    def _tokenizer(cls, tokenizer: str | None) -> str | None:
        if tokenizer is not None and (
            len(tokenizer) > MAX_TOKENIZER_CHARS or not tokenizer.strip() or any(c.isspace() for c in tokenizer)
        ):
            raise ValueError(
                f"tokenizer '{tokenizer}' ({len(tokenizer)} characters) is not a Hugging Face repository id "
                f"(org/name) or a path of at most {MAX_TOKENIZER_CHARS} characters without spaces: give "
                "the repository id (e.g. meta-llama/Llama-3.1-8B-Instruct) or the tokenizer's path on "
                "the shared storage, or leave it out (the model's own)"
            )
        return tokenizer

    @model_validator(mode="after")
    def _replica_bounds(self) -> FrontendConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas ({self.min_replicas}) is larger than maxReplicas "
                f"({self.max_replicas}): raise maxReplicas or lower minReplicas"
            )
        return self


class RoutingConfig(ConfigModel):
    """The router's choice of a worker group (``python -m runtime.router``; llmapi runtime)."""

    policy: Literal["least-outstanding", "kv-aware"] = "least-outstanding"
    """least-outstanding: fewest requests outstanding (upstream's ``load_balancing`` router).
    kv-aware: least cost in tokens — the prompt tokens an endpoint would prefill (those not in its KV
    cache, known from the workers' KV-cache events or approximated) times ``overlapWeight``, plus the
    tokens queued on it times ``loadWeight``; the context side where the prefix lives, the generation
    side by load (``runtime/kv_routing.py``)."""
    overlap_weight: float = Field(default=2.0, ge=0)
    """kv-aware: weight of the prompt tokens an endpoint would have to prefill (0: ignore the cache)."""
    load_weight: float = Field(default=1.0, ge=0)
    """kv-aware: weight of the tokens already queued on an endpoint."""
    kv_events: Literal["auto", "on", "off"] = "auto"
    """kv-aware: read the workers' ``/kv_cache_events`` (rendering ``kv_cache_config.event_buffer_max_size``).
    auto: where the image's TensorRT-LLM generation is proven to serve them (``runtime/capabilities.py``),
    else approximate from the router's own decisions; on: refused on an image not proven to."""
    event_buffer_max_size: int = Field(default=1024, ge=1)
    """kv-aware with events: events each worker keeps until the router polls them."""
    max_local_prefill_tokens: int | None = Field(default=None, ge=0)
    """prefill-decode, kv-aware: a prompt with at most this many uncached tokens on the chosen
    generation server is prefilled there (upstream's ``conditional_disagg_config.max_local_prefill_length``);
    None: always disaggregate."""

    @model_validator(mode="after")
    def _kv_only(self) -> RoutingConfig:
        if self.policy != "kv-aware" and self.max_local_prefill_tokens is not None:
            raise ValueError(
                f"orchestrator.routing.maxLocalPrefillTokens {self.max_local_prefill_tokens} needs policy kv-aware "
                f"(got {self.policy!r}): set orchestrator.routing.policy: kv-aware or remove it"
            )
        return self


def serves_kv_events(reference: str, declared_version: str | None) -> bool:
    """Whether the capability table proves ``POST /kv_cache_events`` for the image's generation."""
    caps = trtllm_capabilities(reference, declared_version)
    return caps is not None and caps.kv_cache_events


def routing_problems(deployment: ModelDeploymentConfig, images: ImagesConfig) -> list[str]:
    """Refusals of ``orchestrator.routing`` against the deployment's servers and image, one line each
    (relative to the deployment)."""
    routing = deployment.orchestrator.routing
    if routing.policy != "kv-aware" or deployment.runtime != "llmapi":
        return []
    problems = []
    groups = deployment.worker_groups()
    holder = "prefill" if "prefill" in groups else "workers"
    if holder in groups and not groups[holder].llm_api.kv_cache_config.enable_block_reuse:
        problems.append(
            f"{holder}.llmApi.kvCacheConfig.enableBlockReuse is false, but orchestrator.routing.policy is "
            "kv-aware: without block reuse no prefix is ever cached; enable block reuse or route least-outstanding"
        )
    if routing.kv_events == "on" and not serves_kv_events(images.trtllm, images.trtllm_version):
        generation = trtllm_generation(images.trtllm, images.trtllm_version) or "unknown"
        problems.append(
            f"orchestrator.routing.kvEvents is 'on', but TensorRT-LLM {generation} ({images.trtllm}) is not proven to "
            "serve /kv_cache_events (runtime/capabilities.py, row kv_cache_events): set kvEvents: auto (the router "
            "then approximates from its own decisions)"
        )
    return problems


class OrchestratorConfig(ConfigModel):
    """The tier between frontend and workers. Runtime 'engine': Triton with the TRT-LLM backend
    in orchestrator mode; runtime 'llmapi': the router (``python -m runtime.router``)."""

    resources: ResourcesConfig = ResourcesConfig(cpu="8", memory="32Gi")
    replicas: int = Field(default=2, ge=1)
    """Router replicas (llmapi; the engine runtime runs its orchestrator inside each group leader);
    the router's autoscaler never goes below it."""
    max_replicas: int | None = Field(default=None, ge=1)
    """Most router replicas the autoscaler may run (llmapi); None: twice ``replicas``."""
    routing: RoutingConfig = RoutingConfig()
    """How the router (llmapi) picks a worker group leader."""
    routing_policy: Literal["least-outstanding-requests", "round-robin"] | None = None
    """Deprecated: ``routing.policy``. 'least-outstanding-requests' is read as ``routing.policy:
    least-outstanding`` (with a warning); 'round-robin' was accepted but never implemented and is refused."""

    @model_validator(mode="after")
    def _deprecated_routing_policy(self) -> OrchestratorConfig:
        if self.routing_policy == "round-robin":
            raise ValueError(
                "orchestrator.routingPolicy 'round-robin' was never implemented by the router: remove it, or set "
                "orchestrator.routing.policy to least-outstanding or kv-aware"
            )
        return self

    def deprecations(self) -> list[str]:
        """Keys still read under an old name, one line each (printed as warnings)."""
        if self.routing_policy is not None:
            return ["orchestrator.routingPolicy is deprecated: it is read as orchestrator.routing.policy "
                    "'least-outstanding'; write that instead"]
        return []
    max_queue_delay_microseconds: int = Field(default=1000, ge=0)
    kv_cache_free_gpu_mem_fraction: float = Field(default=0.9, gt=0, le=1)
    enable_kv_cache_reuse: bool = True
    batching_strategy: Literal["inflight_fused_batching", "v1"] = "inflight_fused_batching"
    max_batch_size: int | None = Field(default=None, ge=1)
    """Triton's max batch size; defaults to the engine's maxBatchSize and may not exceed it."""
    default_max_tokens: int = Field(default=512, ge=1)
    """Output tokens generated when a request sends no ``max_tokens`` (applied by the frontend's
    preprocessing, capped at the engine's maxSeqLen minus the prompt)."""


class AutoscalingConfig(ConfigModel):
    """Scale on Triton/TRT-LLM metrics (needs Prometheus + an adapter for custom metrics)."""

    enabled: bool = False
    target_queue_time_ms: int = Field(default=50, ge=1)
    target_kv_cache_utilization: float = Field(default=0.8, gt=0, le=1)


class WorkerGroupConfig(ConfigModel):
    """GPU workers: LeaderWorkerSet groups, each holding the shards of one model copy."""

    model: str | None = None
    """Runtime 'llmapi': key of the checkpoint in ``disagg:models``."""
    engine: str | None = None
    """Runtime 'engine': key of the engine in ``disagg:engines``."""
    llm_api: LlmApiOptions = LlmApiOptions()
    """Runtime 'llmapi': the options ``trtllm-serve`` runs this group with (key ``llmApi``)."""
    pool: str
    """Name of the GPU node pool the workers run on."""
    groups: int = Field(default=1, ge=0)
    """Replicas of the whole group (each serves one copy of the model)."""
    min_groups: int | None = Field(default=None, ge=0)
    max_groups: int | None = Field(default=None, ge=1)
    pods_per_group: int = Field(default=1, ge=1)
    """Pods in one group (one per node); tensor × pipeline parallel size = podsPerGroup × gpusPerPod."""
    gpus_per_pod: int | None = Field(default=None, ge=1)
    """GPUs per pod; defaults to every GPU of the pool's node."""
    shm_size: str = "64Gi"
    autoscaling: AutoscalingConfig = AutoscalingConfig()

    @model_validator(mode="after")
    def _group_bounds(self) -> WorkerGroupConfig:
        lo = self.min_groups if self.min_groups is not None else self.groups
        hi = self.max_groups if self.max_groups is not None else self.groups
        if not lo <= self.groups <= hi:
            raise ValueError(
                f"groups ({self.groups}) must lie between minGroups ({lo}) and maxGroups ({hi}): "
                "adjust groups or the bounds"
            )
        if self.autoscaling.enabled and lo < 1:
            # the worker components refuse it too (llmapi_workers, triton_workers): a scaler at 0
            # groups leaves the router no server to send the request that would wake it
            raise ValueError(
                f"minGroups is {lo} but autoscaling is enabled, and no request reaches a role scaled to 0 "
                "groups (nothing would scale it up again): set minGroups: 1 or more"
            )
        if self.groups == 0 and not self.autoscaling.enabled:
            raise ValueError(
                "groups is 0 and autoscaling is off, so no worker ever runs and every request fails: "
                "set groups: 1 or more (or remove the deployment)"
            )
        return self


LLMAPI_FRONTEND_RESOURCES = ResourcesConfig(cpu="2", memory="4Gi")
"""Frontend of runtime 'llmapi' when ``frontend.resources`` is not set: one asyncio process, so the
engine runtime's 8-CPU Triton default would be reserved and never used."""
LLMAPI_ROUTER_RESOURCES = ResourcesConfig(cpu="2", memory="2Gi")
"""Router of runtime 'llmapi' when ``orchestrator.resources`` is not set (one asyncio process)."""


class ModelDeploymentConfig(ConfigModel):
    """One served model: its three tiers, each scaled on its own."""

    name: str
    """DNS-1123 label, at most 40 characters: prefixes every Kubernetes object of the deployment."""
    runtime: Runtime = "llmapi"
    """'llmapi': trtllm-serve (LLM API, PyTorch backend) on checkpoints from ``disagg:models``;
    'engine': Triton's TensorRT-LLM backend on ``trtllm-build`` engines (TensorRT-LLM <= 1.2)."""
    mode: Mode = "tensor-parallel"
    """'tensor-parallel': one worker group type; 'prefill-decode': separate context and
    generation worker groups (``prefill`` and ``decode``) instead of ``workers``."""
    frontend: FrontendConfig = FrontendConfig()
    orchestrator: OrchestratorConfig = OrchestratorConfig()
    workers: WorkerGroupConfig | None = None
    prefill: WorkerGroupConfig | None = None
    decode: WorkerGroupConfig | None = None
    workload: WorkloadConfig | None = None
    """What the deployment must deliver (lengths, rate, TTFT/TPOT SLO, budget) and what the planner
    predicted for its layout; synth forecasts GPUs, cost and throughput from it (``disaggctl plan``)."""
    serving: ServingTiersConfig = ServingTiersConfig()
    """Runtime 'llmapi': timeouts, admission and drain delay of the frontend and router processes;
    what is unset is derived from ``workload`` (``components/config/serving_tiers.py``)."""

    @model_validator(mode="after")
    def _groups_match_mode(self) -> ModelDeploymentConfig:
        if self.mode == "tensor-parallel":
            if self.workers is None:
                raise ValueError("mode 'tensor-parallel' needs a 'workers' section: add one")
            if self.prefill is not None or self.decode is not None:
                raise ValueError(
                    "'prefill'/'decode' are only used with mode 'prefill-decode': "
                    "remove them or set mode: prefill-decode"
                )
        else:
            if self.prefill is None or self.decode is None:
                raise ValueError(
                    "mode 'prefill-decode' needs both 'prefill' and 'decode' sections: add them"
                )
            if self.workers is not None:
                raise ValueError(
                    "mode 'prefill-decode' uses 'prefill' and 'decode', not 'workers': "
                    "move the settings there or set mode: tensor-parallel"
                )
        return self

    @model_validator(mode="after")
    def _serving_is_llmapi(self) -> ModelDeploymentConfig:
        if self.runtime != "llmapi" and self.serving.model_fields_set:
            raise ValueError(
                f"serving is set, but runtime is '{self.runtime}': the serving keys configure the llmapi "
                "frontend and router processes; remove serving or set runtime: llmapi"
            )
        return self

    @field_validator("name")
    @classmethod
    def _name_is_dns_label(cls, name: str) -> str:
        return check_dns_label(name, "name", max_length=40)

    def worker_groups(self) -> dict[str, WorkerGroupConfig]:
        """The worker groups by role ('workers', or 'prefill' and 'decode')."""
        roles = {"workers": self.workers, "prefill": self.prefill, "decode": self.decode}
        return {role: group for role, group in roles.items() if group is not None}

    def frontend_resources(self) -> ResourcesConfig:
        """What one frontend pod requests (runtime defaults apply when the stack sets none)."""
        if self.runtime == "llmapi" and "resources" not in self.frontend.model_fields_set:
            return LLMAPI_FRONTEND_RESOURCES
        return self.frontend.resources

    def router_resources(self) -> ResourcesConfig | None:
        """What one router pod requests (llmapi); None: the engine runtime has no router tier."""
        if self.runtime != "llmapi":
            return None
        if "resources" not in self.orchestrator.model_fields_set:
            return LLMAPI_ROUTER_RESOURCES
        return self.orchestrator.resources

    def router_max_replicas(self) -> int:
        """Most router replicas its autoscaler runs (``orchestrator.maxReplicas``, else twice
        ``replicas``), never below ``replicas``."""
        orchestrator = self.orchestrator
        wanted = orchestrator.max_replicas if orchestrator.max_replicas is not None else 2 * orchestrator.replicas
        return max(wanted, orchestrator.replicas)

    def cpu_tiers(self) -> list[tuple[str, int, ResourcesConfig]]:
        """The CPU tiers on the system pool at their scalers' maxima: (key, max replicas, resources)."""
        tiers = [("frontend", self.frontend.max_replicas, self.frontend_resources())]
        router = self.router_resources()
        if router is not None:
            tiers.append(("orchestrator", self.router_max_replicas(), router))
        return tiers


class ImagesConfig(ConfigModel):
    """Container images, pinned by tag (or digest)."""

    trtllm: str = DEFAULT_TRTLLM_IMAGE
    """TensorRT-LLM release image (``nvcr.io/nvidia/tensorrt-llm/release``, >= 1.0): runtime
    'llmapi' workers and routers, and model preparation. Multi-node groups (podsPerGroup > 1)
    need openssh-server in it (mpirun starts the remote ranks over ssh)."""
    trtllm_version: str | None = None
    """TensorRT-LLM version of ``trtllm`` when its tag does not tell (a private mirror, a custom
    build), e.g. '1.2.1'."""
    triton_trtllm: str = DEFAULT_TRITON_TRTLLM_IMAGE
    """Triton with the TensorRT-LLM backend (TensorRT-LLM <= 1.2): runtime 'engine' orchestrators,
    workers and engine builds. Multi-node worker groups (podsPerGroup > 1) need openssh-server
    (``/usr/sbin/sshd``) in it: mpirun starts the remote ranks over ssh."""
    triton_trtllm_version: str | None = None
    """TensorRT-LLM version of ``tritonTrtllm`` when the compatibility table cannot place its tag."""
    trtllm_features: tuple[ImageFeature, ...] = ()
    """What ``trtllm`` carries beyond the release it is built FROM: ``nixl-libfabric`` (the
    project's worker image, ``images/worker/Dockerfile``). Prefill/decode over NIXL on an EFA pool
    needs it; the stock ``nvcr.io/nvidia/tensorrt-llm/release`` image never carries it."""
    nixl_plugins_dir: str | None = None
    """Where ``trtllm`` keeps NIXL's plugins (rendered as ``NIXL_PLUGINS_DIR`` on EFA prefill/decode
    groups); None: the image's own ``NIXL_PLUGINS_DIR`` (``images/worker/Dockerfile`` sets it)."""
    frontend: str | None = None
    """Image of the CPU tiers (llmapi: frontend and router; engine: the Triton frontend); None: the
    runtime's image (``trtllm`` for llmapi, ``tritonTrtllm`` for engine). Another image needs
    Python with aiohttp and ``transformers`` (llmapi; with ``uvloop`` the relays cost about half
    the CPU per token: ``benchmarks/llmapi_serving_tiers.py``) or Triton's python backend, numpy
    and ``transformers`` (engine)."""

    tiers: str | None = None
    """Image of the llmapi CPU tiers (frontend and router): the project's ``images/tiers/Dockerfile``
    (its ``runtime`` package's dependencies with uvloop, non-root). None: ``frontend``, else
    ``trtllm``. The engine runtime's Triton frontend never uses it."""
    tiers_features: tuple[ImageFeature, ...] = ()
    """What ``tiers`` carries: ``uvloop`` (``images/tiers/Dockerfile``)."""
    fabric_check: str | None = None
    """Image of the fabric checks (``python -m disaggctl fabric-check render`` and ``kv-render``
    with ``--stack``, when no ``--image`` is given): the project's ``images/kv-fabric-check/Dockerfile``
    (the worker image plus nccl-tests built with MPI=1, openssh and nixlbench). None: the checks
    need ``--image``. Nothing the stack deploys uses it."""

    def llmapi_tiers_image(self) -> str | None:
        """The llmapi frontend's and router's image (None: the workers' image)."""
        return self.tiers or self.frontend

    def frontend_image(self, runtime: Runtime = "engine") -> str:
        """The frontend's image for a deployment of ``runtime``."""
        return self.frontend or self.runtime_image(runtime)

    def runtime_image(self, runtime: Runtime) -> str:
        """The image that serves ``runtime`` (workers and orchestrator/router)."""
        return self.trtllm if runtime == "llmapi" else self.triton_trtllm

    @model_validator(mode="after")
    def _versions(self) -> ImagesConfig:
        """Declared TensorRT-LLM versions parse. Image references themselves (grammar, pinning,
        mutable tags) are checked once, by ``validation.check_stack`` with the stack's policy."""
        problems: list[str] = []
        for key, version in (("trtllmVersion", self.trtllm_version), ("tritonTrtllmVersion", self.triton_trtllm_version)):
            if version is not None and parse_version(version) is None:
                problems.append(f"images.{key} '{version}' is not a TensorRT-LLM version: write e.g. '1.2.1'")
        if problems:
            raise ValueError("; ".join(problems))
        return self
