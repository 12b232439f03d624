"""StackConfig: the whole stack's configuration, validated before any resource exists."""

from __future__ import annotations

from pydantic import field_validator

from components.cluster.contract import Fabric, NodePool
from components.config.base import ConfigModel, check_dns_label
from components.config.cluster import ClusterConfig
from components.config.deployment import ImagesConfig, ModelDeploymentConfig, WorkerGroupConfig
from components.config.platform import PlatformConfig
from engines.catalog import MODELS
from engines.checks import check_fits_memory, check_parallelism, check_quantization_supported
from engines.spec import EngineSpec

NAMESPACE = "disagg"
"""Pulumi config namespace: keys read ``disagg:<key>`` (the project name in Pulumi.yaml)."""


class StackConfig(ConfigModel):
    """Everything one stack deploys; one top-level key per section in Pulumi.<stack>.yaml."""

    cluster: ClusterConfig
    platform: PlatformConfig = PlatformConfig()
    images: ImagesConfig = ImagesConfig()
    namespace: str = "llm-serving"
    """Kubernetes namespace for engines and model deployments."""
    hf_token_secret: str | None = "hf-token"
    """Existing Secret (key HF_TOKEN) in ``namespace`` with a Hugging Face token; gated models
    (Llama) need it to download. Create it once: ``kubectl -n <namespace> create secret generic
    hf-token --from-literal=HF_TOKEN=…``; null for ungated models only."""
    engines: dict[str, EngineSpec] = {}
    deployments: list[ModelDeploymentConfig] = []

    @field_validator("namespace")
    @classmethod
    def _namespace_is_dns_label(cls, namespace: str) -> str:
        return check_dns_label(namespace, "namespace")

    @field_validator("hf_token_secret", mode="before")
    @classmethod
    def _no_secret(cls, name: object) -> object:
        # Pulumi config values are strings: "null" or "" switch the token off
        return None if name in ("", "null") else name

    @field_validator("engines")
    @classmethod
    def _engine_keys(cls, engines: dict[str, EngineSpec]) -> dict[str, EngineSpec]:
        for key in engines:
            check_dns_label(key, "engine key", max_length=40)
        return engines

    def fabric(self) -> Fabric:
        """The cluster's GPU fabric, derived from the cluster section."""
        if self.cluster.existing is not None:
            return self.cluster.existing.fabric
        pools = self.cluster.node_pools().values()
        return "efa" if any(pool.fabric == "efa" for pool in pools) else "none"

    def engine_pools(self) -> dict[str, str]:
        """Engine key -> the GPU pool it is built on (that of the first worker group using it)."""
        pools: dict[str, str] = {}
        for deployment in self.deployments:
            for group in deployment.worker_groups().values():
                pools.setdefault(group.engine, group.pool)
        return pools

    def cross_check(self) -> list[str]:
        """Problems that involve more than one section, one message each (empty: consistent)."""
        problems: list[str] = []
        pools = self.cluster.node_pools()
        problems += [
            f"{NAMESPACE}:platform: {p}"
            for p in self.platform.check_against(self.fabric(), self.cluster.provider)
        ]
        for key, engine in sorted(self.engines.items()):
            problems += [f"{NAMESPACE}:engines.{key}: {p}" for p in check_parallelism(engine)]
            model = MODELS.get(engine.model)
            if model is not None and model.gated and self.hf_token_secret is None:
                problems.append(
                    f"{NAMESPACE}:hfTokenSecret: engine '{key}' downloads '{model.hf_repo}', a gated "
                    "model, but hfTokenSecret is null: name the Secret holding HF_TOKEN"
                )
        used = self.engine_pools()
        for key in sorted(set(self.engines) - set(used)):
            problems.append(
                f"{NAMESPACE}:engines.{key}: no deployment uses this engine, so there is no GPU pool "
                "to build it on: reference it from a worker group or remove it"
            )
        seen: set[str] = set()
        for index, deployment in enumerate(self.deployments):
            where = f"{NAMESPACE}:deployments[{index}]"
            if deployment.name in seen:
                problems.append(
                    f"{where}.name: deployment name '{deployment.name}' is used twice: "
                    "give each deployment its own name"
                )
            seen.add(deployment.name)
            for role, group in deployment.worker_groups().items():
                problems += self._check_worker_group(f"{where}.{role}", group, pools)
                if group.autoscaling.enabled and not self.platform.metrics_adapter.enabled:
                    problems.append(
                        f"{where}.{role}.autoscaling.enabled: the HPA scales on Triton metrics, which "
                        f"need a metrics adapter, but {NAMESPACE}:platform.metricsAdapter.enabled is "
                        "false: enable it (with prometheusUrl) or set autoscaling.enabled: false"
                    )
                group_engine = self.engines.get(group.engine)
                if group_engine is not None:
                    problems += _check_serving_limits(where, deployment, group_engine)
            if deployment.prefill and deployment.decode:
                prefill = self.engines.get(deployment.prefill.engine)
                decode = self.engines.get(deployment.decode.engine)
                if prefill and decode and prefill.model != decode.model:
                    problems.append(
                        f"{where}: prefill engine '{deployment.prefill.engine}' serves "
                        f"'{prefill.model}' but decode engine '{deployment.decode.engine}' serves "
                        f"'{decode.model}': both phases must run the same model"
                    )
        return problems

    def _check_worker_group(
        self, where: str, group: WorkerGroupConfig, pools: dict[str, NodePool]
    ) -> list[str]:
        problems: list[str] = []
        engine = self.engines.get(group.engine)
        if engine is None:
            known = ", ".join(sorted(self.engines)) or "none defined"
            problems.append(
                f"{where}.engine: no engine '{group.engine}' in {NAMESPACE}:engines "
                f"(known: {known}): add it there or fix the name"
            )
        pool = pools.get(group.pool)
        if pool is None:
            known = ", ".join(sorted(pools)) or "none defined"
            problems.append(
                f"{where}.pool: no GPU node pool '{group.pool}' in {NAMESPACE}:cluster "
                f"(known: {known}): add the pool or fix the name"
            )
            return problems
        gpus_per_pod = group.gpus_per_pod or pool.gpus_per_node
        if gpus_per_pod > pool.gpus_per_node:
            kind = pool.instance_type or f"pool '{pool.name}'"
            problems.append(
                f"{where}.gpusPerPod: {gpus_per_pod} GPUs per pod asked, but {kind} nodes have "
                f"{pool.gpus_per_node}: lower gpusPerPod and raise podsPerGroup, "
                "or use a larger instance type"
            )
        if group.pods_per_group > 1 and pool.fabric == "none":
            problems.append(
                f"{where}.podsPerGroup: {group.pods_per_group} pods per group span nodes, but "
                f"pool '{pool.name}' has no RDMA fabric (EFA/InfiniBand/RoCE): use an "
                "EFA-capable instance type with efa enabled, or keep the group on one node"
            )
        if engine is None:
            return problems
        given = group.pods_per_group * gpus_per_pod
        if engine.world_size != given:
            fix = (
                f"set podsPerGroup: {engine.world_size // gpus_per_pod}"
                if engine.world_size % gpus_per_pod == 0
                else f"set gpusPerPod to a divisor of {engine.world_size}"
            )
            problems.append(
                f"{where}: engine '{group.engine}' needs tpSize × ppSize = {engine.tp_size} × "
                f"{engine.pp_size} = {engine.world_size} GPUs, but the group gets podsPerGroup "
                f"{group.pods_per_group} × gpusPerPod {gpus_per_pod} = {given}: {fix}, "
                "or change the engine's tpSize/ppSize"
            )
        problems += _engine_hardware_problems(where, group.engine, engine, pool)
        return problems


def _check_serving_limits(where: str, deployment: ModelDeploymentConfig, engine: EngineSpec) -> list[str]:
    problems: list[str] = []
    orchestrator = deployment.orchestrator
    if orchestrator.max_batch_size is not None and orchestrator.max_batch_size > engine.max_batch_size:
        problems.append(
            f"{where}.orchestrator.maxBatchSize: {orchestrator.max_batch_size} exceeds the "
            f"engine's maxBatchSize {engine.max_batch_size}: lower it or rebuild the engine "
            "with a larger maxBatchSize"
        )
    if orchestrator.default_max_tokens >= engine.max_seq_len:
        problems.append(
            f"{where}.orchestrator.defaultMaxTokens: {orchestrator.default_max_tokens} output "
            f"tokens cannot fit the engine's maxSeqLen {engine.max_seq_len}: lower it"
        )
    return problems


def _engine_hardware_problems(
    where: str, engine_key: str, engine: EngineSpec, pool: NodePool
) -> list[str]:
    """Model-vs-GPU checks: the engine fits the pool's GPU memory and its arch runs the precision."""
    found = check_fits_memory(engine, pool.gpu_memory_gib, engine.world_size)
    if pool.gpu_arch:
        found += check_quantization_supported(engine, pool.gpu_arch)
    return [f"{NAMESPACE}:engines.{engine_key} on {where}: {p}" for p in found]
