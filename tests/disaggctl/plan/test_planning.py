"""Workload/SLO config errors, the planner on recorded AIConfigurator answers, synth's SLO gate."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.config.workload import PricingConfig, WorkloadConfig
from disaggctl.plan.cli import _model_of, deployment_stanza, search, stack_pools
from disaggctl.plan.forecast import render_forecasts, stack_forecasts
from disaggctl.plan.perf_model import MODELS, RecordedModel
from disaggctl.plan.pricing import pool_price

PROJECT_DIR = Path(__file__).resolve().parents[3]
DATA = Path(__file__).with_name("data")
RECORDED = RecordedModel(DATA / "aic")
STANZAS = yaml.safe_load((DATA / "stanzas.yaml").read_text())
WORKLOAD_8B = {"inputTokens": 2000, "outputTokens": 300, "requestRate": 16, "slo": {"ttftMs": 800, "tpotMs": 25}}


def flat(config: dict) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def problems_for(workload: dict) -> list[str]:
    config = {"disagg:deployments": [{"name": "x", "workers": {"pool": "a100"}, "workload": workload}]}
    return stack_forecasts(flat(config))[1]


def test_both_rate_and_concurrency_is_one_line_naming_the_key() -> None:
    assert problems_for({**WORKLOAD_8B, "concurrency": 64}) == [
        "disagg:deployments[0].workload: requestRate (16) and concurrency (64) are both set: "
        "give one target (requests per second or requests in flight)"
    ]


def test_missing_slo_and_bad_percentile_are_reported_with_their_keys() -> None:
    assert problems_for({"inputTokens": 2000, "outputTokens": 300}) == [
        "disagg:deployments[0].workload.slo: required but missing: add it"
    ]
    [problem] = problems_for({**WORKLOAD_8B, "slo": {"ttftMs": 800, "tpotMs": 25, "percentile": 97}})
    assert problem.startswith("disagg:deployments[0].workload.slo.percentile: Input should be 50, 90, 95 or 99")
    assert "(got 97): fix the value" in problem


def test_length_distribution_max_below_mean() -> None:
    [problem] = problems_for({**WORKLOAD_8B, "inputTokens": {"mean": 2000, "max": 100}})
    assert problem.startswith("disagg:deployments[0].workload.inputTokens")
    assert "max (100) is below mean (2000): raise max or lower mean" in problem


def test_capacity_block_priced_from_config_else_on_demand_with_a_note() -> None:
    priced = pool_price("p5.48xlarge", capacity_type="capacity-block", reservation_id="cr-1",
                        pricing=PricingConfig(capacity_blocks={"cr-1": 31.46}))
    assert (priced.usd_per_instance_hour, priced.kind) == (31.46, "capacity block")
    assert priced.basis == "capacity block cr-1: disagg:pricing.capacityBlocks"
    fallback = pool_price("p5.48xlarge", capacity_type="capacity-block", reservation_id="cr-1", region="us-east-2")
    assert (fallback.usd_per_instance_hour, fallback.kind) == (55.04, "capacity block")
    assert fallback.basis.startswith("no Capacity Block price, priced on-demand us-east-2 2026-12")
    assert fallback.basis.endswith("set disagg:pricing.capacityBlocks.cr-1")


def plan(stack: str, index: int) -> tuple[dict, list]:
    config = STANZAS[stack]["config"]
    deployment = config["disagg:deployments"][index]
    workload = WorkloadConfig.model_validate(deployment["workload"])
    group = next(deployment[r] for r in ("workers", "prefill", "decode") if r in deployment)
    model_path = MODELS[_model_of(config, group)]
    pools = [stack_pools(config, planning=deployment["name"])[group["pool"]]]
    return deployment, search(model_path, workload, pools, RECORDED, PricingConfig())


def test_plan_llama_8b_on_a100_picks_two_tp2_groups() -> None:
    deployment, options = plan("dev", 0)
    best = options[0]
    assert (best.mode, best.layout, best.gpus) == ("tensor-parallel", "2x tp2 bs64", 4)
    assert round(best.tokens_per_s_per_gpu, 1) == 1241.2
    assert (best.nodes, best.usd_per_hour) == (1, 21.96)  # one whole p4d.24xlarge bills whole
    stanza = deployment_stanza({"name": "llama-8b", "workers": {"model": "llama-8b"}}, WorkloadConfig.model_validate(WORKLOAD_8B), best)
    assert stanza["workers"] == {
        "model": "llama-8b", "pool": "a100", "groups": 2, "podsPerGroup": 1, "gpusPerPod": 2,
        "llmApi": {"tensorParallelSize": 2, "pipelineParallelSize": 1, "maxBatchSize": 64, "maxNumTokens": 4096},
    }
    assert WorkloadConfig.model_validate(stanza["workload"]).prediction.tokens_per_second_per_gpu == 1241.19


def test_plan_rejects_layouts_over_the_pool_and_the_a100_40gb_memory() -> None:
    _, options = plan("prod", 1)
    assert options[0].layout == "d:5x tp2 bs128 + p:22x tp1 bs1" and not options[0].rejected
    assert "38 GPUs > budget 32" in options[1].rejected
    assert "6 nodes > pool's 5" in options[2].rejected


@pytest.mark.parametrize(("stack", "index"), [("dev", 0), ("prod", 0), ("prod", 1)])
def test_shipped_stanza_within_3_percent_of_the_planners_best(stack: str, index: int) -> None:
    deployment, options = plan(stack, index)
    best = next(o for o in options if not o.rejected)
    predicted = deployment["workload"]["prediction"]["tokensPerSecondPerGpu"]
    assert predicted >= 0.97 * best.tokens_per_s_per_gpu
    forecasts, problems = stack_forecasts(flat(STANZAS[stack]["config"]))
    assert problems == [] and forecasts[index].problems == []
    assert forecasts[index].status == "meets SLO p90"


SHIPPED = {stack: yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text())["config"] for stack in ("dev", "prod")}
ROLES = ("workers", "prefill", "decode")


def shipped_workloads() -> list[tuple[str, str]]:
    return [(stack, d["name"]) for stack, config in SHIPPED.items() for d in config["disagg:deployments"] if d.get("workload")]


def test_the_shipped_stacks_declare_workloads_for_their_llmapi_deployments() -> None:
    assert shipped_workloads() == [("dev", "llama-8b"), ("prod", "llama-70b"), ("prod", "llama-70b-pd")]
    # the one engine-runtime deployment has none: AIConfigurator 0.12.0 has no FP8 Llama-3.1-8B
    # checkpoint (MODELS) and plans trtllm-serve layouts (llmApi), not trtllm-build engines
    assert ("llama-3.1-8b-instruct", "fp8") not in MODELS
    engine = next(d for d in SHIPPED["prod"]["disagg:deployments"] if d.get("runtime") == "engine")
    assert "workload" not in engine


@pytest.mark.parametrize(("stack", "name"), shipped_workloads())
def test_shipped_deployment_within_3_percent_of_the_planners_best_on_its_pool(stack: str, name: str) -> None:
    """Item 6: what Pulumi.<stack>.yaml ships is what `plan` finds for its SLO on its pool(s),
    replayed from the recorded AIConfigurator answers (the pools' sizes and the budget select them)."""
    config = SHIPPED[stack]
    index, deployment = next((i, d) for i, d in enumerate(config["disagg:deployments"]) if d["name"] == name)
    workload = WorkloadConfig.model_validate(deployment["workload"])
    groups = {role: deployment[role] for role in ROLES if role in deployment}
    pools = stack_pools(config)
    model_path = MODELS[_model_of(config, next(iter(groups.values())))]
    pricing = PricingConfig.model_validate(config.get("disagg:pricing") or {})
    options = search(model_path, workload, [pools[p] for p in sorted({g["pool"] for g in groups.values()})], RECORDED, pricing)
    best = options[0]
    assert not best.rejected, best.rejected
    prediction = workload.prediction
    assert prediction is not None
    assert prediction.tokens_per_second_per_gpu >= 0.97 * best.tokens_per_s_per_gpu, (
        f"{stack}/{name}: {prediction.tokens_per_second_per_gpu} tok/s/GPU vs the planner's best "
        f"{best.tokens_per_s_per_gpu:.1f} ({best.layout} on {best.pool.name})"
    )
    # the shipped layout is one the planner found feasible, and its prediction is the planner's
    shipped = {role: (g["llmApi"]["tensorParallelSize"], g["llmApi"].get("pipelineParallelSize", 1),
                      g["llmApi"]["maxBatchSize"], g["groups"], g["pool"]) for role, g in groups.items()}
    [option] = [o for o in options if not o.rejected and o.mode == deployment["mode"] and shipped == {
        role: (r["tp"], r["pp"], r["batch_size"], r["groups"], o.pool.name) for role, r in o.roles.items()}]
    planned = deployment_stanza(deployment, workload, option)
    for role, group in groups.items():
        assert {k: group[k] for k in ("pool", "groups", "podsPerGroup", "gpusPerPod")} == {
            k: planned[role][k] for k in ("pool", "groups", "podsPerGroup", "gpusPerPod")}
        assert {k: group["llmApi"][k] for k in planned[role]["llmApi"]} == planned[role]["llmApi"]
    assert prediction.model_dump(by_alias=True) == WorkloadConfig.model_validate(planned["workload"]).prediction.model_dump(by_alias=True)
    forecasts, problems = stack_forecasts(flat(config))
    assert problems == [] and forecasts[index].problems == [] and forecasts[index].status == "meets SLO p90"


def test_forecast_refuses_a_layout_that_misses_the_slo_and_one_changed_after_planning() -> None:
    config = json.loads(json.dumps(STANZAS["dev"]["config"]))
    deployment = config["disagg:deployments"][0]
    deployment["workload"]["slo"]["tpotMs"] = 20
    deployment["workers"]["groups"] = 3
    [forecast], _ = stack_forecasts(flat(config))
    assert forecast.refuse and forecast.status == "REFUSED"
    assert forecast.problems == [
        "disagg:deployments[0].workers: layout tp 2 pp 1 maxBatchSize 64 groups 3 differs from the predicted "
        "tp 2 pp 1 maxBatchSize 64 groups 2: run `python -m disaggctl plan --stack <stack> --deployment llama-8b`, "
        "or restore the planned layout",
        "disagg:deployments[0].workload.slo.tpotMs: 20 ms p90, but the layout is predicted at 24.5 ms on pool a100: "
        "run `python -m disaggctl plan --stack <stack> --deployment llama-8b`, or use a faster pool, or relax tpotMs",
    ]
    assert "llama-8b    6     1      21.96   21.96" in render_forecasts([forecast])


def stack_copy(tmp_path: Path, on_breach: str) -> Path:
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "__main__.py"):
        shutil.copy2(PROJECT_DIR / name, tmp_path / name)
    doc = yaml.safe_load((tmp_path / "Pulumi.dev.yaml").read_text())
    # the shipped, planned llama-8b with a TTFT target its prediction (506 ms) misses
    doc["config"]["disagg:deployments"][0]["workload"]["slo"] = {"ttftMs": 100, "tpotMs": 25, "onBreach": on_breach}
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path


def synth(project: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "disaggctl", "synth", "--project", str(project), "--stack", "dev", "--out", str(out)],
                          cwd=PROJECT_DIR, capture_output=True, text=True, timeout=600)


def test_synth_refuses_a_deployment_that_cannot_meet_its_slo(tmp_path: Path) -> None:
    run = synth(stack_copy(tmp_path, "refuse"), tmp_path / "out")
    assert run.returncode == 2
    assert "disagg:deployments[0].workload.slo.ttftMs: 100 ms p90, but the layout is predicted at 506 ms on pool a100" in run.stderr
    assert not (tmp_path / "out").exists()



def test_synth_warns_and_reports_the_forecast_in_summary_console_and_outputs(tmp_path: Path) -> None:
    run = synth(stack_copy(tmp_path, "warn"), tmp_path / "out")
    assert run.returncode == 0, run.stderr[-2000:]
    summary = (tmp_path / "out" / "summary.txt").read_text()
    assert summary.startswith("deployments (predicted at the declared SLO; $ for whole nodes, $/Mtok at the target rate)\n")
    row = next(line for line in summary.splitlines() if line.startswith("llama-8b "))
    assert row.split()[:9] == ["llama-8b", "4", "1", "21.96", "21.96", "1241.2", "40.9", "506", "(≤100)"]
    assert "WARNING: misses its SLO or budget" in row
    assert summary in run.stdout
    assert "warning: disagg:deployments[0].workload.slo.ttftMs: 100 ms p90" in run.stderr
    forecast = json.loads((tmp_path / "out" / "outputs.json").read_text())["deploymentForecasts"]["llama-8b"]
    assert (forecast["gpus"], forecast["nodes"], forecast["usd_per_hour"], forecast["tokens_per_s_per_gpu"]) == (4, 1, 21.96, 1241.19)
    assert forecast["price_basis"].startswith("on-demand us-west-2 2026-12")


def test_plan_cli_writes_the_stanza_into_the_stack_file(tmp_path: Path, capsys) -> None:
    from disaggctl.__main__ import main

    shutil.copy2(PROJECT_DIR / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    doc = yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text())
    doc["config"]["disagg:deployments"][0]["workload"] = WORKLOAD_8B
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    code = main(["plan", "--project", str(tmp_path), "--stack", "dev", "--deployment", "llama-8b",
                 "--recorded", str(DATA / "aic"), "--write"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "[1/1] a100 (p4d.24xlarge, A100-SXM4-40GB): 7 layouts, 4 meet the SLO" in err
    header = out.splitlines()[1].split()
    assert header[:7] == ["pool", "mode", "layout", "GPUs", "nodes", "tok/s/GPU", "tok/s/user"] and "$/Mtok" in header
    written = yaml.safe_load((tmp_path / "Pulumi.dev.yaml").read_text())["config"]
    deployment = written["disagg:deployments"][0]
    assert deployment["frontend"] == doc["config"]["disagg:deployments"][0]["frontend"]  # kept
    assert (deployment["mode"], deployment["workers"]["groups"], deployment["workers"]["llmApi"]["tensorParallelSize"]) == (
        "tensor-parallel", 2, 2)
    forecasts, problems = stack_forecasts(flat(written))
    assert problems == [] and forecasts[0].problems == [] and forecasts[0].gpus == 4
