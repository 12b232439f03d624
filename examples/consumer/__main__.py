"""A consumer stack: one team's Llama-3.1-70B on an existing InfiniBand cluster (llmapi runtime).

It does not use the project's ``__main__.py`` or its stack configuration: it imports the
components from the installed ``disagg-inference`` package and builds their typed arguments in
code, reading only a few settings of its own from ``Pulumi.<stack>.yaml``. One checkpoint,
prepared once on the shared store (``ModelPreparation``), is served twice (``LlmApiDeployment``):

* ``long-context``: aggregated ``trtllm-serve`` groups spanning two A100-80GB nodes each
  (tp 8 inside a node over NVLink × pp 2 across the nodes over InfiniBand), started by the
  leader's ``mpirun`` with one ``trtllm-llmapi-launch`` rank per GPU, for 128K-token requests;
* ``chat``: prefill (context) and decode (generation) groups on H100 nodes; the decode side
  pulls each prompt's KV cache with the UCX cache transceiver over InfiniBand.

The checks the project's stack configuration runs on worker groups (GPUs per group, heads,
limits, precision, GPU memory, prefill/decode compatibility, the pools' nodes) run inside
``LlmApiDeployment`` too (it gets the checkpoint and each role's typed options), before any
resource is declared.
"""

from __future__ import annotations

from typing import Literal

import pulumi

from components.cluster.existing import ExistingCluster
from components.config.capacity import host_memory_request_gib, weight_bytes_per_param
from components.config.cluster import ExistingClusterConfig, ExistingPoolConfig
from components.config.models import ModelSourceConfig
from components.config.platform import PlatformConfig
from components.config.scheduling import NodePool
from components.config.security import mpi_ssh_secret_name
from components.models.model_preparation import ModelPreparation, ModelPreparationArgs
from components.platform import PlatformOperators
from components.serving.dashboards import deployment_dashboard
from components.serving.llmapi.deployment import (
    LlmApiDeployment,
    LlmApiDeploymentArgs,
    TierSpec,
    WorkerGroupSpec,
)
from components.serving.llmapi.monitors import pod_monitors
from components.serving.monitoring import DeploymentMonitoring
from components.serving.mpi_ssh import SECRET_KEYS
from components.serving.runtime_package import installed_runtime_files
from components.serving.secrets import HF_TOKEN_KEY, PlannedSecret, StackSecrets
from components.storage.model_store import ModelStore
from engines.llm_api import CacheTransceiverOptions, LlmApiOptions

LLAMA_70B = ModelSourceConfig(
    model="llama-3.1-70b-instruct",
    revision="1605565b47bb9346c5515c34102e054115b4f98b",  # meta-llama/Llama-3.1-70B-Instruct
)
HF_TOKEN_SECRET = "hf-token"
"""Llama is gated: the preparation Job reads ``HF_TOKEN`` from this Secret, which the stack creates
from the ``hfToken`` config secret (README.md)."""

LONG_CONTEXT = LlmApiOptions(
    tensor_parallel_size=8,
    pipeline_parallel_size=2,
    max_batch_size=32,
    max_num_tokens=16384,
    max_seq_len=131072,
)
"""16 GPUs over two nodes: each node holds half the layers, leaving room for 128K-token KV caches."""
UCX = CacheTransceiverOptions(backend="UCX", max_tokens_in_buffer=16384)
"""KV cache from context to generation servers over UCX's InfiniBand verbs transports."""
PREFILL = LlmApiOptions(
    tensor_parallel_size=4,
    max_batch_size=16,
    max_num_tokens=16384,
    max_seq_len=16384,
    cache_transceiver_config=UCX,
)
"""Context servers: whole prompts of up to 16K tokens in one forward pass, two groups per node."""
DECODE = LlmApiOptions(
    tensor_parallel_size=8, max_batch_size=256, max_seq_len=16384, cache_transceiver_config=UCX
)
"""Generation servers: large decode batches on a whole node."""

GPU_POOLS = [
    ExistingPoolConfig(
        name="a100",
        gpus_per_node=8,
        gpu_memory_gib=80,
        gpu_arch="ampere",
        node_selector={"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
        max_nodes=4,
    ),
    ExistingPoolConfig(
        name="h100",
        gpus_per_node=8,
        gpu_memory_gib=80,
        gpu_arch="hopper",
        node_selector={"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
        max_nodes=2,
    ),
]


def worker_groups(options: LlmApiOptions, pool: NodePool, *, pods: int = 1, groups: int = 1) -> WorkerGroupSpec:
    """One role's groups of ``options.world_size`` GPUs over ``pods`` pods.

    Host memory: every rank of a pod stages its shard of the weights while loading (the
    component adds the RAM-backed /dev/shm to the limit, so it is left out of the request).
    The checks (GPUs per group, heads, limits, precision, GPU memory, prefill against decode, the
    pool's nodes) run in ``LlmApiDeploymentArgs``, which gets the checkpoint (``model=``).
    """
    gpus = options.world_size // pods
    bytes_per_param = weight_bytes_per_param(quantization=LLAMA_70B.quantization)
    memory = host_memory_request_gib(LLAMA_70B.info.param_count, bytes_per_param, options.world_size, gpus, 0)
    return WorkerGroupSpec(
        pool=pool,
        pods_per_group=pods,
        gpus_per_pod=gpus,
        groups=groups,
        memory=f"{memory}Gi",
        llm_api=options,
    )


def main() -> None:
    settings = pulumi.Config()
    onprem = ExistingClusterConfig(
        kubeconfig=settings.require("kubeconfig"),
        fabric="infiniband",
        storage_class=settings.require("storageClass"),
        storage_size_gib=3000,
        system_node_selector={"node-role.example.com/cpu": "true"},
        gpu_pools=GPU_POOLS,
        load_balancer_services=False,
    )
    pools = onprem.node_pools()
    long_context_groups = {"workers": worker_groups(LONG_CONTEXT, pools["a100"], pods=2, groups=2)}
    chat_groups = {
        "prefill": worker_groups(PREFILL, pools["h100"], groups=2),
        "decode": worker_groups(DECODE, pools["h100"]),
    }

    handle = ExistingCluster("onprem", onprem).handle
    platform = PlatformOperators("onprem-platform", handle=handle, config=PlatformConfig())
    store = ModelStore("team-store", handle=handle, namespace=settings.get("namespace") or "team-chat")
    # the Secrets the pods read, made by the program: the Hugging Face token from the config secret
    # (unset: an hf-token Secret made outside the stack), the multi-node group's SSH keys generated
    hf_token = settings.get_secret("hfToken")
    planned = [PlannedSecret(mpi_ssh_secret_name("long-context"), SECRET_KEYS, "generated", "long-context")]
    if hf_token is not None:
        planned.insert(0, PlannedSecret(HF_TOKEN_SECRET, (HF_TOKEN_KEY,), "hfToken"))
    secrets = StackSecrets(
        "team-secrets", planned, {HF_TOKEN_SECRET: hf_token} if hf_token is not None else {}, store.namespace,
        opts=pulumi.ResourceOptions(provider=handle.provider, depends_on=[store]),
    )
    after_store = pulumi.ResourceOptions(provider=handle.provider, depends_on=[store, platform, secrets])
    model = ModelPreparation(
        "llama-70b",
        ModelPreparationArgs(
            name="llama-70b",
            source=LLAMA_70B,
            namespace=store.namespace,
            pool=handle.system_pool,
            storage_claim_name=store.claim_name,
            store_mount_path=store.mount_path,
            hf_token_secret=HF_TOKEN_SECRET,
        ),
        opts=after_store,
    )
    runtime_files = installed_runtime_files()  # the frontend and router processes, for a ConfigMap

    def serve(
        name: str,
        workers: dict[str, WorkerGroupSpec],
        max_seq_len: int,
        mode: Literal["tensor-parallel", "prefill-decode"] = "tensor-parallel",
    ) -> LlmApiDeployment:
        """The prepared model behind a frontend and a router on the CPU nodes, served by ``workers``."""
        return LlmApiDeployment(
            name,
            LlmApiDeploymentArgs(
                namespace=store.namespace,
                mode=mode,
                worker_image=settings.require("trtllmImage"),
                model_dir=model.model_dir,
                model=LLAMA_70B,  # the groups are checked against it before any resource
                served_model_name=f"llama-3.1-70b-{name}",
                max_seq_len=max_seq_len,
                workers=workers,
                frontend=TierSpec(min_replicas=1, max_replicas=4),
                router=TierSpec(min_replicas=1, max_replicas=2, memory="2Gi"),
                system_pool=handle.system_pool,
                claim_name=store.claim_name,
                mount_path=store.mount_path,
                runtime_files=runtime_files,
                service_type="ClusterIP",  # on-prem: exposed through the cluster's own ingress
                aws_load_balancer=False,
            ),
            opts=after_store,
        )

    deployments = {
        "long-context": serve("long-context", long_context_groups, LONG_CONTEXT.max_seq_len),
        "chat": serve("chat", chat_groups, min(PREFILL.max_seq_len, DECODE.max_seq_len), "prefill-decode"),
    }
    for name, groups in (("long-context", long_context_groups), ("chat", chat_groups)):
        DeploymentMonitoring(  # the platform's Prometheus scrapes it, Grafana shows its dashboard
            name,
            store.namespace,
            pod_monitors(name, store.namespace),
            deployment_dashboard(name, store.namespace, "llmapi", list(groups)),
            opts=after_store,
        )
    pulumi.export("modelLocation", model.model_dir)
    pulumi.export("frontendEndpoints", {name: d.frontend_endpoint for name, d in deployments.items()})
    pulumi.export("routerUrls", {name: d.router_url for name, d in deployments.items()})


main()
