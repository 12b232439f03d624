"""The PR comment's expected and worst-case $/hour for capacity changes that used to read "no change".

Each side is the shipped stack file turned into what synth writes to outputs.json (the
deployments' forecasts and the GPU pools' cost rows, from the one cost model), then compared.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from disaggctl.plan.forecast import stack_forecasts, stack_pool_costs
from disaggctl.plan.pricing import ON_DEMAND
from disaggctl.synth.diff import diff_roots, render_markdown, render_text
from disaggctl.synth.program import FORECASTS_KEY, POOL_COSTS_KEY

PROJECT_DIR = Path(__file__).resolve().parents[3]


def stack(name: str) -> dict:
    return yaml.safe_load((PROJECT_DIR / f"Pulumi.{name}.yaml").read_text())["config"]


def outputs(config: dict) -> dict:
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    forecasts, problems = stack_forecasts(raw)
    assert problems == []
    return {FORECASTS_KEY: {f.deployment: f.as_json() for f in forecasts},
            POOL_COSTS_KEY: {r.pool: r.as_json() for r in stack_pool_costs(raw, forecasts)}}


def comment(tmp_path: Path, name: str, base: dict, head: dict) -> tuple[str, str]:
    for side, config in (("base", base), ("head", head)):
        directory = tmp_path / side / name
        directory.mkdir(parents=True)
        (directory / "outputs.json").write_text(json.dumps(outputs(config)))
    diffs = diff_roots(tmp_path / "base", tmp_path / "head")
    return render_markdown(diffs), render_text(diffs)


def pool(config: dict, name: str) -> dict:
    return next(p for p in config["disagg:cluster"]["eks"]["gpuNodePools"] if p["name"] == name)


P4D = ON_DEMAND[("us-west-2", "p4d.24xlarge")].usd_per_hour
P5 = ON_DEMAND[("us-east-2", "p5.48xlarge")].usd_per_hour
P5EN = ON_DEMAND[("us-east-2", "p5en.48xlarge")].usd_per_hour


@pytest.mark.parametrize(("name", "change", "worst"), [
    ("dev", lambda c: pool(c, "a100").update(maxSize=6), 4 * P4D),
    ("prod", lambda c: pool(c, "h200").update(maxSize=10), 4 * P5EN),
])
def test_a_pool_ceiling_change_shows_its_worst_case(tmp_path: Path, name, change, worst: float) -> None:
    base = stack(name)
    head = copy.deepcopy(base)
    change(head)
    markdown, text = comment(tmp_path, name, base, head)
    assert f"This PR worst case +${worst:,.2f}/hour" in markdown
    assert f"max nodes {pool(base, 'a100' if name == 'dev' else 'h200')['maxSize']} → {pool(head, 'a100' if name == 'dev' else 'h200')['maxSize']}" in markdown
    assert f"worst case +${worst:,.2f}/hour" in text
    assert "no change in GPUs" not in markdown


def test_lowering_decode_max_groups_shows_the_deployments_worst_case(tmp_path: Path) -> None:
    base = stack("prod")
    head = copy.deepcopy(base)
    decode = head["disagg:deployments"][0]["decode"]
    assert decode["maxGroups"] == 4 and decode["gpusPerPod"] == 8
    decode["maxGroups"] = 3
    markdown, _ = comment(tmp_path, "prod", base, head)
    # one tp-8 group is one p5.48xlarge node: the deployment's worst case drops by one node
    assert f"`llama-70b` expected ±$0.00/hour, worst case −${P5:,.2f}/hour" in markdown


def test_a_price_change_moves_both_figures(tmp_path: Path) -> None:
    base = stack("dev")
    head = copy.deepcopy(base)
    head["disagg:pricing"] = {"onDemand": {"p4d.24xlarge": 30.0}}
    markdown, _ = comment(tmp_path, "dev", base, head)
    assert f"$/node-hour {P4D} → 30.0" in markdown
    assert f"expected +${30.0 - P4D:,.2f}/hour, worst case +${2 * (30.0 - P4D):,.2f}/hour" in markdown


def test_an_image_only_change_says_cost_is_unchanged(tmp_path: Path) -> None:
    base = stack("dev")
    for side in ("base", "head"):
        directory = tmp_path / side / "dev"
        directory.mkdir(parents=True)
        (directory / "outputs.json").write_text(json.dumps(outputs(base)))
        (directory / "manifests.yaml").write_text(f"image: trtllm:{'1.2.0' if side == 'base' else '1.2.1'}\n")
    markdown = render_markdown(diff_roots(tmp_path / "base", tmp_path / "head"))
    assert "**`dev`**: cost unchanged (expected ±$0.00/hour, worst case ±$0.00/hour)" in markdown
    assert "| a100 | p4d.24xlarge | on-demand | 21.96 | 4 | 1 | 21.96 | 2 | 43.92 | no change |" in markdown
