"""synth-diff: file-level comparison of two synth trees and its PR-comment rendering."""

from __future__ import annotations

from pathlib import Path

import pytest

from disaggctl.__main__ import main
from disaggctl.synth.diff import COMMENT_MARKER, diff_roots, diff_stack, render_markdown, render_text


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


BASE = {
    "tree.txt": "stack\n",
    "resources/kubernetes_apps_v1_Deployment/llama-frontend.json": '{"replicas": 2}\n',
    "resources/kubernetes_core_v1_Service/old.json": "{}\n",
    "manifests/llm/Deployment-llama-frontend.yaml": "spec:\n  replicas: 2\n",
}
HEAD = {
    "tree.txt": "stack\n",
    "resources/kubernetes_apps_v1_Deployment/llama-frontend.json": '{"replicas": 3}\n',
    "resources/kubernetes_core_v1_ConfigMap/new.json": "{}\n",
    "manifests/llm/Deployment-llama-frontend.yaml": "spec:\n  replicas: 3\n",
}


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    return write(tmp_path / "base" / "dev", BASE).parent, write(tmp_path / "head" / "dev", HEAD).parent


def test_files_are_classified_as_added_removed_changed(trees) -> None:
    base, head = trees
    diff = diff_stack("dev", base / "dev", head / "dev")
    assert diff.added == ["resources/kubernetes_core_v1_ConfigMap/new.json"]
    assert diff.removed == ["resources/kubernetes_core_v1_Service/old.json"]
    assert diff.changed == [
        "manifests/llm/Deployment-llama-frontend.yaml",
        "resources/kubernetes_apps_v1_Deployment/llama-frontend.json",
    ]
    assert "-  replicas: 2\n+  replicas: 3\n" in diff.patches["manifests/llm/Deployment-llama-frontend.yaml"]


def test_identical_trees_have_no_difference(tmp_path: Path) -> None:
    write(tmp_path / "a" / "dev", BASE)
    write(tmp_path / "b" / "dev", BASE)
    [diff] = diff_roots(tmp_path / "a", tmp_path / "b")
    assert diff.is_empty
    assert render_markdown([diff]) == f"{COMMENT_MARKER}\n## Synth preview\n\nNo resource or manifest changes in `dev`.\n"


def test_a_stack_only_on_head_is_new(trees) -> None:
    base, head = trees
    write(head / "prod", {"tree.txt": "prod\n"})
    diffs = diff_roots(base, head)
    assert [d.stack for d in diffs] == ["dev", "prod"]
    assert diffs[1].base_missing and diffs[1].added == ["tree.txt"]
    assert "| `prod` (new stack) | 1 | 0 | 0 | 0 |" in render_markdown(diffs)


def test_markdown_has_the_marker_table_and_diffs(trees) -> None:
    text = render_markdown(diff_roots(*trees))
    assert text.startswith(COMMENT_MARKER + "\n")
    assert "| `dev` | 1 | 1 | 2 | 0 |" in text
    assert "- changed: `resources/kubernetes_apps_v1_Deployment/llama-frontend.json` (kubernetes_apps_v1_Deployment)" in text
    assert '```diff\n--- a/dev/resources/kubernetes_apps_v1_Deployment/llama-frontend.json' in text


def test_markdown_is_cut_to_the_limit_and_says_so(trees) -> None:
    text = render_markdown(diff_roots(*trees), limit=600)
    assert len(text) < 900
    assert "diff(s) left out to fit a GitHub comment" in text


def test_text_lists_each_file(trees) -> None:
    text = render_text(diff_roots(*trees))
    assert text.splitlines()[:5] == [
        "stack dev: 1 added, 1 removed, 2 changed",
        "  - resources/kubernetes_core_v1_Service/old.json",  # most important first: removals,
        "  ~ manifests/llm/Deployment-llama-frontend.yaml",  # then changes (manifests before records),
        "  ~ resources/kubernetes_apps_v1_Deployment/llama-frontend.json",
        "  + resources/kubernetes_core_v1_ConfigMap/new.json",  # then additions
    ]


def test_cli_exit_code_and_output_file(trees, tmp_path: Path, capsys) -> None:
    base, head = trees
    out = tmp_path / "comment.md"
    assert main(["synth-diff", str(base), str(head), "--format", "markdown", "--out", str(out)]) == 0
    assert out.read_text().startswith(COMMENT_MARKER)
    assert main(["synth-diff", str(base), str(head), "--exit-code"]) == 1
    assert main(["synth-diff", str(base / "dev"), str(base / "dev"), "--stack", "dev", "--exit-code"]) == 0
    assert main(["synth-diff", str(tmp_path / "nope"), str(tmp_path / "nada")]) == 2
    assert "run synth first" in capsys.readouterr().out


def forecast(gpus: int, usd: float, tps: float | None, status: str = "meets SLO p90", worst: float | None = None) -> dict:
    return {"gpus": gpus, "usd_per_hour": usd, "max_usd_per_hour": usd if worst is None else worst,
            "tokens_per_s_per_gpu": tps, "status": status}


def test_comment_shows_gpu_cost_and_throughput_change_per_deployment(tmp_path: Path) -> None:
    import json

    base_out = {"deploymentForecasts": {"llama-8b": forecast(4, 21.96, 1241.19), "old": forecast(8, 21.96, None)}}
    head_out = {"deploymentForecasts": {"llama-8b": forecast(20, 65.88, 1089.17, worst=87.84),
                                        "llama-70b-pd": forecast(32, 253.2, 640.72)}}
    write(tmp_path / "base" / "dev", {**BASE, "outputs.json": json.dumps(base_out)})
    write(tmp_path / "head" / "dev", {**HEAD, "outputs.json": json.dumps(head_out)})
    comment = render_markdown(diff_roots(tmp_path / "base", tmp_path / "head"))
    assert ("| `llama-8b` | 20 | - | 65.88 | 87.84 | - | 1,089.2 | adds 16 GPUs, expected +$43.92/hour, "
            "worst case +$65.88/hour, −12.2% tokens/s/GPU |") in comment
    assert ("| `llama-70b-pd` | 32 | - | 253.20 | 253.20 | - | 640.7 | new: adds 32 GPUs, expected +$253.20/hour, "
            "worst case +$253.20/hour |") in comment
    assert "| `old` | 8 | - | 21.96 | 21.96 | - | - | removed: frees 8 GPUs, expected −$21.96/hour, worst case −$21.96/hour |" in comment
    assert comment.index("### GPUs, cost and predicted throughput") < comment.index("### `dev`")


def test_headline_sums_the_stack_and_text_format_lists_changes(tmp_path: Path) -> None:
    import json

    base_out = {"deploymentForecasts": {"llama-8b": forecast(4, 21.96, 1241.19)}}
    head_out = {"deploymentForecasts": {"llama-8b": forecast(20, 65.88, 1089.17), "new": forecast(8, 21.96, 900.0)}}
    write(tmp_path / "base" / "dev", {**BASE, "outputs.json": json.dumps(base_out)})
    write(tmp_path / "head" / "dev", {**HEAD, "outputs.json": json.dumps(head_out)})
    diffs = diff_roots(tmp_path / "base", tmp_path / "head")
    assert ("**`dev`**: This PR adds 24 GPUs, expected +$65.88/hour, worst case +$65.88/hour (`llama-8b` adds 16 GPUs"
            in render_markdown(diffs))
    assert "  llama-8b: adds 16 GPUs, expected +$43.92/hour, worst case +$43.92/hour, −12.2% tokens/s/GPU\n" in render_text(diffs)



def test_resource_option_changes_are_listed_per_resource(tmp_path: Path) -> None:
    """A changed customTimeouts, a retainOnDelete added and a protect removed are each one row
    (markdown) / one line (text), with base and head values; unchanged options are not listed."""
    job = "resources/kubernetes_batch_v1_Job/model-job.json"
    claim = "resources/kubernetes_core_v1_PersistentVolumeClaim/claim.json"
    base = write(tmp_path / "base" / "dev", {
        job: '{"inputs": {}, "options": {"customTimeouts": {"create": "10m"}, "protect": true}}\n',
        claim: '{"inputs": {}}\n',
    })
    head = write(tmp_path / "head" / "dev", {
        job: '{"inputs": {}, "options": {"customTimeouts": {"create": "45m"}, "protect": true}}\n',
        claim: '{"inputs": {}, "options": {"retainOnDelete": true}}\n',
    })
    diff = diff_stack("dev", base, head)
    rows = [(c.resource, c.option, c.old, c.new) for c in diff.option_changes]
    assert rows == [
        ("kubernetes_batch_v1_Job/model-job", "customTimeouts", {"create": "10m"}, {"create": "45m"}),
        ("kubernetes_core_v1_PersistentVolumeClaim/claim", "retainOnDelete", None, True),
    ]
    markdown = render_markdown([diff])
    assert "### Resource options" in markdown
    assert '| `dev` | `kubernetes_batch_v1_Job/model-job` | `customTimeouts` | `{"create": "10m"}` | `{"create": "45m"}` |' in markdown
    assert "| `dev` | `kubernetes_core_v1_PersistentVolumeClaim/claim` | `retainOnDelete` | `unset` | `true` |" in markdown
    assert "option kubernetes_core_v1_PersistentVolumeClaim/claim retainOnDelete: unset -> true" in render_text([diff])
