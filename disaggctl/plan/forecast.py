"""What each deployment should deliver, from its declared workload/SLO and the planner's prediction.

Synth computes this from the stack file alone (no performance model runs): GPUs and cost from the
layout and the price table, throughput and latency from ``workload.prediction`` as written by
``disaggctl plan``. A prediction is trusted only while the layout still matches the one it was
made for; a missed SLO, a stale or missing prediction, or a blown budget is a problem that
``workload.slo.onBreach`` makes an error (``refuse``, default) or a warning (``warn``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import ValidationError

from components.config.instance_types import lookup_instance_type
from components.config.workload import PricingConfig, WorkloadConfig
from engines.llm_api import GROUP_KEYS

from .cost import (
    CostRow,
    deployment_cost,
    group_shapes,
    pool_costs,
    pool_spec,
    render_cost_text,
    row_from_json,
    target_tokens_per_second,
    usd_per_million_tokens,
)
from .pricing import check_offered

NAMESPACE = "disagg"


@dataclass(frozen=True)
class RoleLayout:
    pool: str
    groups: int
    gpus_per_group: int
    tensor_parallel_size: int | None
    pipeline_parallel_size: int | None
    max_batch_size: int | None


@dataclass
class Forecast:
    """One deployment's figures; ``None`` where nothing is declared or known."""

    deployment: str
    mode: str
    pools: str
    gpus: int
    usd_per_hour: float | None
    price_basis: str
    tokens_per_s_per_gpu: float | None = None
    tokens_per_s_per_user: float | None = None
    ttft_ms: float | None = None
    tpot_ms: float | None = None
    slo_ttft_ms: float | None = None
    slo_tpot_ms: float | None = None
    slo_percentile: int | None = None
    usd_per_million_tokens: float | None = None
    """At the target rate (requestRate × outputTokens): what the tokens asked for cost."""
    target_tokens_per_s: float | None = None
    nodes: int = 0
    """Whole nodes at the configured groups (the capacity check's packing)."""
    max_nodes: int = 0
    """Whole nodes with every group at maxGroups."""
    max_usd_per_hour: float | None = None
    cost_rows: list[dict[str, Any]] = field(default_factory=list)
    prediction_source: str | None = None
    status: str = "no workload declared"
    problems: list[str] = field(default_factory=list)
    refuse: bool = False

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("refuse")
        for key in ("usd_per_hour", "max_usd_per_hour", "usd_per_million_tokens", "target_tokens_per_s",
                    "tokens_per_s_per_gpu", "tokens_per_s_per_user"):
            if out[key] is not None:
                out[key] = round(out[key], 3)
        return out


def _json_value(raw: Mapping[str, str], key: str, default: Any) -> Any:
    value = raw.get(f"{NAMESPACE}:{key}")
    if value is None:
        return default
    try:
        return json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError:
        return default


def _pools(cluster: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    eks = cluster.get("eks") or {}
    return {str(p.get("name")): p for p in eks.get("gpuNodePools") or [] if isinstance(p, dict)}


def role_layouts(
    deployment: Mapping[str, Any], engines: Mapping[str, Any], pools: Mapping[str, Mapping[str, Any]]
) -> dict[str, RoleLayout]:
    """Each worker role's pool, group count, GPUs per group and parallelism (llmApi or engine)."""
    layouts: dict[str, RoleLayout] = {}
    for role in GROUP_KEYS:
        group = deployment.get(role)
        if not isinstance(group, dict):
            continue
        pool = pools.get(str(group.get("pool")), {})
        per_node = lookup_instance_type(pool["instanceType"]).gpus if pool.get("instanceType") else 0
        gpus_per_pod = int(group.get("gpusPerPod") or per_node)
        options = group.get("llmApi") or {}
        engine = (engines.get(str(group.get("engine"))) or {}) if not options else {}
        tp = options.get("tensorParallelSize", engine.get("tpSize"))
        pp = options.get("pipelineParallelSize", engine.get("ppSize", 1 if engine or options else None))
        layouts[role] = RoleLayout(
            pool=str(group.get("pool")),
            groups=int(group.get("groups", 1)),
            gpus_per_group=int(group.get("podsPerGroup", 1)) * gpus_per_pod,
            tensor_parallel_size=tp,
            pipeline_parallel_size=pp,
            max_batch_size=options.get("maxBatchSize", engine.get("maxBatchSize")),
        )
    return layouts


def stack_forecasts(raw: Mapping[str, str], stack: str | None = None) -> tuple[list[Forecast], list[str]]:
    """Forecasts of every deployment of a flat Pulumi config, and config problems in workloads
    (``stack``: its name, for the commands the messages suggest)."""
    cluster = _json_value(raw, "cluster", {})
    region = (cluster.get("eks") or {}).get("region")
    pools = _pools(cluster)
    engines = _json_value(raw, "engines", {})
    deployments = _json_value(raw, "deployments", [])
    problems: list[str] = []
    try:
        pricing = PricingConfig.model_validate(_json_value(raw, "pricing", {}))
    except ValidationError as err:
        problems += [_problem(("pricing", *e["loc"]), e) for e in err.errors()]
        pricing = PricingConfig()
    for index, pool in enumerate((cluster.get("eks") or {}).get("gpuNodePools") or []):
        refusal = check_offered(str(pool.get("instanceType")), region, pricing) if isinstance(pool, dict) else None
        if refusal:
            problems.append(f"{NAMESPACE}:cluster.eks.gpuNodePools[{index}].instanceType: {refusal}")
    out: list[Forecast] = []
    for index, deployment in enumerate(deployments if isinstance(deployments, list) else []):
        workload = None
        if deployment.get("workload") is not None:
            try:
                workload = WorkloadConfig.model_validate(deployment["workload"])
            except ValidationError as err:
                problems += [_problem(("deployments", index, "workload", *e["loc"]), e) for e in err.errors()]
                continue
        out.append(forecast(deployment, workload, engines, pools, pricing, region, index, stack=stack))
    return out, problems


def stack_pool_costs(raw: Mapping[str, str], forecasts: list[Forecast]) -> list[CostRow]:
    """Each GPU pool of the stack: the deployments' whole nodes there, and the pool at its ceiling."""
    cluster = _json_value(raw, "cluster", {})
    specs = {n: pool_spec(p) for n, p in _pools(cluster).items() if p.get("instanceType")}
    if not specs:
        return []
    try:
        pricing = PricingConfig.model_validate(_json_value(raw, "pricing", {}))
    except ValidationError:
        pricing = PricingConfig()
    nodes: dict[str, int] = {}
    gpus: dict[str, int] = {}
    for f in forecasts:
        for row in f.cost_rows:
            nodes[row["pool"]] = nodes.get(row["pool"], 0) + row["nodes"]
            gpus[row["pool"]] = gpus.get(row["pool"], 0) + row["gpus"]
    region = (cluster.get("eks") or {}).get("region")
    return list(pool_costs(specs, nodes, gpus, region, pricing).rows)


def _problem(loc: tuple[Any, ...], error: Mapping[str, Any]) -> str:
    from components.config.loader import _describe  # one error format for every config key

    return _describe({**error, "loc": loc})


def forecast(
    deployment: Mapping[str, Any],
    workload: WorkloadConfig | None,
    engines: Mapping[str, Any],
    pools: Mapping[str, Mapping[str, Any]],
    pricing: PricingConfig,
    region: str | None,
    index: int,
    stack: str | None = None,
) -> Forecast:
    name = str(deployment.get("name"))
    where = f"{NAMESPACE}:deployments[{index}]"
    layouts = role_layouts(deployment, engines, pools)
    specs = {n: pool_spec(p) for n, p in pools.items() if p.get("instanceType")}
    cost = deployment_cost(group_shapes(deployment, specs), specs, region, pricing)
    result = Forecast(
        deployment=name,
        mode=str(deployment.get("mode", "tensor-parallel")),
        pools=",".join(sorted({lay.pool for lay in layouts.values()})),
        gpus=sum(lay.groups * lay.gpus_per_group for lay in layouts.values()),
        usd_per_hour=cost.usd_per_hour,
        price_basis="; ".join(sorted({r.basis for r in cost.rows} | set(cost.problems))),
        nodes=cost.nodes,
        max_nodes=cost.max_nodes,
        max_usd_per_hour=cost.max_usd_per_hour,
        cost_rows=[r.as_json() for r in cost.rows],
    )
    gpus = result.gpus
    if workload is None:
        return result
    slo = workload.slo
    result.slo_ttft_ms, result.slo_tpot_ms, result.slo_percentile = slo.ttft_ms, slo.tpot_ms, slo.percentile
    result.refuse = slo.on_breach == "refuse"
    fix = f"run `python -m disaggctl plan --stack {stack or '<stack>'} --deployment {name}`"
    prediction = workload.prediction
    problems: list[str] = []
    if prediction is None:
        problems.append(f"{where}.workload.prediction: none: {fix} to size the deployment for its SLO")
    else:
        result.tokens_per_s_per_gpu = prediction.tokens_per_second_per_gpu
        result.tokens_per_s_per_user = prediction.tokens_per_second_per_user
        result.ttft_ms, result.tpot_ms = prediction.ttft_ms, prediction.tpot_ms
        result.prediction_source = prediction.source
        result.target_tokens_per_s = target_tokens_per_second(workload, prediction.tokens_per_second_per_user)
        result.usd_per_million_tokens = usd_per_million_tokens(cost.usd_per_hour, result.target_tokens_per_s)
        problems += _stale(where, prediction, layouts, pools, fix)
        if prediction.ttft_ms > slo.ttft_ms:
            problems.append(
                f"{where}.workload.slo.ttftMs: {slo.ttft_ms:g} ms p{slo.percentile}, but the layout is "
                f"predicted at {prediction.ttft_ms:.0f} ms on pool {result.pools}: {fix}, "
                "or use a faster pool, or relax ttftMs"
            )
        if prediction.tpot_ms > slo.tpot_ms:
            problems.append(
                f"{where}.workload.slo.tpotMs: {slo.tpot_ms:g} ms p{slo.percentile}, but the layout is "
                f"predicted at {prediction.tpot_ms:.1f} ms on pool {result.pools}: {fix}, "
                "or use a faster pool, or relax tpotMs"
            )
        if workload.request_rate is not None and workload.request_rate > prediction.requests_per_second * 1.0001:
            problems.append(
                f"{where}.workload.requestRate: {workload.request_rate:g} requests/s, but the layout "
                f"sustains {prediction.requests_per_second:.2f} at the SLO: {fix} (it adds groups)"
            )
        if workload.concurrency is not None and workload.concurrency > prediction.concurrency:
            problems.append(
                f"{where}.workload.concurrency: {workload.concurrency} in flight, but the layout "
                f"holds {prediction.concurrency} at the SLO: {fix} (it adds groups)"
            )
    budget = workload.budget
    if budget.max_gpus is not None and gpus > budget.max_gpus:
        problems.append(
            f"{where}.workload.budget.maxGpus: {budget.max_gpus}, but the layout uses {gpus} GPUs: "
            "lower groups or raise maxGpus"
        )
    hourly = cost.usd_per_hour
    if budget.max_dollars_per_hour is not None and hourly is not None and hourly > budget.max_dollars_per_hour:
        problems.append(
            f"{where}.workload.budget.maxDollarsPerHour: {budget.max_dollars_per_hour:g}, but the layout "
            f"costs ${hourly:.2f}/hour ({cost.nodes} whole nodes): lower groups or raise maxDollarsPerHour"
        )
    result.problems = problems
    if problems:
        result.status = "REFUSED" if result.refuse else "WARNING: misses its SLO or budget"
    else:
        result.status = f"meets SLO p{slo.percentile}"
    return result


def _stale(
    where: str,
    prediction: Any,
    layouts: Mapping[str, RoleLayout],
    pools: Mapping[str, Mapping[str, Any]],
    fix: str,
) -> list[str]:
    problems: list[str] = []
    gpu_models = {
        lookup_instance_type(pools[lay.pool]["instanceType"]).gpu_model
        for lay in layouts.values()
        if pools.get(lay.pool, {}).get("instanceType")
    }
    if gpu_models and gpu_models != {prediction.gpu}:
        problems.append(
            f"{where}.workload.prediction.gpu: predicted for {prediction.gpu}, but the pool has "
            f"{', '.join(sorted(gpu_models))}: {fix}"
        )
    roles = {role: lay for role, lay in layouts.items()}
    if set(roles) != set(prediction.roles):
        problems.append(
            f"{where}.workload.prediction.roles: predicted for {', '.join(sorted(prediction.roles))}, "
            f"but the deployment has {', '.join(sorted(roles))}: {fix}"
        )
        return problems
    for role, lay in sorted(roles.items()):
        want = prediction.roles[role]
        have = (lay.tensor_parallel_size, lay.pipeline_parallel_size, lay.max_batch_size, lay.groups)
        planned = (want.tensor_parallel_size, want.pipeline_parallel_size, want.max_batch_size, want.groups)
        if have != planned:
            problems.append(
                f"{where}.{role}: layout tp {have[0]} pp {have[1]} maxBatchSize {have[2]} groups {have[3]} "
                f"differs from the predicted tp {planned[0]} pp {planned[1]} maxBatchSize {planned[2]} "
                f"groups {planned[3]}: {fix}, or restore the planned layout"
            )
    return problems


def render_forecasts(forecasts: list[Forecast], pools: list[CostRow] | None = None) -> str:
    """The tables synth puts at the top of summary.txt and prints: each deployment (whole nodes,
    $/hour expected and at maxGroups, $/Mtok at its target rate), then each pool's cost rows."""
    if not forecasts and not pools:
        return ""

    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    header = ("deployment", "GPUs", "nodes", "$/hour", "max $/hour", "tok/s/GPU", "tok/s/user", "TTFT ms", "TPOT ms",
              "$/Mtok", "status")
    rows = [header]
    for f in forecasts:
        slo_ttft = f" (≤{f.slo_ttft_ms:g})" if f.slo_ttft_ms is not None else ""
        slo_tpot = f" (≤{f.slo_tpot_ms:g})" if f.slo_tpot_ms is not None else ""
        rows.append((
            f.deployment,
            str(f.gpus),
            f"{f.nodes}" + (f"-{f.max_nodes}" if f.max_nodes != f.nodes else ""),
            num(f.usd_per_hour, ".2f"),
            num(f.max_usd_per_hour, ".2f"),
            num(f.tokens_per_s_per_gpu, ".1f"),
            num(f.tokens_per_s_per_user, ".1f"),
            num(f.ttft_ms, ".0f") + slo_ttft,
            num(f.tpot_ms, ".1f") + slo_tpot,
            num(f.usd_per_million_tokens, ".3f"),
            f.status,
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["", "deployments (predicted at the declared SLO; $ for whole nodes, $/Mtok at the target rate)"]
    if forecasts:
        lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    for f in forecasts:
        lines += [f"  {f.deployment}: price {f.price_basis}"] if f.price_basis else []
        lines += [f"  {f.deployment}: {p}" for p in f.problems]
    if pools:
        lines += ["", "GPU pools (nodes: the deployments' whole nodes; max: the pool at maxSize or its block)"]
        lines += render_cost_text(pools).rstrip("\n").splitlines()
    return "\n".join(lines) + "\n\n"


def pool_rows_from_json(rows: list[dict[str, Any]]) -> list[CostRow]:
    return [row_from_json(r) for r in rows]
