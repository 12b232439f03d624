"""TritonFrontend: the CPU Triton tier that takes client traffic (KServe v2 HTTP/gRPC).

It serves the *frontend* model repository (ensemble, pre/postprocessing, BLS and the
``tensorrt_llm`` proxy that streams to the orchestrator) from ConfigMaps: one ConfigMap per
model, assembled into ``<model>/config.pbtxt`` + ``<model>/1/*.py`` by a projected volume whose
items carry the paths. Objects, all named after the component:

* Deployment: tritonserver on the system pool (no GPU), image ``images.triton_trtllm`` (it ships
  transformers and the tokenizers preprocessing needs), the shared storage mounted read-only
  for the tokenizer files, topology spread across zones and nodes, probes on
  ``/v2/health/ready`` and ``/v2/health/live``. A pod-template annotation holds the repository's
  content hash, so a changed repository rolls the pods.
* Service: HTTP 8000, gRPC 8001, metrics 8002; ``LoadBalancer`` becomes an internal (or
  internet-facing) NLB through the AWS Load Balancer Controller annotations.
* HorizontalPodAutoscaler (autoscaling/v2): CPU utilization and Triton queue time per pod.
* PodDisruptionBudget: at most one frontend pod down at a time.
"""

from __future__ import annotations

from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from components.config.deployment import FrontendConfig
from components.config.scheduling import NodePool
from components.models.await_budget import cpu_tier_await_seconds, service_await_seconds
from components.platform.autoscaling_metrics import QUEUE_TIME_MS
from components.platform.keda import TRITON_PENDING, deployment_scaled_object
from components.serving.autoscaling import pod_disruption_budget_manifest, pods_metric
from components.serving.drain import ENDPOINT_REMOVAL_S, cpu_tier_grace_seconds
from components.serving.labels import REPOSITORY_HASH_ANNOTATION, labels, metadata
from components.serving.load_balancer import (
    exposure_problem,
    load_balancer_annotations,
    load_balancer_host,
    service_host,
)
from components.serving.pods import (
    GRPC_PORT,
    HTTP_PORT,
    LIVE_PATH,
    METRICS_PORT,
    READY_PATH,
    REPOSITORY_PATH,
    STATE_DIR,
    env_list,
    memory_volume,
    mount,
    node_selector,
    scratch_volume,
    storage_volume,
    tolerations,
    triton_ports,
)
from components.serving.probes import http_probe
from components.serving.pulumi_options import await_timeouts, check_input_str, child_options, k8s_provider
from components.serving.repository_config_maps import (
    RepositoryConfigMap,
    config_map_data,
    content_hash,
    repository_config_maps,
    repository_files_from_config_maps,
    repository_volume,
)
from components.serving.resources import memory_limit
from components.serving.scaled_objects import pre_stop_sleep, scaled_object
from components.serving.security import (
    WRITABLE_ENV,
    container_security_context,
    key_mounts,
    key_volumes,
    read_keys_lines,
    secure_pod_spec,
    shell_word,
    tmp_mount,
    tmp_volume,
)
from components.serving.triton.model_repository import (
    ModelRepositoryArgs,
    frontend_repository,
    repository_files,
)

TYPE_TOKEN = "disagg:serving:TritonFrontend"
STARTUP_PERIOD_S, STARTUP_FAILURES = 5, 120
READY_PERIOD_S, READY_FAILURES = 5, 3
AWAIT_S = cpu_tier_await_seconds(STARTUP_PERIOD_S * STARTUP_FAILURES, READY_PERIOD_S * READY_FAILURES)
"""Startup probe: Triton loads the ensemble, tokenizers and BLS proxy within 10 minutes; the
Deployment's ``customTimeouts`` add a first image pull to that window."""
COMPONENT = "frontend"



class TritonFrontendArgs(BaseModel):
    """Where and how the frontend tier runs."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    instance: str
    """Model deployment the tier belongs to (``app.kubernetes.io/instance``)."""
    namespace: str
    config: FrontendConfig = FrontendConfig()
    repository: ModelRepositoryArgs
    """Rendered with ``frontend_repository``; its orchestrator URL(s) say where requests go."""
    tokenizer_dir: Any = None
    """``pulumi.Input[str]``: tokenizer directory on the shared storage (e.g. the engine build's
    ``<engine dir>/tokenizer``); replaces ``repository.tokenizer.path`` once known, so the
    frontend waits for the build. None: ``repository.tokenizer.path`` as is."""
    image: str
    pool: NodePool
    """The CPU (system) pool: nodeSelector and tolerations."""
    claim_name: str | None = None
    """ReadWriteMany PVC holding the tokenizer files, mounted read-only at ``mount_path``."""
    mount_path: str = "/models"
    aws_load_balancer: bool = True
    """Annotate a LoadBalancer Service for the AWS Load Balancer Controller (NLB, IP targets)."""
    custom_metrics: bool = False
    """The cluster's custom metrics API serves the Triton metrics (e.g. ``platform.metricsAdapter``).
    Off: the HPA scales on CPU only, since a metric it cannot read blocks every scale-down."""
    target_queue_time_ms: int = Field(default=50, ge=1)
    """Average Triton queue time per pod above which the HPA adds pods (with ``custom_metrics``)."""
    shm_size: str = "2Gi"
    """/dev/shm of the pod: the python backend moves tensors through shared memory."""
    termination_grace_period_s: int = Field(default=90, ge=10)
    """Streams in flight get ``exit-timeout-secs`` (grace - 30 s) to finish on scale-in/rollouts."""

    load_balancer_source_ranges: tuple[str, ...] = ()
    """Client CIDRs an internet-facing load balancer accepts (required when it is public)."""
    drain_seconds: int | None = Field(default=None, ge=0)
    """The longest stream: the pod serves through the endpoint removal (preStop), then Triton's
    ``--exit-timeout-secs`` gives the streams this long. None: ``termination_grace_period_s``."""
    keda_prometheus_url: str | None = None
    """Scale with a KEDA ScaledObject (pending requests and CPU) instead of an HPA."""
    target_pending_requests: float = Field(default=16, gt=0)
    """Requests pending in Triton per replica above which KEDA adds one."""
    restricted_api_args: tuple[str, ...] = ()
    """``security.triton_restricted_api_args`` (admin APIs) and, for a public frontend,
    ``security.frontend_auth_args`` (inference and metadata): keys as $(VAR)."""
    secret_keys: dict[str, tuple[str, str]] = {}
    """Variable -> (Secret name, key) that the restricted-API arguments' ``$(VAR)`` stand for: the
    key is mounted as a file and read by the container's shell (never an environment variable)."""

    @model_validator(mode="after")
    def _exposure(self) -> TritonFrontendArgs:
        public = self.config.service_type == "LoadBalancer" and not self.config.internal_load_balancer
        problem = exposure_problem(self.config.service_type, public, self.load_balancer_source_ranges)
        if problem is not None:
            raise ValueError(f"frontend.internalLoadBalancer: {problem}")
        if public and not any("inference" in arg for arg in self.restricted_api_args):
            raise ValueError(
                "frontend.internalLoadBalancer: an internet-facing Triton frontend needs a client key on "
                "inference (security.frontend_auth_args from platform.security.publicFrontends.<deployment>.auth): "
                "pass it, or keep the frontend internal"
            )
        return self

    @field_validator("tokenizer_dir")
    @classmethod
    def _tokenizer_dir(cls, value: Any) -> Any:
        return value if value is None else check_input_str(value, "tokenizer_dir")

    def offline_tokenizer(self) -> bool:
        """Tokenizer files are local (no Hugging Face download at model load)."""
        return self.tokenizer_dir is not None or self.repository.tokenizer.path.startswith("/")


def with_tokenizer_dir(repository: ModelRepositoryArgs, tokenizer_dir: str | None) -> ModelRepositoryArgs:
    """``repository`` with its tokenizer path replaced (None: unchanged)."""
    if tokenizer_dir is None:
        return repository
    tokenizer = repository.tokenizer.model_copy(update={"path": tokenizer_dir})
    return repository.model_copy(update={"tokenizer": tokenizer})


def frontend_config_maps(name: str, repository: ModelRepositoryArgs) -> list[RepositoryConfigMap]:
    """ConfigMaps carrying exactly ``repository_files(frontend_repository(repository))``."""
    return repository_config_maps(name, repository_files(frontend_repository(repository)))


def frontend_command(exit_timeout_s: int, restricted: tuple[str, ...] = ()) -> list[str]:
    """tritonserver's command line in the frontend container (``restricted``: restricted-API args)."""
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
        f"--exit-timeout-secs={exit_timeout_s}",
        *restricted,
    ]


def with_keys(command: list[str], keys: dict[str, tuple[str, str]]) -> list[str]:
    """``command`` as is, or (keys from Secrets) a bash that reads the key files and execs it."""
    if not keys:
        return command
    script = ["set -euo pipefail", *read_keys_lines(keys), "exec " + " ".join(shell_word(a) for a in command)]
    return ["/bin/bash", "-c", "\n".join(script) + "\n"]


def frontend_env(args: TritonFrontendArgs) -> dict[str, str]:
    env = {**WRITABLE_ENV, "HF_HOME": f"{STATE_DIR}/hf", "TOKENIZERS_PARALLELISM": "false"}
    if args.offline_tokenizer():
        env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    return env


def frontend_pod_labels(args: TritonFrontendArgs) -> dict[str, str]:
    return labels(args.instance, COMPONENT)


def frontend_deployment_manifest(
    name: str, args: TritonFrontendArgs, config_maps: list[RepositoryConfigMap]
) -> dict:
    """The frontend Deployment (replicas start at minReplicas; the HPA owns them afterwards)."""
    pod_labels = frontend_pod_labels(args)
    grace, exit_timeout = args.termination_grace_period_s, args.termination_grace_period_s - 30
    if args.drain_seconds is not None:
        grace, exit_timeout = cpu_tier_grace_seconds(args.drain_seconds), args.drain_seconds
    resources = {"cpu": args.config.resources.cpu, "memory": args.config.resources.memory}
    mounts = [
        mount("model-repository", REPOSITORY_PATH, read_only=True),
        mount("dshm", "/dev/shm"),
        mount("state", STATE_DIR),
        tmp_mount(),
    ]
    volumes = [
        repository_volume("model-repository", config_maps),
        memory_volume("dshm", args.shm_size),
        scratch_volume("state"),
        tmp_volume(),
    ]
    if args.claim_name is not None:
        mounts.append(mount("store", args.mount_path, read_only=True))
        volumes.append(storage_volume("store", args.claim_name))
    mounts += key_mounts(args.secret_keys)
    volumes += key_volumes(args.secret_keys)
    container = {
        "name": "triton",
        "image": args.image,
        "command": with_keys(frontend_command(exit_timeout, args.restricted_api_args), args.secret_keys),
        "env": env_list(frontend_env(args)),
        "ports": triton_ports(),
        "resources": {
            "requests": resources,
            "limits": {"cpu": resources["cpu"], "memory": memory_limit(resources["memory"], args.shm_size)},
        },
        "startupProbe": http_probe(READY_PATH, period=STARTUP_PERIOD_S, failure_threshold=STARTUP_FAILURES),
        "readinessProbe": http_probe(READY_PATH, period=READY_PERIOD_S, failure_threshold=READY_FAILURES),
        "livenessProbe": http_probe(LIVE_PATH, period=10, failure_threshold=6),
        "volumeMounts": mounts,
        "securityContext": container_security_context(),
    }
    if args.drain_seconds is not None:
        container["lifecycle"] = pre_stop_sleep(ENDPOINT_REMOVAL_S)
    files = repository_files_from_config_maps(config_maps)
    spread = [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": dict(pod_labels)},
            "matchLabelKeys": ["pod-template-hash"],
        }
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(name, args.namespace, pod_labels),
        "spec": {
            "replicas": args.config.min_replicas,
            "selector": {"matchLabels": dict(pod_labels)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": dict(pod_labels),
                    "annotations": {REPOSITORY_HASH_ANNOTATION: content_hash(files)},
                },
                "spec": secure_pod_spec(
                    {
                        "containers": [container],
                        "volumes": volumes,
                        "nodeSelector": node_selector(args.pool),
                        "tolerations": tolerations(args.pool),
                        "topologySpreadConstraints": spread,
                        "terminationGracePeriodSeconds": grace,
                    }
                ),
            },
        },
    }


def frontend_service_annotations(args: TritonFrontendArgs) -> dict[str, str]:
    public = not args.config.internal_load_balancer
    return load_balancer_annotations(args.config.service_type, args.aws_load_balancer, public)


def frontend_service_manifest(name: str, args: TritonFrontendArgs) -> dict:
    pod_labels = frontend_pod_labels(args)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name, args.namespace, pod_labels, frontend_service_annotations(args)),
        "spec": {
            "type": args.config.service_type,
            **(
                {"loadBalancerSourceRanges": list(args.load_balancer_source_ranges)}
                if args.config.service_type == "LoadBalancer" and args.load_balancer_source_ranges
                else {}
            ),
            "selector": dict(pod_labels),
            "ports": [
                {"name": port, "port": number, "targetPort": port, "protocol": "TCP"}
                for port, number in (("http", HTTP_PORT), ("grpc", GRPC_PORT), ("metrics", METRICS_PORT))
            ],
        },
    }


def frontend_scaled_object_manifest(name: str, args: TritonFrontendArgs) -> dict | None:
    """KEDA ScaledObject on Triton's pending requests and CPU (None: no KEDA, the HPA scales)."""
    if args.keda_prometheus_url is None:
        return None
    return deployment_scaled_object(
        name, args.namespace, name, args.config.min_replicas, args.config.max_replicas, args.keda_prometheus_url,
        args.target_pending_requests, args.drain_seconds if args.drain_seconds is not None else 300,
        args.config.target_cpu_utilization, frontend_pod_labels(args), in_flight_metric=TRITON_PENDING,
    )  # fmt: skip


def frontend_hpa_manifest(name: str, args: TritonFrontendArgs) -> dict:
    """Scale between min/maxReplicas on CPU utilization (and Triton queue time per pod when the
    cluster serves custom metrics)."""
    metrics: list[dict] = [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": args.config.target_cpu_utilization},
            },
        }
    ]
    if args.custom_metrics:
        metrics.append(pods_metric(QUEUE_TIME_MS, args.target_queue_time_ms))
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(name, args.namespace, frontend_pod_labels(args)),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": args.config.min_replicas,
            "maxReplicas": args.config.max_replicas,
            "metrics": metrics,
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }


def frontend_pdb_manifest(name: str, args: TritonFrontendArgs) -> dict:
    pod_labels = frontend_pod_labels(args)
    return pod_disruption_budget_manifest(name, args.namespace, pod_labels, pod_labels, max_unavailable=1)


def frontend_endpoint(host: str) -> dict[str, str]:
    """``{"grpc": "host:8001", "http": "host:8000"}`` (what ``disaggctl verify`` reads)."""
    return {"grpc": f"{host}:{GRPC_PORT}", "http": f"{host}:{HTTP_PORT}"}


class TritonFrontend(pulumi.ComponentResource):
    """The CPU Triton tier of one model deployment."""

    config_maps: list[k8s.core.v1.ConfigMap]
    deployment: k8s.apps.v1.Deployment
    service: k8s.core.v1.Service
    hpa: k8s.autoscaling.v2.HorizontalPodAutoscaler | None
    scaled_object: k8s.apiextensions.CustomResource | None
    pdb: k8s.policy.v1.PodDisruptionBudget
    service_host: str
    """Cluster DNS name of the Service."""
    endpoint: pulumi.Output[dict]
    """``{"grpc": "host:8001", "http": "host:8000"}``: the load balancer's hostname once
    provisioned (type LoadBalancer), else the cluster DNS name."""

    def __init__(self, name: str, args: TritonFrontendArgs, opts: pulumi.ResourceOptions | None = None):
        provider = k8s_provider(opts, f"TritonFrontend '{name}'")
        layout = frontend_config_maps(name, args.repository)  # names and items; text may change
        super().__init__(TYPE_TOKEN, name, None, opts)

        def child(**extra) -> pulumi.ResourceOptions:
            return child_options(self, provider, opts, **extra)

        tokenizer_dir = pulumi.Output.from_input(args.tokenizer_dir)
        maps = tokenizer_dir.apply(lambda d: frontend_config_maps(name, with_tokenizer_dir(args.repository, d)))
        self.config_maps = []
        for planned in layout:
            cm_labels = {**frontend_pod_labels(args), "disagg.dev/model": planned.model}
            self.config_maps.append(
                k8s.core.v1.ConfigMap(
                    f"{name}-repository-{planned.name[len(name) + 1 :]}",
                    metadata=cast(Any, metadata(planned.name, args.namespace, cm_labels)),
                    data=config_map_data(maps, planned.name),
                    opts=child(),
                )
            )
        deployment = maps.apply(lambda ms: frontend_deployment_manifest(name, args, ms))
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=cast(Any, metadata(name, args.namespace, frontend_pod_labels(args))),
            spec=deployment.apply(lambda d: d["spec"]),
            opts=child(
                depends_on=self.config_maps,
                ignore_changes=["spec.replicas"],
                custom_timeouts=await_timeouts(AWAIT_S),
            ),
        )
        service = frontend_service_manifest(name, args)
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=service["metadata"],
            spec=service["spec"],
            opts=child(custom_timeouts=await_timeouts(service_await_seconds(AWAIT_S, True))),
        )
        scaled = frontend_scaled_object_manifest(name, args)
        self.hpa, self.scaled_object = None, None
        if scaled is not None:
            self.scaled_object = scaled_object(name, scaled, child(depends_on=[self.deployment]))
        else:
            hpa = frontend_hpa_manifest(name, args)
            self.hpa = k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-hpa", metadata=hpa["metadata"], spec=hpa["spec"], opts=child(depends_on=[self.deployment])
            )
        pdb = frontend_pdb_manifest(name, args)
        self.pdb = k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb", metadata=pdb["metadata"], spec=pdb["spec"], opts=child()
        )
        self.service_host = service_host(name, args.namespace)
        if args.config.service_type == "LoadBalancer":
            self.endpoint = self.service.status.apply(
                lambda status: frontend_endpoint(load_balancer_host(status) or self.service_host)
            )
        else:
            self.endpoint = pulumi.Output.from_input(frontend_endpoint(self.service_host))
        self.register_outputs({"endpoint": self.endpoint, "service_host": self.service_host})
