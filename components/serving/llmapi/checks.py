"""The stack loader's checks of an llmapi deployment, on the component's own arguments.

A consumer composing :class:`~components.serving.llmapi.deployment.LlmApiDeployment` without the
project's stack configuration gets the same refusals the loader gives a stack file: the group's
GPUs against tensor × pipeline parallelism, heads, limits, precision on the pool's GPUs and GPU
memory (``engines.llm_api_checks.check_group``), prefill/decode compatibility and the transfer
backend over the pool's fabric (``check_prefill_decode``), EFA interfaces per node and the pool's
nodes at the groups' maxima (``components.config.capacity``). They need the typed options
(``WorkerGroupSpec.llm_api``) and the checkpoint (``LlmApiDeploymentArgs.model``); a group given
as a YAML string is checked by the worker component's YAML checks only.
"""

from __future__ import annotations

from typing import Any

from components.config.capacity import (
    GroupDemand,
    efa_interfaces_per_pod,
    host_memory_request_gib,
    nodes_needed,
    pods_per_node,
    weight_bytes_per_param,
)
from components.config.models import ModelSourceConfig
from components.config.scheduling import NodePool
from engines import llm_api_checks
from engines.llm_api import LlmApiOptions


def group_problems(role: str, spec: Any, model: ModelSourceConfig) -> list[str]:
    """``check_group`` of one role (``spec``: a WorkerGroupSpec with ``llm_api``), keyed ``<role>.…``."""
    options: LlmApiOptions = spec.llm_api
    found = llm_api_checks.check_group(
        options,
        model.info,
        model.quantization,
        pods_per_group=spec.pods_per_group,
        gpus_per_pod=spec.gpus_per_pod,
        gpu_memory_gib=spec.pool.gpu_memory_gib,
        gpu_arch=spec.pool.gpu_arch,
    )
    return [p if p.startswith("model.") else f"{role}.{p}" for p in found]


def prefill_decode_problems(workers: dict[str, Any], model: ModelSourceConfig) -> list[str]:
    """KV cache can move from the prefill groups to the decode groups, over their pool's fabric."""
    prefill, decode = workers["prefill"], workers["decode"]
    problems = llm_api_checks.check_prefill_decode(
        prefill.llm_api, decode.llm_api, model.quantization, prefill.pool.fabric
    )
    for role, spec in (("prefill", prefill), ("decode", decode)):
        transceiver = spec.llm_api.cache_transceiver_config
        if transceiver is None or transceiver.backend.upper() == "MPI":
            continue
        problem = llm_api_checks.kv_transfer_problem(spec.pool.fabric, transceiver.backend)
        if problem:
            problems.append(f"{role}.llmApi.cacheTransceiverConfig.backend: '{transceiver.backend}' on pool '{spec.pool.name}': {problem}")
    return problems


def _largest(spec: Any) -> int:
    return max(spec.groups, spec.max_groups or 0)


def capacity_problems(workers: dict[str, Any]) -> list[str]:
    """Each pool holds the groups at their maxima (when its size is known), and the pods sharing a
    node ask no more EFA interfaces than it has."""
    problems: list[str] = []
    by_pool: dict[str, list[tuple[str, Any]]] = {}
    for role, spec in workers.items():
        by_pool.setdefault(spec.pool.name, []).append((role, spec))
    for name, users in sorted(by_pool.items()):
        pool: NodePool = users[0][1].pool
        needed = 0
        for role, spec in users:
            demand = GroupDemand(
                where=role, pool=name, max_groups=_largest(spec), min_groups=spec.min_groups or spec.groups,
                pods_per_group=spec.pods_per_group, gpus_per_pod=spec.gpus_per_pod, efa=pool.fabric == "efa",
            )
            needed += nodes_needed(demand, pool.gpus_per_node)
            if pool.fabric == "efa" and pool.efa_interfaces:
                per_node = min(pods_per_node(pool.gpus_per_node, spec.gpus_per_pod), max(1, _largest(spec) * spec.pods_per_group))
                per_pod = efa_interfaces_per_pod(pool.efa_interfaces, pool.gpus_per_node, spec.gpus_per_pod)
                if per_node * per_pod > pool.efa_interfaces:
                    problems.append(
                        f"{role}.gpus_per_pod: {per_node} pods of {spec.gpus_per_pod} GPUs on one node of pool "
                        f"'{name}' ask for {per_node} × {per_pod} EFA interfaces, but it has {pool.efa_interfaces}: "
                        "raise gpus_per_pod so fewer pods share a node"
                    )
        if pool.max_nodes is not None and needed > pool.max_nodes:
            roles = ", ".join(role for role, _ in users)
            problems.append(
                f"{roles}: at their largest (groups or max_groups) the worker groups on pool '{name}' need "
                f"{needed} nodes, but the pool has at most {pool.max_nodes}: lower groups/max_groups or grow the pool"
            )
    return problems


def group_memory_gib(spec: Any, model: ModelSourceConfig, shm_gib: float) -> int:
    """Host memory of one group pod with /dev/shm (as ``capacity.llmapi_group_memory_gib``)."""
    options: LlmApiOptions = spec.llm_api
    return host_memory_request_gib(
        model.info.param_count,
        weight_bytes_per_param("bfloat16", model.quantization),
        max(options.world_size, 1),
        spec.gpus_per_pod,
        shm_gib,
    )


def deployment_problems(args: Any) -> list[str]:
    """Every check above for ``args`` (an LlmApiDeploymentArgs with ``model``)."""
    model: ModelSourceConfig | None = args.model
    typed = {role: spec for role, spec in args.workers.items() if spec.llm_api is not None}
    problems: list[str] = []
    if model is not None:
        for role, spec in typed.items():
            problems += group_problems(role, spec, model)
        if {"prefill", "decode"} <= set(typed):
            problems += prefill_decode_problems(typed, model)
    problems += capacity_problems(args.workers)
    if args.default_max_tokens >= args.max_seq_len:
        problems.append(
            f"default_max_tokens: {args.default_max_tokens} output tokens cannot fit max_seq_len {args.max_seq_len}: lower it"
        )
    return list(dict.fromkeys(problems))
