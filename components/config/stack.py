"""StackConfig: the whole stack's configuration, validated before any resource exists."""

from __future__ import annotations

from datetime import datetime

from pydantic import field_validator

from components.config.base import ConfigModel, check_dns_label
from components.config.capacity import CapacityReport, check_capacity, stack_drain_seconds
from components.config.cluster import ClusterConfig
from components.config.deployment import ImagesConfig, ModelDeploymentConfig, WorkerGroupConfig
from components.config.images import check_runtime_image
from components.config.models import ModelSourceConfig
from components.config.platform import PlatformConfig
from components.config.scheduling import Fabric, NodePool
from components.config.workload import PricingConfig
from engines import llm_api_checks
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
    models: dict[str, ModelSourceConfig] = {}
    """Runtime 'llmapi': checkpoints prepared once into the shared store, by key."""
    engines: dict[str, EngineSpec] = {}
    """Runtime 'engine': TensorRT engines built once into the shared store, by key."""
    deployments: list[ModelDeploymentConfig] = []
    pricing: PricingConfig = PricingConfig()
    """Price overrides ($/hour per instance type; Capacity Blocks and reservations by id)."""

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

    @field_validator("models")
    @classmethod
    def _model_keys(cls, models: dict[str, ModelSourceConfig]) -> dict[str, ModelSourceConfig]:
        for key in models:
            check_dns_label(key, "model key", max_length=40)
        return models

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
            if deployment.runtime != "engine":
                continue
            for group in deployment.worker_groups().values():
                if group.engine is not None:
                    pools.setdefault(group.engine, group.pool)
        return pools

    def used_models(self) -> list[str]:
        """Keys of ``models`` some llmapi worker group serves (sorted): what model preparation runs for."""
        used = {
            group.model
            for deployment in self.deployments
            if deployment.runtime == "llmapi"
            for group in deployment.worker_groups().values()
            if group.model is not None
        }
        return sorted(key for key in used if key in self.models)

    def runtimes(self) -> set[str]:
        """The runtimes the deployments use."""
        return {deployment.runtime for deployment in self.deployments}

    def capacity_report(self, now: datetime | None = None) -> CapacityReport:
        """:func:`check_capacity` of the stack, its Capacity Blocks judged at ``now`` (default: the
        clock) against the longest drain of its deployments."""
        return check_capacity(self, now=now, drain_seconds=stack_drain_seconds(self))

    def cross_check(self, capacity: bool = True) -> list[str]:
        """Problems that involve more than one section, one message each (empty: consistent);
        ``capacity``: with the problems of :meth:`capacity_report` (the loader asks for them once
        everything else passed)."""
        problems: list[str] = []
        pools = self.cluster.node_pools()
        problems += [
            f"{NAMESPACE}:platform: {p}"
            for p in self.platform.check_against(self.fabric(), self.cluster.provider)
        ]
        problems += self._check_images()
        for key, engine in sorted(self.engines.items()):
            problems += [f"{NAMESPACE}:engines.{key}: {p}" for p in check_parallelism(engine)]
            model = MODELS.get(engine.model)
            if model is not None and model.gated and self.hf_token_secret is None:
                problems.append(
                    f"{NAMESPACE}:hfTokenSecret: engine '{key}' downloads '{model.hf_repo}', a gated "
                    "model, but hfTokenSecret is null: name the Secret holding HF_TOKEN"
                )
        for key, source in sorted(self.models.items()):
            if source.gated and self.hf_token_secret is None:
                problems.append(
                    f"{NAMESPACE}:hfTokenSecret: model '{key}' downloads '{source.repository}', a gated "
                    "model, but hfTokenSecret is null: name the Secret holding HF_TOKEN"
                )
        used = self.engine_pools()
        for key in sorted(set(self.engines) - set(used)):
            problems.append(
                f"{NAMESPACE}:engines.{key}: no deployment uses this engine, so there is no GPU pool "
                "to build it on: reference it from a worker group or remove it"
            )
        for key in sorted(set(self.models) - set(self.used_models())):
            problems.append(
                f"{NAMESPACE}:models.{key}: no llmapi deployment serves this model: reference it from a "
                "worker group (model: " + key + ") or remove it"
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
            if deployment.runtime == "engine":
                problems += self._check_engine_deployment(where, deployment, pools)
            else:
                problems += self._check_llmapi_deployment(where, deployment, pools)
            for role, group in deployment.worker_groups().items():
                if group.autoscaling.enabled and not self.metrics_autoscaling():
                    metrics = "Triton" if deployment.runtime == "engine" else "trtllm-serve"
                    problems.append(
                        f"{where}.{role}.autoscaling.enabled: worker groups scale on {metrics} metrics, "
                        f"which need KEDA or a metrics adapter, but {NAMESPACE}:platform.keda.enabled and "
                        f"{NAMESPACE}:platform.metricsAdapter.enabled are false: enable KEDA (with "
                        "prometheusUrl) or set autoscaling.enabled: false"
                    )
        if capacity:
            problems += self.capacity_report().problems
        return problems

    def metrics_autoscaling(self) -> bool:
        """Something scales the tiers on serving metrics: KEDA (preferred) or the metrics adapter."""
        return self.platform.keda.enabled or self.platform.metrics_adapter.enabled

    def _check_images(self) -> list[str]:
        """Each runtime in use gets an image of its TensorRT-LLM generation."""
        problems: list[str] = []
        images = self.images
        if "llmapi" in self.runtimes() or self.models:
            problems += check_runtime_image(
                "llmapi", f"{NAMESPACE}:images.trtllm", images.trtllm, images.trtllm_version,
                f"{NAMESPACE}:images.trtllmVersion",
            )
        if "engine" in self.runtimes() or self.engines:
            problems += check_runtime_image(
                "engine", f"{NAMESPACE}:images.tritonTrtllm", images.triton_trtllm,
                images.triton_trtllm_version, f"{NAMESPACE}:images.tritonTrtllmVersion",
            )
        return problems

    def _check_engine_deployment(
        self, where: str, deployment: ModelDeploymentConfig, pools: dict[str, NodePool]
    ) -> list[str]:
        problems: list[str] = []
        if deployment.mode == "prefill-decode":
            problems.append(
                f"{where}.mode: 'prefill-decode' with runtime 'engine' cannot move KV cache between "
                "separate groups: Triton's TensorRT-LLM backend offers no cache-transceiver choice "
                "(model_instance_state.cc builds its ExecutorConfig without one) and moves KV cache over "
                "MPI inside one MPI world, whose size upstream gives as context tp×pp + generation tp×pp "
                "+ 1 (tensorrtllm_backend disaggregated_serving README), while here each group is its own "
                "world: use runtime: llmapi with cacheTransceiverConfig.backend UCX or NIXL, or mode: "
                "tensor-parallel"
            )
        for role, group in deployment.worker_groups().items():
            key = f"{where}.{role}"
            if group.model is not None:
                problems.append(
                    f"{key}.model: '{group.model}' names a disagg:models checkpoint, which runtime 'engine' "
                    "does not serve: use engine: <key in disagg:engines>, or set runtime: llmapi"
                )
            if "llm_api" in group.model_fields_set:
                problems.append(
                    f"{key}.llmApi: LLM API options apply to runtime 'llmapi' only (engine settings live "
                    "in disagg:engines): remove llmApi, or set runtime: llmapi"
                )
            if group.engine is None:
                problems.append(
                    f"{key}.engine: runtime 'engine' needs the key of an engine in disagg:engines: add "
                    "engine: <key>"
                )
                continue
            problems += self._check_worker_group(key, group, pools)
            group_engine = self.engines.get(group.engine)
            if group_engine is not None:
                problems += _check_serving_limits(where, deployment, group_engine)
        return problems

    def _check_llmapi_deployment(
        self, where: str, deployment: ModelDeploymentConfig, pools: dict[str, NodePool]
    ) -> list[str]:
        problems: list[str] = []
        for role, group in deployment.worker_groups().items():
            key = f"{where}.{role}"
            if group.engine is not None:
                problems.append(
                    f"{key}.engine: '{group.engine}' names a TensorRT engine, which runtime 'llmapi' does not "
                    "serve: use model: <key in disagg:models>, or set runtime: engine"
                )
            problems += self._pool_problems(key, group, pools)
            if group.model is None:
                problems.append(
                    f"{key}.model: runtime 'llmapi' needs the key of a checkpoint in disagg:models: add "
                    "model: <key>"
                )
                continue
            source = self.models.get(group.model)
            if source is None:
                known = ", ".join(sorted(self.models)) or "none defined"
                problems.append(
                    f"{key}.model: no model '{group.model}' in {NAMESPACE}:models (known: {known}): add it "
                    "there or fix the name"
                )
                continue
            pool = pools.get(group.pool)
            if pool is None:
                continue
            gpus_per_pod = group.gpus_per_pod or pool.gpus_per_node
            found = llm_api_checks.check_group(
                group.llm_api,
                source.info,
                source.quantization,
                pods_per_group=group.pods_per_group,
                gpus_per_pod=gpus_per_pod,
                gpu_memory_gib=pool.gpu_memory_gib,
                gpu_arch=pool.gpu_arch,
            )
            problems += [
                f"{NAMESPACE}:models.{group.model}.{p.removeprefix('model.')}" if p.startswith("model.")
                else f"{key}.{p}"
                for p in found
            ]
            if deployment.orchestrator.default_max_tokens >= group.llm_api.max_seq_len:
                problems.append(
                    f"{where}.orchestrator.defaultMaxTokens: {deployment.orchestrator.default_max_tokens} "
                    f"output tokens cannot fit {role}.llmApi.maxSeqLen {group.llm_api.max_seq_len}: lower it"
                )
        if deployment.prefill is not None and deployment.decode is not None:
            problems += self._check_prefill_decode(where, deployment.prefill, deployment.decode)
        return problems

    def _check_prefill_decode(self, where: str, prefill: WorkerGroupConfig, decode: WorkerGroupConfig) -> list[str]:
        problems: list[str] = []
        ctx_source = self.models.get(prefill.model or "")
        gen_source = self.models.get(decode.model or "")
        if ctx_source is None or gen_source is None:
            return problems  # reported per group
        if prefill.model != decode.model:
            differ = [
                f"{name} {getattr(ctx_source, name)} vs {getattr(gen_source, name)}"
                for name in ("repository", "revision", "quantization")
                if getattr(ctx_source, name) != getattr(gen_source, name)
            ]
            if differ:
                problems.append(
                    f"{where}.decode.model: '{decode.model}' is not the checkpoint the prefill side serves "
                    f"('{prefill.model}': {'; '.join(differ)}); KV cache only transfers between identical "
                    "weights: use the same model key on both sides"
                )
                return problems
        found = llm_api_checks.check_prefill_decode(prefill.llm_api, decode.llm_api, ctx_source.quantization)
        problems += [f"{where}.{p}" for p in found]
        pools = self.cluster.node_pools()
        for side, group in (("prefill", prefill), ("decode", decode)):
            pool = pools.get(group.pool)
            transceiver = group.llm_api.cache_transceiver_config
            if pool is None or transceiver is None:
                continue
            problem = llm_api_checks.kv_transfer_problem(pool.fabric, transceiver.backend)
            if problem and transceiver.backend.upper() != "MPI":  # MPI is reported above
                problems.append(
                    f"{where}.{side}.llmApi.cacheTransceiverConfig.backend: '{transceiver.backend}' on pool "
                    f"'{pool.name}' (fabric {pool.fabric}): {problem}"
                )
        return problems

    def _pool_problems(self, where: str, group: WorkerGroupConfig, pools: dict[str, NodePool]) -> list[str]:
        """The group's pool exists, its pods fit a node, and multi-node groups have a fabric."""
        problems: list[str] = []
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
        return problems

    def _check_worker_group(
        self, where: str, group: WorkerGroupConfig, pools: dict[str, NodePool]
    ) -> list[str]:
        problems: list[str] = []
        assert group.engine is not None
        engine = self.engines.get(group.engine)
        if engine is None:
            known = ", ".join(sorted(self.engines)) or "none defined"
            problems.append(
                f"{where}.engine: no engine '{group.engine}' in {NAMESPACE}:engines "
                f"(known: {known}): add it there or fix the name"
            )
        problems += self._pool_problems(where, group, pools)
        pool = pools.get(group.pool)
        if pool is None or engine is None:
            return problems
        gpus_per_pod = group.gpus_per_pod or pool.gpus_per_node
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
