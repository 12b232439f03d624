"""A consumer stack on EKS: a new cluster, its platform and one prefill/decode deployment of
Llama-3.1-70B (llmapi runtime), composed from the components with typed arguments.

It does not use the project's ``__main__.py`` or its ``disagg:`` configuration. The components
check what the project's stack loader checks, so a mistake here fails before any resource with
one line per problem: ``AwsGpuCluster`` checks the ``EksConfig`` (region, zones, Kubernetes
version, the VPC's room for the pools, node labels), ``LlmApiDeployment`` checks each role's typed
``LlmApiOptions`` against its pool and the checkpoint (GPUs per group, heads, precision, GPU
memory), prefill against decode (KV-cache type, block size, a transfer backend that works over
EFA: NIXL), the EFA interfaces pods share and the pool's nodes at the groups' maxima, and sizes
each group pod's host memory from the model.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.cluster.aws import AwsGpuCluster
from components.config.cluster import EksConfig, GpuNodePoolConfig, SystemNodeGroupConfig
from components.config.images import DEFAULT_TRTLLM_IMAGE
from components.config.models import ModelSourceConfig
from components.config.platform import PlatformConfig
from components.models.model_preparation import ModelPreparation, ModelPreparationArgs
from components.platform import PlatformOperators
from components.serving.llmapi.deployment import (
    LlmApiDeployment,
    LlmApiDeploymentArgs,
    TierSpec,
    WorkerGroupSpec,
)
from components.serving.runtime_package import installed_runtime_files
from components.storage.model_store import ModelStore
from engines.llm_api import CacheTransceiverOptions, KvCacheOptions, LlmApiOptions

LLAMA_70B = ModelSourceConfig(
    model="llama-3.1-70b-instruct",
    revision="1605565b47bb9346c5515c34102e054115b4f98b",  # meta-llama/Llama-3.1-70B-Instruct
)
NIXL = CacheTransceiverOptions(backend="NIXL", max_tokens_in_buffer=32768)
"""KV cache from context to generation servers: NIXL's libfabric backend speaks EFA (UCX does not)."""
PREFILL = LlmApiOptions(
    tensor_parallel_size=2,
    max_batch_size=1,
    max_num_tokens=4096,
    max_seq_len=16384,
    cuda_graph_config=None,
    disable_overlap_scheduler=True,
    cache_transceiver_config=NIXL,
)
"""Context servers: bf16 weights over two H100s leave room for one 16K-token prompt at a time."""
DECODE = LlmApiOptions(
    tensor_parallel_size=8,
    max_batch_size=160,
    max_num_tokens=256,
    max_seq_len=16384,
    kv_cache_config=KvCacheOptions(enable_block_reuse=False),
    cache_transceiver_config=NIXL,
)
"""Generation servers: large decode batches on a whole node."""

H100 = GpuNodePoolConfig(
    name="h100",
    instance_type="p5.48xlarge",
    availability_zone="us-west-2a",
    min_size=0,
    desired_size=2,
    max_size=2,
)
"""Two nodes: four prefill groups of 2 GPUs fill one, the decode group of 8 the other."""


def main() -> None:
    settings = pulumi.Config()
    name = settings.get("clusterName") or "llm-eks-team"
    eks = EksConfig(
        region="us-west-2",
        vpc_cidr="10.50.0.0/16",
        availability_zones=["us-west-2a", "us-west-2b"],
        # pulumi up reaches the new cluster's API through its public endpoint, from this range only
        public_access_cidrs=[settings.require("deployerCidr")],
        system_node_group=SystemNodeGroupConfig(instance_type="m7i.2xlarge", min_size=2, desired_size=2, max_size=2),
        gpu_node_pools=[H100],
    )
    provider = aws.Provider(f"{name}-aws", region=eks.region)
    cluster = AwsGpuCluster(name, eks, opts=pulumi.ResourceOptions(providers={"aws": provider}))
    handle = cluster.handle
    platform = PlatformOperators(f"{name}-platform", handle=handle, config=PlatformConfig())
    store = ModelStore(f"{name}-store", handle=handle, namespace=settings.get("namespace") or "team-llama")
    after_store = pulumi.ResourceOptions(provider=handle.provider, depends_on=[store, platform])
    model = ModelPreparation(
        "llama-70b",
        ModelPreparationArgs(
            name="llama-70b",
            source=LLAMA_70B,
            namespace=store.namespace,
            pool=handle.system_pool,
            storage_claim_name=store.claim_name,
            store_mount_path=store.mount_path,
            image=DEFAULT_TRTLLM_IMAGE,
            hf_token_secret="hf-token",
        ),
        opts=after_store,
    )
    pool = handle.gpu_pools["h100"]
    chat = LlmApiDeployment(
        "chat",
        LlmApiDeploymentArgs(
            namespace=store.namespace,
            mode="prefill-decode",
            worker_image=DEFAULT_TRTLLM_IMAGE,
            model_dir=model.model_dir,
            model=LLAMA_70B,  # the components check the groups against it and size their memory
            served_model_name="llama-3.1-70b",
            max_seq_len=16384,
            workers={
                "prefill": WorkerGroupSpec(pool=pool, gpus_per_pod=2, groups=4, llm_api=PREFILL),
                "decode": WorkerGroupSpec(pool=pool, gpus_per_pod=8, groups=1, llm_api=DECODE),
            },
            frontend=TierSpec(min_replicas=2, max_replicas=4),
            router=TierSpec(min_replicas=2, max_replicas=4, memory="2Gi"),
            system_pool=handle.system_pool,
            claim_name=store.claim_name,
            mount_path=store.mount_path,
            runtime_files=installed_runtime_files(),
        ),
        opts=after_store,
    )
    pulumi.export("clusterName", name)
    pulumi.export("fabric", handle.fabric)
    pulumi.export("frontendEndpoints", {"chat": chat.frontend_endpoint})
    pulumi.export("routerUrls", {"chat": chat.router_url})


main()
