"""``python -m disaggctl plan``: size a deployment for its workload and SLO on candidate pools.

For each candidate pool, NVIDIA AIConfigurator (behind :mod:`disaggctl.plan.perf_model`) sweeps
aggregated and prefill/decode layouts for the model, the typical input/output lengths and the
TTFT/TPOT targets. Here each role of a candidate is scaled to the target request rate or
concurrency (groups = what the rate needs), packed onto whole nodes and priced by the one cost
model (:mod:`disaggctl.plan.cost`, the capacity check's packing), filtered (pool GPU memory, SLO,
the pool's free nodes, budget), and the cheapest $/Mtok at the target rate is the pick.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.config.instance_types import lookup_instance_type
from components.config.workload import PricingConfig, WorkloadConfig, typical
from engines.llm_api import GROUP_KEYS

from .cost import (
    Cost,
    GroupShape,
    PoolSpec,
    deployment_cost,
    group_shapes,
    pool_specs,
    render_cost_text,
    target_tokens_per_second,
    usd_per_million_tokens,
)
from .perf_model import (
    MODELS,
    SYSTEMS,
    AIConfiguratorModel,
    PerformanceModel,
    PerformanceModelError,
    RecordedModel,
    SearchRequest,
)
from .pricing import check_offered

NAMESPACE = "disagg"


@dataclass(frozen=True)
class PoolOption:
    """A place the deployment could run: a stack pool or a bare instance type."""

    name: str
    instance_type: str
    supply_nodes: int
    """Nodes the pool holds for this deployment: capacity.pool_supply (a fixed managed node group
    holds desiredSize) less what the stack's other deployments take there at their maxGroups."""
    capacity_type: str = "on-demand"
    reservation_id: str | None = None

    @property
    def max_gpus(self) -> int:
        return self.supply_nodes * self.gpus_per_node

    @property
    def gpus_per_node(self) -> int:
        return lookup_instance_type(self.instance_type).gpus

    @property
    def gpu_model(self) -> str:
        return lookup_instance_type(self.instance_type).gpu_model

    @property
    def gpu_memory_gib(self) -> int:
        return lookup_instance_type(self.instance_type).gpu_memory_gib

    def spec(self) -> PoolSpec:
        # a layout is priced by the nodes it takes; a Capacity Block's paid-for size is the pool's
        # (synth's pool_costs bills it), not a layout's
        return PoolSpec(self.name, self.instance_type, self.capacity_type, self.reservation_id,
                        supply_nodes=self.supply_nodes, ceiling_nodes=self.supply_nodes, committed_nodes=0)


@dataclass
class Option:
    """One sized, priced candidate layout on one pool."""

    pool: PoolOption
    mode: str
    roles: dict[str, dict[str, Any]]
    """role -> tp, pp, batch_size, max_num_tokens, groups"""
    gpus: int
    tokens_per_s_per_gpu: float
    tokens_per_s_per_user: float
    ttft_ms: float
    tpot_ms: float
    requests_per_second: float
    concurrency: int
    source: str
    usd_per_hour: float | None = None
    """Whole nodes at the target rate (the cost model)."""
    usd_per_million_tokens: float | None = None
    """At the target rate: what the tokens the workload asks for cost."""
    nodes: int = 0
    max_nodes: int = 0
    max_usd_per_hour: float | None = None
    cost: Cost | None = None
    rejected: list[str] = field(default_factory=list)

    @property
    def layout(self) -> str:
        parts = []
        for role, r in self.roles.items():
            label = "" if role == "workers" else f"{role[0]}:"
            pp = f"pp{r['pp']}" if r["pp"] > 1 else ""
            parts.append(f"{label}{r['groups']}x tp{r['tp']}{pp} bs{r['batch_size']}")
        return " + ".join(parts)


def _round_up(value: int, step: int) -> int:
    return max(step, math.ceil(value / step) * step)


def pods_and_gpus(tp: int, pp: int, gpus_per_node: int) -> tuple[int, int]:
    """(podsPerGroup, gpusPerPod) of a tp×pp group: one pod when it fits a node, else whole nodes."""
    world = tp * pp
    return (1, world) if world <= gpus_per_node else (math.ceil(world / gpus_per_node), gpus_per_node)


def role_groups(workers: int, unit: float, target: float) -> int:
    """Groups of a role the target needs: AIConfigurator's ``workers`` per ``unit`` (requests/s or
    requests in flight), scaled to ``target`` and rounded up (each role on its own)."""
    return max(1, math.ceil(workers * target / unit - 1e-9))


def size_options(
    answer: Mapping[str, Any],
    pool: PoolOption,
    workload: WorkloadConfig,
    pricing: PricingConfig,
    region: str | None = None,
    headroom: Mapping[str, float] | None = None,
) -> list[Option]:
    """AIConfigurator's candidates on ``pool``, each role scaled to the workload's target rate,
    packed onto whole nodes with the capacity check's packing and priced. ``headroom``: role ->
    maxGroups/groups of the stack's deployment (kept when writing; checked here at its maximum). Pure."""
    isl = typical(workload.input_tokens)
    slo, budget = workload.slo, workload.budget
    headroom = headroom or {}
    database = answer["database"]
    source = f"{answer['engine']}, {database['system']} {database['backend']} {database['version']}"
    spec = pool.spec()
    options: list[Option] = []
    for c in answer["candidates"]:
        if workload.request_rate is not None:
            unit, target = float(c["request_rate"]), workload.request_rate
        elif workload.concurrency is not None:
            unit, target = float(c["concurrency"]), float(workload.concurrency)
        else:
            unit = target = 1.0
        roles: dict[str, dict[str, Any]] = {}
        shapes: list[GroupShape] = []
        rejected: list[str] = []
        scale = math.inf
        for role, r in c["roles"].items():
            if role == "workers":
                tokens = _round_up(int(r["max_num_tokens"]), 512)
            elif role == "prefill":
                tokens = _round_up(int(r["batch_size"]) * isl, 512)
            else:
                tokens = _round_up(int(r["batch_size"]), 256)
            groups = role_groups(int(r["workers"]), unit, target)
            scale = min(scale, groups / int(r["workers"]))
            roles[role] = {
                "tp": int(r["tp"]),
                "pp": int(r["pp"]),
                "batch_size": int(r["batch_size"]),
                "max_num_tokens": tokens,
                "groups": groups,
            }
            pods, per_pod = pods_and_gpus(int(r["tp"]), int(r["pp"]), pool.gpus_per_node)
            max_groups = max(groups, math.ceil(groups * headroom.get(role, 1.0) - 1e-9))
            shapes.append(GroupShape(role, pool.name, groups, max_groups, pods, per_pod))
            if r["memory_gib"] > pool.gpu_memory_gib:
                rejected.append(f"{role} needs {r['memory_gib']:.0f} GiB per GPU, {pool.gpu_model} has {pool.gpu_memory_gib}")
        cost = deployment_cost(shapes, {pool.name: spec}, region, pricing)
        gpus = cost.gpus
        option = Option(
            pool=pool,
            mode="tensor-parallel" if c["mode"] == "aggregated" else "prefill-decode",
            roles=roles,
            gpus=gpus,
            tokens_per_s_per_gpu=float(c["tokens_per_s_per_gpu"]),
            tokens_per_s_per_user=float(c["tokens_per_s_per_user"]),
            ttft_ms=float(c["ttft_ms"]),
            tpot_ms=float(c["tpot_ms"]),
            requests_per_second=round(float(c["request_rate"]) * scale, 3),
            concurrency=math.floor(int(c["concurrency"]) * scale + 1e-9),
            source=source,
            usd_per_hour=cost.usd_per_hour,
            nodes=cost.nodes,
            max_nodes=cost.max_nodes,
            max_usd_per_hour=cost.max_usd_per_hour,
            cost=cost,
        )
        option.usd_per_million_tokens = usd_per_million_tokens(
            cost.usd_per_hour, target_tokens_per_second(workload, option.tokens_per_s_per_user)
        )
        if option.ttft_ms > slo.ttft_ms:
            rejected.append(f"TTFT {option.ttft_ms:.0f} > {slo.ttft_ms:g} ms")
        if option.tpot_ms > slo.tpot_ms:
            rejected.append(f"TPOT {option.tpot_ms:.1f} > {slo.tpot_ms:g} ms")
        refusal = check_offered(pool.instance_type, region, pricing)
        if refusal:
            rejected.append(f"{pool.instance_type} is not offered in {region}")
        elif cost.usd_per_hour is None:
            rejected.append("no price: " + "; ".join(cost.problems))
        if cost.max_nodes > pool.supply_nodes:
            at = "at maxGroups " if cost.max_nodes > cost.nodes else ""
            rejected.append(f"{cost.max_nodes} nodes {at}> pool's {pool.supply_nodes}")
        if budget.max_gpus is not None and gpus > budget.max_gpus:
            rejected.append(f"{gpus} GPUs > budget {budget.max_gpus}")
        over_budget = budget.max_dollars_per_hour is not None and option.usd_per_hour is not None
        if over_budget and option.usd_per_hour > budget.max_dollars_per_hour:  # type: ignore[operator]
            rejected.append(f"${option.usd_per_hour:.0f}/h > budget ${budget.max_dollars_per_hour:g}/h")
        option.rejected = rejected
        options.append(option)
    return options


def rank(options: list[Option]) -> list[Option]:
    """Options meeting the SLO first, cheapest $/Mtok at the target rate first (unpriced last; then
    more tokens/s/GPU, fewer GPUs), then the rejected in the same order."""
    return sorted(
        options,
        key=lambda o: (
            bool(o.rejected),
            o.usd_per_million_tokens is None,
            o.usd_per_million_tokens or 0.0,
            -o.tokens_per_s_per_gpu,
            o.gpus,
            o.pool.name,
            o.layout,
        ),
    )


def search(
    model_path: str,
    workload: WorkloadConfig,
    pools: list[PoolOption],
    perf: PerformanceModel,
    pricing: PricingConfig,
    progress: Callable[[str], None] = lambda line: None,
    region: str | None = None,
    headroom: Mapping[str, float] | None = None,
) -> list[Option]:
    """Every candidate on every pool, ranked; ``progress`` gets a line per pool searched."""
    options: list[Option] = []
    for index, pool in enumerate(pools, 1):
        system = SYSTEMS.get(pool.gpu_model)
        prefix = f"[{index}/{len(pools)}] {pool.name} ({pool.instance_type}, {pool.gpu_model})"
        if system is None:
            progress(f"{prefix}: skipped, AIConfigurator has no system for {pool.gpu_model}")
            continue
        total = pool.max_gpus
        if total <= 0:
            progress(f"{prefix}: skipped, no free nodes (the stack's other deployments fill it)")
            continue
        if workload.budget.max_gpus is not None:
            total = min(total, workload.budget.max_gpus)
        request = SearchRequest(
            model_path=model_path,
            system=system,
            total_gpus=total,
            isl=typical(workload.input_tokens),
            osl=typical(workload.output_tokens),
            ttft_ms=workload.slo.ttft_ms,
            tpot_ms=workload.slo.tpot_ms,
        )
        progress(f"{prefix}: searching {system}, up to {total} GPUs ...")
        started = time.monotonic()
        try:
            answer = perf.search(request)
        except PerformanceModelError as err:
            progress(f"{prefix}: failed: {err}")
            continue
        found = size_options(answer, pool, workload, pricing, region, headroom)
        feasible = sum(1 for o in found if not o.rejected)
        progress(f"{prefix}: {len(found)} layouts, {feasible} meet the SLO ({time.monotonic() - started:.1f} s)")
        options += found
    return rank(options)


def render_table(options: list[Option], limit: int = 20) -> str:
    header = ("pool", "mode", "layout", "GPUs", "nodes", "tok/s/GPU", "tok/s/user", "TTFT ms", "TPOT ms", "$/hour",
              "max $/hour", "$/Mtok", "note")
    rows = [header]
    for o in options[:limit]:
        rows.append((
            f"{o.pool.name} ({o.pool.instance_type})",
            "agg" if o.mode == "tensor-parallel" else "p/d",
            o.layout,
            str(o.gpus),
            str(o.nodes) + (f"-{o.max_nodes}" if o.max_nodes != o.nodes else ""),
            f"{o.tokens_per_s_per_gpu:.1f}",
            f"{o.tokens_per_s_per_user:.1f}",
            f"{o.ttft_ms:.0f}",
            f"{o.tpot_ms:.1f}",
            "-" if o.usd_per_hour is None else f"{o.usd_per_hour:.2f}",
            "-" if o.max_usd_per_hour is None else f"{o.max_usd_per_hour:.2f}",
            "-" if o.usd_per_million_tokens is None else f"{o.usd_per_million_tokens:.3f}",
            "; ".join(o.rejected) or "meets SLO",
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows) + "\n"


def group_stanza(option: Option, role: str, base_group: Mapping[str, Any]) -> dict[str, Any]:
    r = option.roles[role]
    pods, per_pod = pods_and_gpus(r["tp"], r["pp"], option.pool.gpus_per_node)
    group: dict[str, Any] = {k: base_group[k] for k in ("model", "engine") if k in base_group}
    group.update({
        "pool": option.pool.name,
        "groups": r["groups"],
        "podsPerGroup": pods,
        "gpusPerPod": per_pod,
        "llmApi": {
            "tensorParallelSize": r["tp"],
            "pipelineParallelSize": r["pp"],
            "maxBatchSize": r["batch_size"],
            "maxNumTokens": r["max_num_tokens"],
        },
    })
    return group


def deployment_stanza(deployment: Mapping[str, Any], workload: WorkloadConfig, option: Option) -> dict[str, Any]:
    """The deployment with the option's mode, worker groups and prediction (other keys kept)."""
    base_group: Mapping[str, Any] = next((deployment[r] for r in GROUP_KEYS if isinstance(deployment.get(r), dict)), {})
    out = {k: v for k, v in deployment.items() if k not in ("mode", *GROUP_KEYS, "workload")}
    out["mode"] = option.mode
    for role in option.roles:
        out[role] = group_stanza(option, role, base_group)
    prediction = {
        "source": option.source,
        "gpu": option.pool.gpu_model,
        "tokensPerSecondPerGpu": round(option.tokens_per_s_per_gpu, 3),
        "tokensPerSecondPerUser": round(option.tokens_per_s_per_user, 3),
        "ttftMs": round(option.ttft_ms, 3),
        "tpotMs": round(option.tpot_ms, 3),
        "requestsPerSecond": option.requests_per_second,
        "concurrency": option.concurrency,
        "roles": {
            role: {
                "tensorParallelSize": r["tp"],
                "pipelineParallelSize": r["pp"],
                "maxBatchSize": r["batch_size"],
                "groups": r["groups"],
            }
            for role, r in option.roles.items()
        },
    }
    declared = workload.model_dump(by_alias=True, exclude_none=True, mode="json", exclude={"prediction"})
    if not declared.get("budget"):
        declared.pop("budget", None)
    out["workload"] = {**declared, "prediction": prediction}
    return out


# ------------------------------------------------------------------------------------------ CLI
def _stack_doc(project: Path, stack: str) -> tuple[Path, dict[str, Any]]:
    path = project / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise SystemExit(f"plan: no stack file {path}")
    return path, yaml.safe_load(path.read_text()) or {}


def _model_of(config: Mapping[str, Any], group: Mapping[str, Any]) -> tuple[str, str]:
    if group.get("model"):
        source = (config.get(f"{NAMESPACE}:models") or {}).get(group["model"]) or {}
        return str(source.get("model", group["model"])), str(source.get("quantization", "none"))
    engine = (config.get(f"{NAMESPACE}:engines") or {}).get(group.get("engine"), {})
    return str(engine.get("model")), str(engine.get("quantization", "none"))


def stack_pools(config: Mapping[str, Any], planning: str | None = None) -> dict[str, PoolOption]:
    """Every GPU pool of the stack, with the nodes left for deployment ``planning``: the pool's
    supply (capacity.pool_supply) less the other deployments' nodes at their maxGroups."""
    specs = pool_specs(config.get(f"{NAMESPACE}:cluster") or {})
    used: dict[str, int] = {}
    for deployment in config.get(f"{NAMESPACE}:deployments") or []:
        if planning is None or deployment.get("name") == planning:
            continue
        for shape in group_shapes(deployment, specs):
            if shape.pool in specs:
                used[shape.pool] = used.get(shape.pool, 0) + shape.nodes(specs[shape.pool].gpus_per_node, shape.max_groups)
    return {
        name: PoolOption(name, spec.instance_type, max(0, spec.supply_nodes - used.get(name, 0)),
                         spec.capacity_type, spec.reservation_id)
        for name, spec in specs.items()
    }


def _config_problems(project: Path, stack: str) -> list[str]:
    """The stack's configuration problems (the loader's, the synth's): plan sizes a valid stack only."""
    from components.config import ConfigError, load_stack_config
    from components.config.stack_file import StackNotFoundError, read_stack_config

    try:
        _, raw, secret_keys = read_stack_config(project, stack)
        load_stack_config(raw, secret_keys)
    except ConfigError as err:
        return err.problems
    except StackNotFoundError as err:
        return [str(err)]
    return []


def headroom_of(deployment: Mapping[str, Any]) -> dict[str, float]:
    """Role -> maxGroups / groups of the deployment as it is (kept by ``--write``)."""
    out: dict[str, float] = {}
    for role in GROUP_KEYS:
        group = deployment.get(role)
        if isinstance(group, dict) and group.get("maxGroups"):
            out[role] = int(group["maxGroups"]) / max(1, int(group.get("groups", 1)))
    return out


def _run_plan(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    path, doc = _stack_doc(Path(args.project), args.stack)
    config = doc.get("config") or {}
    refused = _config_problems(Path(args.project), args.stack)
    if refused:
        for problem in refused:
            print(f"plan: {problem}", file=sys.stderr)
        return 2
    deployments = config.get(f"{NAMESPACE}:deployments") or []
    index = next((i for i, d in enumerate(deployments) if d.get("name") == args.deployment), None)
    if index is None:
        known = ", ".join(d.get("name", "?") for d in deployments) or "none"
        print(f"plan: no deployment '{args.deployment}' in {path.name} (known: {known})", file=sys.stderr)
        return 2
    deployment = deployments[index]
    where = f"{NAMESPACE}:deployments[{index}].workload"
    if not deployment.get("workload"):
        print(f"plan: {where}: none declared: add inputTokens, outputTokens, requestRate and slo", file=sys.stderr)
        return 2
    try:
        workload = WorkloadConfig.model_validate(deployment["workload"])
        pricing = PricingConfig.model_validate(config.get(f"{NAMESPACE}:pricing") or {})
    except ValidationError as err:
        from .forecast import _problem

        for e in err.errors():
            print(f"plan: {_problem(('deployments', index, 'workload', *e['loc']), e)}", file=sys.stderr)
        return 2
    group: Mapping[str, Any] = next(
        (deployment[r] for r in GROUP_KEYS if isinstance(deployment.get(r), dict)), {}
    )
    model, quantization = _model_of(config, group)
    model_path = MODELS.get((model, quantization))
    if model_path is None:
        print(f"plan: no AIConfigurator model for '{model}' ({quantization}): add it to disaggctl/plan/perf_model.py MODELS", file=sys.stderr)
        return 2
    region = ((config.get(f"{NAMESPACE}:cluster") or {}).get("eks") or {}).get("region")
    pools_in_stack = stack_pools(config, planning=args.deployment)
    names = args.pools.split(",") if args.pools else sorted(pools_in_stack)
    unknown = [n for n in names if n not in pools_in_stack]
    if unknown:
        print(f"plan: --pools {','.join(unknown)}: not a pool of {path.name} (pools: {', '.join(sorted(pools_in_stack)) or 'none'})",
              file=sys.stderr)
        return 2
    pools = [pools_in_stack[n] for n in names]
    for instance_type in args.instance_types.split(",") if args.instance_types else []:
        per_node = lookup_instance_type(instance_type).gpus
        pools.append(PoolOption(instance_type, instance_type, max(1, math.ceil(args.max_gpus / per_node))))
    perf: PerformanceModel = RecordedModel(Path(args.recorded)) if args.recorded else AIConfiguratorModel(args.aic_python, Path(args.record) if args.record else None)
    print(f"plan {args.deployment}: {model} ({quantization}) as {model_path}; {typical(workload.input_tokens)} in / "
          f"{typical(workload.output_tokens)} out; TTFT <= {workload.slo.ttft_ms:g} ms, TPOT <= {workload.slo.tpot_ms:g} ms "
          f"(p{workload.slo.percentile}); pools {', '.join(p.name for p in pools)}; ranked by $/Mtok at the target rate",
          flush=True)
    options = search(model_path, workload, pools, perf, pricing, progress=lambda line: print(line, file=sys.stderr, flush=True),
                     region=region, headroom=headroom_of(deployment))
    if not options:
        print("plan: no candidate layouts: see the lines above", file=sys.stderr)
        return 1
    print(render_table(options, args.top), end="")
    best = options[0]
    if args.plot:
        from .plot import draw_frontier

        draw_frontier(options, workload, best if not best.rejected else None, Path(args.plot))
        print(f"drew the frontier to {args.plot}")
    if best.rejected:
        print(f"plan: no layout meets the SLO and budget (closest: {best.layout} on {best.pool.name}: {'; '.join(best.rejected)})", file=sys.stderr)
        return 1
    if best.cost is not None:
        print("cost of the pick (whole nodes; max: every group at maxGroups)")
        print(render_cost_text(best.cost.rows, indent="  "), end="")
    stanza = deployment_stanza(deployment, workload, best)
    text = yaml.safe_dump([stanza], sort_keys=False, default_flow_style=False, width=100)
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote the stanza to {args.out}")
    if args.write:
        from .stack_edit import write_layout

        path.write_text(write_layout(path.read_text(), args.deployment, stanza))
        print(f"updated the layout and prediction of deployment '{args.deployment}' in {path} (everything else kept)")
    if not args.out and not args.write:
        print(text, end="")
    print(json.dumps({"best": {"pool": best.pool.name, "mode": best.mode, "layout": best.layout, "gpus": best.gpus,
                               "nodes": best.nodes, "usd_per_hour": None if best.usd_per_hour is None else round(best.usd_per_hour, 2),
                               "usd_per_million_tokens": None if best.usd_per_million_tokens is None else round(best.usd_per_million_tokens, 4),
                               "tokens_per_s_per_gpu": round(best.tokens_per_s_per_gpu, 1)}}))
    return 0


def add_plan_command(commands: argparse._SubParsersAction) -> None:
    cmd = commands.add_parser("plan", help="size a deployment for its workload and SLO with NVIDIA AIConfigurator")
    cmd.add_argument("--stack", required=True, help="reads Pulumi.<stack>.yaml")
    cmd.add_argument("--deployment", required=True, help="deployment name (its workload: section is the target)")
    cmd.add_argument("--project", default=".")
    cmd.add_argument("--pools", help="comma-separated stack pools to compare (default: every GPU pool of the stack)")
    cmd.add_argument("--instance-types", help="also compare these AWS instance types, e.g. g6e.48xlarge,p5.48xlarge")
    cmd.add_argument("--max-gpus", type=int, default=16, help="GPUs available on each --instance-types candidate")
    cmd.add_argument("--top", type=int, default=20, help="rows in the comparison table")
    cmd.add_argument("--write", action="store_true", help="edit the deployment's layout and prediction in the stack file in place")
    cmd.add_argument("--out", help="write the deployment stanza (YAML list item) to this file")
    cmd.add_argument("--plot", metavar="FILE", help="draw the Pareto frontier to FILE (.png or .svg)")
    cmd.add_argument("--aic-python", help="interpreter with aiconfigurator (default $DISAGG_AIC_PYTHON or .venv-plan/bin/python)")
    cmd.add_argument("--record", metavar="DIR", help="keep each AIConfigurator answer in DIR (test fixtures)")
    cmd.add_argument("--recorded", metavar="DIR", help="replay answers recorded in DIR instead of running AIConfigurator")
    cmd.set_defaults(func=_run_plan)
