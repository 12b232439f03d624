"""``python -m disaggctl plan``: size a deployment for its workload and SLO on candidate pools.

For each candidate pool, NVIDIA AIConfigurator (behind :mod:`disaggctl.plan.perf_model`) sweeps
aggregated and prefill/decode layouts for the model, the typical input/output lengths and the
TTFT/TPOT targets. Here each candidate is only filtered (pool GPU memory, SLO, GPU and dollar
budget), scaled to the target request rate or concurrency (whole copies of AIConfigurator's
unit), priced, and the best tokens/s/GPU is written as the deployment's layout and prediction.
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

from .perf_model import (
    MODELS,
    SYSTEMS,
    AIConfiguratorModel,
    PerformanceModel,
    PerformanceModelError,
    RecordedModel,
    SearchRequest,
)
from .pricing import PriceError, dollars_per_million_tokens, pool_price

NAMESPACE = "disagg"


@dataclass(frozen=True)
class PoolOption:
    """A place the deployment could run: a stack pool or a bare instance type."""

    name: str
    instance_type: str
    max_gpus: int
    capacity_type: str = "on-demand"
    reservation_id: str | None = None

    @property
    def gpus_per_node(self) -> int:
        return lookup_instance_type(self.instance_type).gpus

    @property
    def gpu_model(self) -> str:
        return lookup_instance_type(self.instance_type).gpu_model

    @property
    def gpu_memory_gib(self) -> int:
        return lookup_instance_type(self.instance_type).gpu_memory_gib


@dataclass
class Option:
    """One sized, priced candidate layout on one pool."""

    pool: PoolOption
    mode: str
    roles: dict[str, dict[str, Any]]
    """role -> tp, pp, batch_size, max_num_tokens, groups"""
    copies: int
    gpus: int
    tokens_per_s_per_gpu: float
    tokens_per_s_per_user: float
    ttft_ms: float
    tpot_ms: float
    requests_per_second: float
    concurrency: int
    source: str
    usd_per_hour: float | None = None
    usd_per_million_tokens: float | None = None
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


def size_options(
    answer: Mapping[str, Any], pool: PoolOption, workload: WorkloadConfig, pricing: PricingConfig
) -> list[Option]:
    """AIConfigurator's candidates on ``pool``, scaled to the workload's target and priced. Pure."""
    isl = typical(workload.input_tokens)
    slo, budget = workload.slo, workload.budget
    database = answer["database"]
    source = f"{answer['engine']}, {database['system']} {database['backend']} {database['version']}"
    try:
        price = pool_price(
            pool.instance_type, capacity_type=pool.capacity_type, reservation_id=pool.reservation_id, pricing=pricing
        )
    except PriceError:
        price = None
    options: list[Option] = []
    for c in answer["candidates"]:
        if workload.request_rate is not None:
            copies = math.ceil(workload.request_rate / c["request_rate"] - 1e-9)
        elif workload.concurrency is not None:
            copies = math.ceil(workload.concurrency / c["concurrency"])
        else:
            copies = 1
        roles: dict[str, dict[str, Any]] = {}
        rejected: list[str] = []
        for role, r in c["roles"].items():
            if role == "workers":
                tokens = _round_up(int(r["max_num_tokens"]), 512)
            elif role == "prefill":
                tokens = _round_up(int(r["batch_size"]) * isl, 512)
            else:
                tokens = _round_up(int(r["batch_size"]), 256)
            roles[role] = {
                "tp": int(r["tp"]),
                "pp": int(r["pp"]),
                "batch_size": int(r["batch_size"]),
                "max_num_tokens": tokens,
                "groups": int(r["workers"]) * copies,
            }
            if r["memory_gib"] > pool.gpu_memory_gib:
                rejected.append(f"{role} needs {r['memory_gib']:.0f} GiB per GPU, {pool.gpu_model} has {pool.gpu_memory_gib}")
        gpus = int(c["gpus"]) * copies
        option = Option(
            pool=pool,
            mode="tensor-parallel" if c["mode"] == "aggregated" else "prefill-decode",
            roles=roles,
            copies=copies,
            gpus=gpus,
            tokens_per_s_per_gpu=float(c["tokens_per_s_per_gpu"]),
            tokens_per_s_per_user=float(c["tokens_per_s_per_user"]),
            ttft_ms=float(c["ttft_ms"]),
            tpot_ms=float(c["tpot_ms"]),
            requests_per_second=round(float(c["request_rate"]) * copies, 3),
            concurrency=int(c["concurrency"]) * copies,
            source=source,
        )
        if price is not None:
            option.usd_per_hour = gpus * price.usd_per_gpu_hour
            option.usd_per_million_tokens = dollars_per_million_tokens(
                option.usd_per_hour, option.tokens_per_s_per_gpu * gpus
            )
        if option.ttft_ms > slo.ttft_ms:
            rejected.append(f"TTFT {option.ttft_ms:.0f} > {slo.ttft_ms:g} ms")
        if option.tpot_ms > slo.tpot_ms:
            rejected.append(f"TPOT {option.tpot_ms:.1f} > {slo.tpot_ms:g} ms")
        if gpus > pool.max_gpus:
            rejected.append(f"{gpus} GPUs > pool's {pool.max_gpus}")
        if budget.max_gpus is not None and gpus > budget.max_gpus:
            rejected.append(f"{gpus} GPUs > budget {budget.max_gpus}")
        over_budget = budget.max_dollars_per_hour is not None and option.usd_per_hour is not None
        if over_budget and option.usd_per_hour > budget.max_dollars_per_hour:  # type: ignore[operator]
            rejected.append(f"${option.usd_per_hour:.0f}/h > budget ${budget.max_dollars_per_hour:g}/h")
        option.rejected = rejected
        options.append(option)
    return options


def rank(options: list[Option]) -> list[Option]:
    """Feasible options first, by tokens/s/GPU (then fewer GPUs, lower cost), then the rejected."""
    return sorted(
        options,
        key=lambda o: (bool(o.rejected), -o.tokens_per_s_per_gpu, o.gpus, o.usd_per_hour or 0.0, o.pool.name, o.layout),
    )


def search(
    model_path: str,
    workload: WorkloadConfig,
    pools: list[PoolOption],
    perf: PerformanceModel,
    pricing: PricingConfig,
    progress: Callable[[str], None] = lambda line: None,
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
        found = size_options(answer, pool, workload, pricing)
        feasible = sum(1 for o in found if not o.rejected)
        progress(f"{prefix}: {len(found)} layouts, {feasible} meet the SLO ({time.monotonic() - started:.1f} s)")
        options += found
    return rank(options)


def render_table(options: list[Option], limit: int = 20) -> str:
    header = ("pool", "mode", "layout", "GPUs", "tok/s/GPU", "tok/s/user", "TTFT ms", "TPOT ms", "$/hour", "$/Mtok", "note")
    rows = [header]
    for o in options[:limit]:
        rows.append((
            f"{o.pool.name} ({o.pool.instance_type})",
            "agg" if o.mode == "tensor-parallel" else "p/d",
            o.layout,
            str(o.gpus),
            f"{o.tokens_per_s_per_gpu:.1f}",
            f"{o.tokens_per_s_per_user:.1f}",
            f"{o.ttft_ms:.0f}",
            f"{o.tpot_ms:.1f}",
            "-" if o.usd_per_hour is None else f"{o.usd_per_hour:.2f}",
            "-" if o.usd_per_million_tokens is None else f"{o.usd_per_million_tokens:.3f}",
            "; ".join(o.rejected) or "meets SLO",
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows) + "\n"


def group_stanza(option: Option, role: str, base_group: Mapping[str, Any]) -> dict[str, Any]:
    r = option.roles[role]
    world = r["tp"] * r["pp"]
    per_node = option.pool.gpus_per_node
    pods, per_pod = (1, world) if world <= per_node else (world // per_node, per_node)
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


def stack_pools(config: Mapping[str, Any]) -> dict[str, PoolOption]:
    pools = ((config.get(f"{NAMESPACE}:cluster") or {}).get("eks") or {}).get("gpuNodePools") or []
    return {
        p["name"]: PoolOption(
            name=p["name"],
            instance_type=p["instanceType"],
            max_gpus=int(p.get("maxSize", 2)) * lookup_instance_type(p["instanceType"]).gpus,
            capacity_type=p.get("capacityType", "on-demand"),
            reservation_id=p.get("capacityReservationId"),
        )
        for p in pools
    }


def _run_plan(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    path, doc = _stack_doc(Path(args.project), args.stack)
    config = doc.get("config") or {}
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
    pools_in_stack = stack_pools(config)
    names = args.pools.split(",") if args.pools else sorted({str(g.get("pool")) for g in (deployment.get(r) for r in GROUP_KEYS) if isinstance(g, dict)})
    pools = [pools_in_stack[n] for n in names if n in pools_in_stack]
    for instance_type in args.instance_types.split(",") if args.instance_types else []:
        pools.append(PoolOption(name=instance_type, instance_type=instance_type, max_gpus=args.max_gpus))
    perf: PerformanceModel = RecordedModel(Path(args.recorded)) if args.recorded else AIConfiguratorModel(args.aic_python, Path(args.record) if args.record else None)
    print(f"plan {args.deployment}: {model} ({quantization}) as {model_path}; {typical(workload.input_tokens)} in / "
          f"{typical(workload.output_tokens)} out; TTFT <= {workload.slo.ttft_ms:g} ms, TPOT <= {workload.slo.tpot_ms:g} ms "
          f"(p{workload.slo.percentile})", flush=True)
    options = search(model_path, workload, pools, perf, pricing, progress=lambda line: print(line, file=sys.stderr, flush=True))
    if not options:
        print("plan: no candidate layouts: see the lines above", file=sys.stderr)
        return 1
    print(render_table(options, args.top), end="")
    best = options[0]
    if best.rejected:
        print(f"plan: no layout meets the SLO and budget (closest: {best.layout} on {best.pool.name}: {'; '.join(best.rejected)})", file=sys.stderr)
        return 1
    stanza = deployment_stanza(deployment, workload, best)
    text = yaml.safe_dump([stanza], sort_keys=False, default_flow_style=False, width=100)
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote the stanza to {args.out}")
    if args.write:
        deployments[index] = stanza
        path.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=100))
        print(f"updated deployment '{args.deployment}' in {path} (comments in the file are not kept)")
    if not args.out and not args.write:
        print(text, end="")
    print(json.dumps({"best": {"pool": best.pool.name, "mode": best.mode, "layout": best.layout, "gpus": best.gpus,
                               "tokens_per_s_per_gpu": round(best.tokens_per_s_per_gpu, 1)}}))
    return 0


def add_plan_command(commands: argparse._SubParsersAction) -> None:
    cmd = commands.add_parser("plan", help="size a deployment for its workload and SLO with NVIDIA AIConfigurator")
    cmd.add_argument("--stack", required=True, help="reads Pulumi.<stack>.yaml")
    cmd.add_argument("--deployment", required=True, help="deployment name (its workload: section is the target)")
    cmd.add_argument("--project", default=".")
    cmd.add_argument("--pools", help="comma-separated stack pools to compare (default: the deployment's pools)")
    cmd.add_argument("--instance-types", help="also compare these AWS instance types, e.g. g6e.48xlarge,p5.48xlarge")
    cmd.add_argument("--max-gpus", type=int, default=16, help="GPUs available on each --instance-types candidate")
    cmd.add_argument("--top", type=int, default=20, help="rows in the comparison table")
    cmd.add_argument("--write", action="store_true", help="replace the deployment in the stack file")
    cmd.add_argument("--out", help="write the deployment stanza (YAML list item) to this file")
    cmd.add_argument("--aic-python", help="interpreter with aiconfigurator (default $DISAGG_AIC_PYTHON or .venv-plan/bin/python)")
    cmd.add_argument("--record", metavar="DIR", help="keep each AIConfigurator answer in DIR (test fixtures)")
    cmd.add_argument("--recorded", metavar="DIR", help="replay answers recorded in DIR instead of running AIConfigurator")
    cmd.set_defaults(func=_run_plan)
