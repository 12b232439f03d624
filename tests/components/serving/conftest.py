"""Fixtures for the serving components: pools, deployments, component args, schemas, mocks.

Schemas: the LeaderWorkerSet and DisaggregatedSet CRDs of /work/shared/reference (upstream
kubernetes-sigs/lws). Their openAPIV3Schema is made strict for the tests: Kubernetes'
``x-kubernetes-*`` extensions are dropped (``int-or-string`` becomes integer-or-string) and
objects with declared properties refuse unknown keys, because the API server would silently
prune a misspelt field instead of refusing it. The pod template schema inside the LWS CRD is
the core v1 PodTemplateSpec, so it also validates the frontend Deployment's pod template.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml

from components.cluster.contract import ClusterHandle
from components.config.deployment import ImagesConfig, ModelDeploymentConfig
from components.config.scheduling import NodePool, Toleration
from components.serving.group_layout import GroupLayout
from components.serving.triton.deployment import DisaggregatedDeploymentArgs
from components.serving.triton.frontend import TritonFrontendArgs
from components.serving.triton.model_repository import (
    EngineLimits,
    FrontendSettings,
    ModelRepositoryArgs,
    TensorrtLlmSettings,
    TokenizerSettings,
)
from components.serving.triton.orchestrator import TritonOrchestratorArgs
from components.serving.triton.workers import TensorParallelWorkersArgs
from disaggctl.synth.fast_registration import install_fast_mocks
from engines.spec import EngineSpec

REFERENCE = next(
    (
        path
        for path in (
            Path(__file__).resolve().parents[3].parent / "shared" / "reference",
            Path("/work/shared/reference"),
        )
        if path.is_dir()
    ),
    Path("/work/shared/reference"),
)
"""Upstream CRDs and chart values: ``shared/reference`` beside the work tree (as in CI), else the
machine's ``/work/shared/reference``."""
GPU_TAINT = Toleration(key="nvidia.com/gpu")

H100 = NodePool(
    name="h100",
    gpus_per_node=8,
    gpu_memory_gib=80,
    node_selector={"disagg.dev/pool": "h100"},
    tolerations=(GPU_TAINT,),
    gpu_arch="hopper",
    fabric="efa",
    efa_interfaces=32,
    instance_type="p5.48xlarge",
)
A100 = NodePool(
    name="a100",
    gpus_per_node=8,
    gpu_memory_gib=40,
    node_selector={"disagg.dev/pool": "a100"},
    tolerations=(GPU_TAINT,),
    gpu_arch="ampere",
    fabric="efa",
    efa_interfaces=4,
    instance_type="p4d.24xlarge",
)
IB = NodePool(
    name="dgx",
    gpus_per_node=8,
    gpu_memory_gib=80,
    node_selector={"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
    tolerations=(GPU_TAINT,),
    fabric="infiniband",
    rdma_resource="rdma/rdma_shared_device_a",
)
SYSTEM = NodePool(
    name="system", gpus_per_node=0, gpu_memory_gib=0, node_selector={"disagg.dev/pool": "system"}
)

L8 = "llama-3.1-8b-instruct"
L70 = "llama-3.1-70b-instruct"
ENGINES = {
    "tp4": EngineSpec(model=L8, tp_size=4),
    "tp8pp2": EngineSpec(model=L70, tp_size=8, pp_size=2, max_batch_size=128, max_input_len=16384, max_seq_len=32768),
    "ctx": EngineSpec(model=L70, quantization="fp8", kv_cache_dtype="fp8", tp_size=8, max_batch_size=32,
                      max_input_len=16384, max_seq_len=32768, max_num_tokens=32768),
    "gen": EngineSpec(model=L70, quantization="fp8", kv_cache_dtype="fp8", tp_size=8, max_batch_size=256,
                      max_input_len=16384, max_seq_len=32768),
}  # fmt: skip

DEPLOYMENTS = {
    # dev: two 4-GPU single-node groups on one p4d node
    "single": {
        "name": "llama-8b",
        "frontend": {"minReplicas": 1, "maxReplicas": 3},
        "workers": {"engine": "tp4", "pool": "a100", "groups": 2, "podsPerGroup": 1, "gpusPerPod": 4},
    },
    # prod: 16-way engine over two p5 nodes per group, autoscaled on KV-cache use
    "multi": {
        "name": "llama-70b",
        "frontend": {"minReplicas": 3, "maxReplicas": 12},
        "orchestrator": {"maxQueueDelayMicroseconds": 500},
        "workers": {
            "engine": "tp8pp2", "pool": "h100", "groups": 2, "minGroups": 1, "maxGroups": 4,
            "podsPerGroup": 2, "gpusPerPod": 8,
            "autoscaling": {"enabled": True, "targetKvCacheUtilization": 0.75},
        },
    },
    # prefill/decode on one pool
    "pd": {
        "name": "llama-70b-pd",
        "mode": "prefill-decode",
        "prefill": {"engine": "ctx", "pool": "h100", "groups": 1, "podsPerGroup": 1, "gpusPerPod": 8,
                    "autoscaling": {"enabled": True}},
        "decode": {"engine": "gen", "pool": "h100", "groups": 2, "minGroups": 1, "maxGroups": 3,
                   "podsPerGroup": 1, "gpusPerPod": 8, "autoscaling": {"enabled": True}},
    },
}  # fmt: skip


def deployment(kind: str, **overrides) -> ModelDeploymentConfig:
    raw = {**DEPLOYMENTS[kind], **overrides}
    return ModelDeploymentConfig.model_validate(raw)


def engine_dir(key: str) -> str:
    return f"/models/engines/{ENGINES[key].model}/{ENGINES[key].content_hash()}"


@pytest.fixture
def mocks():
    """A fresh recording Pulumi mock monitor (``.recorded``: urn -> RecordedResource)."""
    return install_fast_mocks("disagg", "test")


@pytest.fixture
def cluster_factory(mocks) -> Callable[..., ClusterHandle]:
    def make(platform: str = "eks", pools: tuple[NodePool, ...] = (H100, A100, IB)) -> ClusterHandle:
        provider = k8s.Provider("k8s", kubeconfig="{}")
        return ClusterHandle(
            name="test",
            provider=provider,
            kubeconfig=pulumi.Output.from_input("{}"),
            fabric="efa",
            system_pool=SYSTEM,
            gpu_pools={p.name: p for p in pools},
            platform=platform,
        )

    return make


@pytest.fixture
def deployment_args(cluster_factory) -> Callable[..., DisaggregatedDeploymentArgs]:
    """``deployment_args(kind, engine_dirs=None, cluster=None, custom_metrics=True, **deployment overrides)``."""

    def make(
        kind: str, *, engine_dirs=None, cluster=None, engines=None, custom_metrics=True, args: dict | None = None,
        keda_prometheus_url: str | None = None, **overrides,
    ) -> DisaggregatedDeploymentArgs:
        dep = deployment(kind, **overrides)
        groups = dep.worker_groups()
        return DisaggregatedDeploymentArgs(
            deployment=dep,
            engines=engines if engines is not None else {r: ENGINES[g.engine] for r, g in groups.items()},
            engine_dirs=engine_dirs
            if engine_dirs is not None
            else {r: pulumi.Output.from_input(engine_dir(g.engine)) for r, g in groups.items()},
            images=ImagesConfig(),
            namespace="llm",
            cluster=cluster if cluster is not None else cluster_factory(),
            claim_name="models",
            custom_metrics=custom_metrics,
            keda_prometheus_url=keda_prometheus_url,
            **(args or {}),
        )

    return make


def repository_args(
    orchestrator_url: str = "x-orchestrator.llm.svc.cluster.local:8001", **frontend
) -> ModelRepositoryArgs:
    return ModelRepositoryArgs(
        limits=EngineLimits(max_batch_size=64, max_input_len=4096, max_seq_len=8192),
        tokenizer=TokenizerSettings(path="/models/engines/m/h/tokenizer"),
        tensorrt_llm=TensorrtLlmSettings(engine_dir="/models/engines/m/h"),
        frontend=FrontendSettings(orchestrator_url=orchestrator_url, **frontend),
    )


@pytest.fixture
def repo_args() -> Callable[..., ModelRepositoryArgs]:
    return repository_args


@pytest.fixture
def frontend_args() -> Callable[..., TritonFrontendArgs]:
    def make(**overrides) -> TritonFrontendArgs:
        fields: dict[str, Any] = {
            "instance": "llama",
            "namespace": "llm",
            "repository": repository_args(),
            "image": ImagesConfig().triton_trtllm,
            "pool": SYSTEM,
            "claim_name": "models",
        }
        return TritonFrontendArgs(**{**fields, **overrides})

    return make


@pytest.fixture
def orchestrator_args() -> Callable[..., TritonOrchestratorArgs]:
    def make(pods: int = 1, gpus: int = 8, pool: NodePool = H100, **overrides) -> TritonOrchestratorArgs:
        fields: dict[str, Any] = {
            "instance": "llama",
            "role": "workers",
            "namespace": "llm",
            "repository": repository_args(),
            "engine_dir": "/models/engines/m/h",
            "layout": GroupLayout(pods, gpus),
            "pool": pool,
            "image": ImagesConfig().triton_trtllm,
            "claim_name": "models",
        }
        return TritonOrchestratorArgs(**{**fields, **overrides})

    return make


@pytest.fixture
def workers_args() -> Callable[..., TensorParallelWorkersArgs]:
    def make(pods: int = 2, gpus: int = 8, pool: NodePool = H100, group: dict | None = None, **overrides):
        group_config = {
            "engine": "e",
            "pool": pool.name,
            "podsPerGroup": pods,
            "gpusPerPod": gpus,
            **(group or {}),
        }
        fields: dict[str, Any] = {
            "instance": "llama",
            "role": "workers",
            "namespace": "llm",
            "group": ModelDeploymentConfig.model_validate({"name": "x", "workers": group_config}).workers,
            "layout": GroupLayout(pods, gpus),
            "pool": pool,
            "leader_template": {"metadata": {"labels": {"leader": "yes"}}, "spec": {"containers": []}},
            "repository_volume": {"name": "model-repository", "projected": {"sources": []}},
            "engine_dir": "/models/engines/m/h",
            "image": ImagesConfig().triton_trtllm,
            "claim_name": "models",
        }
        return TensorParallelWorkersArgs(**{**fields, **overrides})

    return make


# ---- schemas --------------------------------------------------------------------------------


def strict_schema(node: Any) -> Any:
    """The CRD schema as plain, strict JSON Schema (see module docstring)."""
    if isinstance(node, list):
        return [strict_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if out.get("format") == "int-or-string":
        out.pop("format")
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def crd_schema(file: str) -> dict:
    crd = yaml.safe_load((REFERENCE / file).read_text())
    (version,) = crd["spec"]["versions"]
    return strict_schema(version["schema"]["openAPIV3Schema"])


def _validator(schema: dict) -> Callable[[dict], list[str]]:
    validator = jsonschema.Draft7Validator(schema)

    def errors(obj: dict) -> list[str]:
        return sorted(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)
        )

    return errors


@pytest.fixture(scope="session")
def lws_errors() -> Callable[[dict], list[str]]:
    """Schema errors of a LeaderWorkerSet object (empty: valid)."""
    return _validator(crd_schema("lws-leaderworkersets.crd.yaml"))


@pytest.fixture(scope="session")
def pod_template_errors() -> Callable[[dict], list[str]]:
    """Schema errors of a core v1 PodTemplateSpec (the LWS CRD's leaderTemplate schema)."""
    schema = crd_schema("lws-leaderworkersets.crd.yaml")
    template = schema["properties"]["spec"]["properties"]["leaderWorkerTemplate"]["properties"][
        "leaderTemplate"
    ]
    return _validator(template)


@pytest.fixture(scope="session")
def k8s_errors() -> Callable[[dict], list[str]]:
    """Schema errors of a core Kubernetes object (``kubernetes-validate``, strict: unknown fields
    are errors); empty: valid."""
    import kubernetes_validate

    version = kubernetes_validate.latest_version()

    def errors(obj: dict) -> list[str]:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            return [f"{'/'.join(map(str, err.path))}: {err.message}"]
        return []

    return errors


# ---- llmapi runtime ------------------------------------------------------------------------

RUNTIME_FILES = {"__init__.py": "", "frontend.py": "print('frontend')\n", "router.py": "print('router')\n"}
AGGREGATED_YAML = (
    "tensor_parallel_size: 4\npipeline_parallel_size: 1\nmax_batch_size: 64\n"
    "return_perf_metrics: true\nenable_iter_perf_stats: true\n"
)
CONTEXT_YAML = (
    "tensor_parallel_size: 8\ndisable_overlap_scheduler: true\nreturn_perf_metrics: true\n"
    "enable_iter_perf_stats: true\ncache_transceiver_config:\n  backend: NIXL\n  max_tokens_in_buffer: 8192\n"
)
GENERATION_YAML = CONTEXT_YAML.replace("disable_overlap_scheduler: true\n", "")


@pytest.fixture
def llmapi_workers_args():
    from components.serving.llmapi.workers import LlmApiWorkersArgs

    def make(role: str = "workers", pods: int = 1, gpus: int = 4, pool: NodePool = A100, **overrides):
        yaml_text = {"workers": AGGREGATED_YAML, "prefill": CONTEXT_YAML, "decode": GENERATION_YAML}[role]
        yaml_text = yaml_text.replace(
            "tensor_parallel_size: 4" if role == "workers" else "tensor_parallel_size: 8",
            f"tensor_parallel_size: {pods * gpus}",
        )
        fields: dict[str, Any] = {
            "instance": "llama",
            "role": role,
            "namespace": "llm",
            "image": "nvcr.io/nvidia/tensorrt-llm/release:1.2.0",
            "pool": pool,
            "pods_per_group": pods,
            "gpus_per_pod": gpus,
            "llm_api_yaml": yaml_text,
            "model_dir": "/models/models/llama/abc",
            "claim_name": "models",
        }
        return LlmApiWorkersArgs(**{**fields, **overrides})

    return make


def broken(manifest: dict, path: str, value: Any) -> dict:
    """A copy of ``manifest`` with ``value`` set at the '/'-separated ``path`` (list indexes as
    numbers): the twin of a "validates" test, to show the schema check reports it."""
    copied = copy.deepcopy(manifest)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split("/")]
    node: Any = copied
    for part in parents:
        node = node[part]
    node[last] = value
    return copied
