"""LlmApiFrontend: the OpenAI/KServe frontend tier of the llmapi runtime (``python -m runtime.frontend``).

Deployment (CPU, system pool) + Service + HPA (CPU) or KEDA ScaledObject (requests in flight) +
PDB. The Service is internal: ClusterIP, or on EKS an internal NLB; internet-facing only with
``public``, ``load_balancer_source_ranges`` and an API key (``api_key``: the frontend process
refuses requests without it; the key comes from a Secret through ``secretKeyRef``). The tokenizer
files come from the model directory on the shared storage, mounted read-only. On scale-in a pod
keeps serving for the endpoint removal (preStop), then drains its streams for ``drain_seconds``
(``--shutdown-timeout``).
"""

from __future__ import annotations

from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from components.config.scheduling import NodePool
from components.config.serving_tiers import KEDA_IN_FLIGHT_TARGET, TierSettings
from components.models.await_budget import service_await_seconds
from components.platform.keda import deployment_scaled_object
from components.serving.autoscaling import pod_disruption_budget_manifest
from components.serving.cpu_tier import (
    AWAIT_S,
    PORT,
    CpuTier,
    check_tier_scaling,
    cpu_deployment_manifest,
    cpu_hpa_manifest,
    cpu_service_manifest,
)
from components.serving.drain import ENDPOINT_REMOVAL_S, cpu_tier_grace_seconds
from components.serving.labels import labels
from components.serving.llmapi.tier_flags import grace_drain_delay, serving_flags
from components.serving.load_balancer import (
    exposure_problem,
    load_balancer_annotations,
    load_balancer_host,
    service_host,
)
from components.serving.pods import mount, storage_volume
from components.serving.pulumi_options import await_timeouts, check_input_str, child_options, k8s_provider
from components.serving.scaled_objects import scaled_object
from components.serving.security import key_mounts, key_path, key_volumes

TYPE_TOKEN = "disagg:serving:LlmApiFrontend"
COMPONENT = "frontend"
APP = "llmapi"
API_KEY_VAR = "FRONTEND_API_KEY"
"""Name of the clients' API key: its Secret is mounted at ``key_path(API_KEY_VAR)`` (``--api-key-file``)."""


class ApiKeySpec(BaseModel):
    """Where the frontend's client key lives and which header carries it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    header: str = "x-api-key"
    secret_name: str
    secret_key: str = "key"


class LlmApiFrontendArgs(BaseModel):
    """The frontend tier of one llmapi deployment."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    instance: str
    """Model deployment (``app.kubernetes.io/instance``)."""
    namespace: str
    image: str
    pool: NodePool
    """The CPU (system) pool."""
    router_url: str
    """``http://<router service>:8000``."""
    served_model_name: str
    tokenizer: Any
    """``pulumi.Input[str]``: tokenizer directory (the model directory on the shared storage)."""
    max_seq_len: int = Field(ge=1)
    default_max_tokens: int = Field(default=512, ge=1)
    runtime_volume: dict
    """``RuntimePackage.volume``."""
    runtime_hash: str
    claim_name: str | None = None
    """ReadWriteMany PVC with the model directory (tokenizer files), mounted read-only."""
    mount_path: str = "/models"
    cpu: str = "2"
    memory: str = "4Gi"
    min_replicas: int = Field(default=2, ge=1)
    max_replicas: int = Field(default=8, ge=1)
    target_cpu_utilization: int = Field(default=70, ge=10, le=100)
    service_type: Literal["ClusterIP", "LoadBalancer"] = "LoadBalancer"
    public: bool = False
    """Internet-facing load balancer (explicit opt-in; needs ``load_balancer_source_ranges``)."""
    load_balancer_source_ranges: tuple[str, ...] = ()
    aws_load_balancer: bool = True
    api_key: ApiKeySpec | None = None
    """Clients must send this key (required for a public frontend)."""
    drain_seconds: int = Field(default=60, ge=0)
    """The longest stream (``capacity.stream_drain_seconds``): the process's shutdown timeout."""
    keda_prometheus_url: str | None = None
    """Scale with a KEDA ScaledObject (requests in flight and CPU) instead of a CPU HPA."""
    target_in_flight: float = Field(default=KEDA_IN_FLIGHT_TARGET["frontend"], gt=0)
    """Requests in flight per replica above which KEDA adds one."""
    serving: TierSettings | None = None
    """Timeouts, admission and drain delay (``serving_tiers.resolve_tiers``); None: the process's defaults."""

    @field_validator("tokenizer")
    @classmethod
    def _tokenizer(cls, value: Any) -> Any:
        return check_input_str(value, "tokenizer")

    @model_validator(mode="after")
    def _checks(self) -> LlmApiFrontendArgs:
        check_tier_scaling("frontend", "frontendMaxInflight", self.min_replicas, self.max_replicas,
                           self.keda_prometheus_url is not None,
                           self.serving.max_inflight if self.serving is not None else None, self.target_in_flight)
        problem = exposure_problem(self.service_type, self.public, self.load_balancer_source_ranges)
        if problem is not None:
            raise ValueError(f"frontend exposure: {problem}")
        if self.public and self.api_key is None:
            raise ValueError(
                "frontend exposure: an internet-facing frontend needs an API key (api_key, from "
                "platform.security.publicFrontends.<deployment>.auth): set it, or keep the frontend internal"
            )
        return self


def frontend_pod_labels(instance: str) -> dict[str, str]:
    return labels(instance, COMPONENT, app=APP)


def frontend_command(args: LlmApiFrontendArgs, tokenizer: str) -> list[str]:
    """``python -m runtime.frontend`` exactly as docs/llmapi-runtime.md lists it."""
    return [
        "python3", "-m", "runtime.frontend",
        "--host", "0.0.0.0",
        "--port", str(PORT),
        "--router", args.router_url,
        "--served-model-name", args.served_model_name,
        "--tokenizer", tokenizer,
        "--max-seq-len", str(args.max_seq_len),
        "--default-max-tokens", str(args.default_max_tokens),
        "--shutdown-timeout", str(args.drain_seconds),
    ] + serving_flags(args.serving) + (
        ["--api-key-file", key_path(API_KEY_VAR), "--api-key-header", args.api_key.header]
        if args.api_key is not None
        else []
    )  # fmt: skip


def frontend_tier(name: str, args: LlmApiFrontendArgs, tokenizer: str) -> CpuTier:
    volumes, mounts = [], []
    if args.api_key is not None:  # a file from the Secret, never an environment variable
        keys = {API_KEY_VAR: (args.api_key.secret_name, args.api_key.secret_key)}
        volumes += key_volumes(keys)
        mounts += key_mounts(keys)
    if args.claim_name is not None:
        volumes.append(storage_volume("store", args.claim_name))
        mounts.append(mount("store", args.mount_path, read_only=True))
    return CpuTier(
        name=name,
        namespace=args.namespace,
        pod_labels=frontend_pod_labels(args.instance),
        image=args.image,
        command=frontend_command(args, tokenizer),
        pool=args.pool,
        cpu=args.cpu,
        memory=args.memory,
        replicas=args.min_replicas,
        runtime_volume=args.runtime_volume,
        runtime_hash=args.runtime_hash,
        env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
        extra_volumes=volumes,
        extra_mounts=mounts,
        termination_grace_period_s=cpu_tier_grace_seconds(args.drain_seconds, grace_drain_delay(args.serving)),
        pre_stop_s=ENDPOINT_REMOVAL_S,
    )


def frontend_deployment_manifest(name: str, args: LlmApiFrontendArgs, tokenizer: str) -> dict:
    return cpu_deployment_manifest(frontend_tier(name, args, tokenizer))


def frontend_service_manifest(name: str, args: LlmApiFrontendArgs) -> dict:
    annotations = load_balancer_annotations(args.service_type, args.aws_load_balancer, args.public)
    return cpu_service_manifest(
        name, args.namespace, frontend_pod_labels(args.instance), args.service_type, annotations,
        args.load_balancer_source_ranges,
    )  # fmt: skip


def frontend_scaled_object_manifest(name: str, args: LlmApiFrontendArgs) -> dict | None:
    """KEDA ScaledObject on requests in flight and CPU (None: no KEDA, the CPU HPA scales)."""
    if args.keda_prometheus_url is None:
        return None
    return deployment_scaled_object(
        name, args.namespace, name, args.min_replicas, args.max_replicas, args.keda_prometheus_url,
        args.target_in_flight, args.drain_seconds, args.target_cpu_utilization, frontend_pod_labels(args.instance),
    )  # fmt: skip


def frontend_hpa_manifest(name: str, args: LlmApiFrontendArgs) -> dict | None:
    if args.keda_prometheus_url is not None:
        return None
    return cpu_hpa_manifest(
        name, args.namespace, frontend_pod_labels(args.instance), args.min_replicas, args.max_replicas,
        args.target_cpu_utilization,
    )  # fmt: skip


def frontend_pdb_manifest(name: str, args: LlmApiFrontendArgs) -> dict:
    pod_labels = frontend_pod_labels(args.instance)
    return pod_disruption_budget_manifest(name, args.namespace, pod_labels, pod_labels, max_unavailable=1)


class LlmApiFrontend(pulumi.ComponentResource):
    """Deployment, Service, HPA and PDB of the frontend tier."""

    deployment: k8s.apps.v1.Deployment
    service: k8s.core.v1.Service
    hpa: k8s.autoscaling.v2.HorizontalPodAutoscaler | None
    scaled_object: k8s.apiextensions.CustomResource | None
    pdb: k8s.policy.v1.PodDisruptionBudget
    service_host: str
    endpoint: pulumi.Output[dict]
    """``{"http": "host:8000"}``: the load balancer's hostname once provisioned, else cluster DNS."""

    def __init__(self, name: str, args: LlmApiFrontendArgs, opts: pulumi.ResourceOptions | None = None):
        provider = k8s_provider(opts, f"LlmApiFrontend '{name}'")
        super().__init__(TYPE_TOKEN, name, None, opts)

        def child(**extra) -> pulumi.ResourceOptions:
            return child_options(self, provider, opts, **extra)

        manifest = pulumi.Output.from_input(args.tokenizer).apply(
            lambda t: frontend_deployment_manifest(name, args, t)
        )
        meta = frontend_deployment_manifest(name, args, "pending")["metadata"]
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=meta,
            spec=manifest.apply(lambda m: m["spec"]),
            opts=child(ignore_changes=["spec.replicas"], custom_timeouts=await_timeouts(AWAIT_S)),
        )
        service = frontend_service_manifest(name, args)
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=service["metadata"],
            spec=service["spec"],
            opts=child(custom_timeouts=await_timeouts(service_await_seconds(AWAIT_S, True))),
        )
        hpa = frontend_hpa_manifest(name, args)
        self.hpa = None
        if hpa is not None:
            self.hpa = k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-hpa", metadata=hpa["metadata"], spec=hpa["spec"], opts=child(depends_on=[self.deployment])
            )
        scaled = frontend_scaled_object_manifest(name, args)
        self.scaled_object = None
        if scaled is not None:
            self.scaled_object = scaled_object(name, scaled, child(depends_on=[self.deployment]))
        pdb = frontend_pdb_manifest(name, args)
        self.pdb = k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb", metadata=pdb["metadata"], spec=pdb["spec"], opts=child()
        )
        self.service_host = service_host(name, args.namespace)
        if args.service_type == "LoadBalancer":
            self.endpoint = self.service.status.apply(
                lambda status: {"http": f"{load_balancer_host(status) or self.service_host}:{PORT}"}
            )
        else:
            self.endpoint = pulumi.Output.from_input({"http": f"{self.service_host}:{PORT}"})
        self.register_outputs({"endpoint": self.endpoint, "service_host": self.service_host})
