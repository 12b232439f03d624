"""A consumer stack: one team's chat model on an existing InfiniBand cluster.

It does not use the project's ``__main__.py`` or its stack configuration: it imports the
components from the installed ``disagg-inference`` package and builds their typed arguments in
code, reading only three settings of its own from ``Pulumi.<stack>.yaml``.
"""

from __future__ import annotations

import pulumi

from components.cluster.existing import ExistingCluster
from components.config.cluster import ExistingClusterConfig, ExistingPoolConfig
from components.config.deployment import (
    FrontendConfig,
    ImagesConfig,
    ModelDeploymentConfig,
    WorkerGroupConfig,
)
from components.config.platform import PlatformConfig
from components.models.engine_build import EngineBuild, EngineBuildArgs
from components.platform import PlatformOperators
from components.serving.deployment import DisaggregatedDeployment, DisaggregatedDeploymentArgs
from components.storage.model_store import ModelStore
from engines.catalog import recommended_spec

settings = pulumi.Config()

cluster = ExistingCluster(
    "onprem",
    ExistingClusterConfig(
        kubeconfig=settings.require("kubeconfig"),
        fabric="infiniband",
        storage_class=settings.require("storageClass"),
        storage_size_gib=3000,
        system_node_selector={"node-role.example.com/cpu": "true"},
        gpu_pools=[
            ExistingPoolConfig(
                name="a100",
                gpus_per_node=8,
                gpu_memory_gib=80,
                gpu_arch="ampere",
                node_selector={"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
            )
        ],
    ),
)
handle = cluster.handle
platform = PlatformOperators("onprem-platform", handle=handle, config=PlatformConfig())
store = ModelStore("team-store", handle=handle, namespace=settings.get("namespace") or "team-chat")

engine = recommended_spec("mixtral-8x7b-instruct", "a100-80gb", max_batch_size=32)
images = ImagesConfig()
build = EngineBuild(
    "mixtral-tp2",
    EngineBuildArgs(
        spec=engine,
        image=images.triton_trtllm,
        namespace=store.namespace,
        pool=handle.gpu_pools["a100"],
        storage_claim_name=store.claim_name,
        store_mount_path=store.mount_path,
        hf_token_secret=None,  # Mixtral is not gated
    ),
    opts=pulumi.ResourceOptions(provider=handle.provider, depends_on=[store, platform]),
)

chat = DisaggregatedDeployment(
    "team-chat",
    DisaggregatedDeploymentArgs(
        deployment=ModelDeploymentConfig(
            name="team-chat",
            frontend=FrontendConfig(min_replicas=1, max_replicas=4, service_type="ClusterIP"),
            workers=WorkerGroupConfig(
                engine="mixtral-tp2", pool="a100", groups=2, pods_per_group=1, gpus_per_pod=engine.world_size
            ),
        ),
        engines={"workers": engine},
        engine_dirs={"workers": build.engine_dir},
        images=images,
        namespace=store.namespace,
        cluster=handle,
        claim_name=store.claim_name,
        mount_path=store.mount_path,
    ),
    opts=pulumi.ResourceOptions(provider=handle.provider, depends_on=[store, platform]),
)

pulumi.export("frontendEndpoint", chat.frontend_endpoint)
pulumi.export("engineLocation", build.engine_dir)
