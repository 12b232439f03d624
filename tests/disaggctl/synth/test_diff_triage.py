"""A quiet PR diff: dependency-only changes are one line, the most important changes come first,
and the comment fits GitHub's limit."""

from __future__ import annotations

import json
from pathlib import Path

from disaggctl.synth.diff import (
    GITHUB_COMMENT_LIMIT,
    TRUNCATED_NOTE,
    diff_roots,
    render_markdown,
    render_text,
)
from disaggctl.synth.triage import dependency_change, fit

from .test_diff import write

DEPS = ["llm-prod-platform-gpu-operator-release", "llm-prod-store-claim"]
KEDA = "llm-prod-platform-keda-release"


def record(name: str, depends_on: list[str], inputs: dict | None = None) -> str:
    return json.dumps({"custom": True, "dependsOn": depends_on, "inputs": inputs or {}, "name": name,
                       "parent": "llama-70b", "provider": "", "type": "kubernetes:apps/v1:Deployment"}, indent=2)


def keda_trees(tmp_path: Path, resources: int = 34) -> tuple[Path, Path]:
    """prod where every serving resource gains a dependency on the KEDA release, and one Deployment
    really changes (replicas 2 → 3): the 9-line change of the issue."""
    base: dict[str, str] = {"tree.txt": "prod\n"}
    head: dict[str, str] = {"tree.txt": "prod\n"}
    for i in range(resources):
        rel = f"resources/kubernetes_core_v1_ConfigMap/llama-70b-{i}.json"
        base[rel] = record(f"llama-70b-{i}", DEPS)
        head[rel] = record(f"llama-70b-{i}", [*DEPS, KEDA])
    rel = "resources/kubernetes_apps_v1_Deployment/llama-70b-router.json"
    base[rel] = record("llama-70b-router", DEPS, {"spec": {"replicas": 2}})
    head[rel] = record("llama-70b-router", [*DEPS, KEDA], {"spec": {"replicas": 3}})
    base["manifests/llm-prod/Deployment-llama-70b-router.yaml"] = "spec:\n  replicas: 2\n"
    head["manifests/llm-prod/Deployment-llama-70b-router.yaml"] = "spec:\n  replicas: 3\n"
    base["resources/aws_fsx_lustreFileSystem_LustreFileSystem/store.json"] = record("store", [])
    return write(tmp_path / "base" / "prod", base).parent, write(tmp_path / "head" / "prod", head).parent


def test_only_depends_on_is_dependency_only() -> None:
    assert dependency_change(record("a", DEPS), record("a", [*DEPS, KEDA])) == ([KEDA], [])
    assert dependency_change(record("a", DEPS), record("a", DEPS[:1])) == ([], [DEPS[1]])
    assert dependency_change(record("a", DEPS), record("a", [*DEPS, KEDA], {"spec": {}})) is None
    assert dependency_change("not json", "{}") is None


def test_the_comment_collapses_dependency_noise_into_one_line(tmp_path: Path) -> None:
    text = render_markdown(diff_roots(*keda_trees(tmp_path)))
    assert "| `prod` | 0 | 1 | 2 | 34 |" in text
    assert (
        f"- 34 resource(s) changed only in dependsOn (+{KEDA} on 34): apply order only, no input changes, "
        "nothing replaced"
    ) in text
    assert "llama-70b-7.json" not in text  # no dependency-only file is listed or diffed
    assert text.count("<details>") == 3  # the FSx removal, the manifest, the router's record


def test_the_most_important_change_comes_first(tmp_path: Path) -> None:
    text = render_markdown(diff_roots(*keda_trees(tmp_path)))
    listed = [line for line in text.splitlines() if line.startswith(("- removed:", "- changed:", "- added:"))]
    assert listed == [
        "- removed: `resources/aws_fsx_lustreFileSystem_LustreFileSystem/store.json` (aws_fsx_lustreFileSystem_LustreFileSystem)",
        "- changed: `manifests/llm-prod/Deployment-llama-70b-router.yaml` (manifest Deployment)",
        "- changed: `resources/kubernetes_apps_v1_Deployment/llama-70b-router.json` (kubernetes_apps_v1_Deployment)",
    ]


def test_the_text_format_is_as_quiet(tmp_path: Path) -> None:
    text = render_text(diff_roots(*keda_trees(tmp_path)))
    assert text.splitlines()[:5] == [
        "stack prod: 0 added, 1 removed, 2 changed, 34 only in dependsOn",
        f"  = 34 resource(s) changed only in dependsOn (+{KEDA} on 34): apply order only, no input changes, "
        "nothing replaced",
        "  - resources/aws_fsx_lustreFileSystem_LustreFileSystem/store.json",
        "  ~ manifests/llm-prod/Deployment-llama-70b-router.yaml",
        "  ~ resources/kubernetes_apps_v1_Deployment/llama-70b-router.json",
    ]
    assert "llama-70b-7.json" not in text


def test_a_huge_change_fits_a_github_comment_and_says_it_was_cut(tmp_path: Path) -> None:
    base: dict[str, str] = {}
    head: dict[str, str] = {}
    for i in range(3000):  # more file names than a comment holds, each with a real change
        rel = f"resources/kubernetes_core_v1_ConfigMap/a-very-long-configmap-name-number-{i:05d}.json"
        base[rel] = record(f"c{i}", [], {"data": {"x": "a" * 200}})
        head[rel] = record(f"c{i}", [], {"data": {"x": "b" * 200}})
    write(tmp_path / "base" / "prod", base)
    write(tmp_path / "head" / "prod", head)
    text = render_markdown(diff_roots(tmp_path / "base", tmp_path / "head"))
    assert len(text) <= GITHUB_COMMENT_LIMIT
    assert "- … and 2800 more (most important listed first)" in text
    assert "diff(s) left out to fit a GitHub comment" in text


def test_fit_cuts_at_a_line_and_closes_an_open_block() -> None:
    text = "header\n<details>\n\n```diff\n" + "+line\n" * 100
    cut = fit(text, 200, TRUNCATED_NOTE[:40])
    assert len(cut) <= 200
    assert cut.count("```") % 2 == 0
    assert cut.rstrip().endswith(TRUNCATED_NOTE[:40])
    assert fit("short\n", 200, "note") == "short\n"
