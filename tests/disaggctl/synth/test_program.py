"""The offline synth command: deterministic, reviewable, loud on failure."""

from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

PROJECT_DIR = Path(__file__).resolve().parents[3]


def synth(out: Path, stack: str = "dev", project: Path = PROJECT_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "disaggctl", "synth", "--stack", stack, "--out", str(out), "--project", str(project)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )


def tree_differences(a: Path, b: Path) -> list[str]:
    differences: list[str] = []

    def walk(cmp: filecmp.dircmp[str], prefix: str) -> None:
        differences.extend(f"{prefix}{n} (only one side)" for n in cmp.left_only + cmp.right_only)
        _, mismatch, errors = filecmp.cmpfiles(cmp.left, cmp.right, cmp.common_files, shallow=False)
        differences.extend(f"{prefix}{n}" for n in mismatch + errors)
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(filecmp.dircmp(a, b), "")
    return differences


def test_two_synths_of_dev_are_byte_identical(tmp_path: Path) -> None:
    first, second = synth(tmp_path / "a"), synth(tmp_path / "b")
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert tree_differences(tmp_path / "a", tmp_path / "b") == []
    assert first.stdout == second.stdout.replace(str(tmp_path / "b"), str(tmp_path / "a"))


def test_synth_writes_tree_resources_manifests_and_summary(tmp_path: Path) -> None:
    result = synth(tmp_path / "out")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    summary = (out / "summary.txt").read_text()
    total = int(summary.strip().splitlines()[-1].split()[-1])
    resource_files = list((out / "resources").rglob("*.json"))
    assert total == len(resource_files) > 0
    assert summary in result.stdout
    documents = [json.loads(p.read_text()) for p in resource_files]
    names = {d["name"] for d in documents}
    # every child's parent is itself a recorded resource (or the stack root)
    assert all(d["parent"] in names or d["parent"].startswith("disagg-") for d in documents)
    manifests = list((out / "manifests").rglob("*.yaml"))
    assert manifests, "no Kubernetes objects rendered"
    for path in manifests:
        manifest = yaml.safe_load(path.read_text())
        assert manifest["apiVersion"] and manifest["kind"], path
    tree_lines = (out / "tree.txt").read_text().splitlines()
    assert len(tree_lines) == total
    # counts stay integers although the mock monitor carries every number as a double
    lws = yaml.safe_load((out / "manifests/llm-dev/leaderworkerset-llama-8b-workers-leaderworkerset.yaml").read_text())
    assert (lws["spec"]["replicas"], lws["spec"]["leaderWorkerTemplate"]["size"]) == (2, 1)
    assert type(lws["spec"]["replicas"]) is int and "replicas: 2\n" in yaml.safe_dump(lws)
    # multi-line strings are literal blocks (reviewable line by line) holding exactly the inputs
    name = "llama-8b-workers-llm-api"
    text = (out / f"manifests/llm-dev/configmap-{name}.yaml").read_text()
    assert "  llm_api.yaml: |\n    # trtllm-serve --extra_llm_api_options, role aggregated (generated)\n" in text
    inputs = json.loads((out / f"resources/kubernetes_core_v1_ConfigMap/{name}.json").read_text())["inputs"]
    assert yaml.safe_load(text)["data"] == inputs["data"]


def project_with_dev_variant(tmp_path: Path, stack_name: str, change: Callable[[dict], None]) -> Path:
    """A copy of the project with ``Pulumi.<stack_name>.yaml``: the dev config after ``change``."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", project)
    shutil.copy(PROJECT_DIR / "__main__.py", project)
    stack = yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text())
    change(stack["config"])
    (project / f"Pulumi.{stack_name}.yaml").write_text(yaml.safe_dump(stack))
    return project


def test_synth_reports_config_problems_and_writes_nothing(tmp_path: Path) -> None:
    def break_it(config: dict) -> None:
        config["disagg:deployments"][0]["workers"]["model"] = "no-such-model"
        config["disagg:bogus"] = 1

    project = project_with_dev_variant(tmp_path, "broken", break_it)
    result = synth(tmp_path / "out", stack="broken", project=project)
    assert result.returncode == 2
    # the model left without a deployment is a problem of its own
    assert "invalid stack configuration (3 problems)" in result.stderr
    assert "disagg:models.llama-8b: no llmapi deployment serves this model" in result.stderr
    assert "disagg:bogus: unknown key 'bogus'" in result.stderr
    assert "disagg:deployments[0].workers.model: no model 'no-such-model' in disagg:models" in result.stderr
    assert not (tmp_path / "out").exists()


def test_synth_fails_loudly_when_the_program_raises(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", project)
    (project / "Pulumi.dev.yaml").write_text("config: {}\n")
    (project / "__main__.py").write_text("raise RuntimeError('boom in the program')\n")
    result = synth(tmp_path / "out", project=project)
    assert result.returncode == 1
    assert "failed: the program raised RuntimeError: boom in the program" in result.stderr


def test_synth_names_the_missing_stack_file(tmp_path: Path) -> None:
    result = synth(tmp_path / "out", stack="nope")
    assert result.returncode == 2
    assert "no stack file Pulumi.nope.yaml" in result.stderr


def test_synth_of_an_existing_cluster_with_a_secret_kubeconfig(tmp_path: Path) -> None:
    """Secrets cannot be decrypted offline: the kubeconfig passes through as a placeholder."""
    onprem = {
        "name": "onprem",
        "provider": "existing",
        "existing": {
            "kubeconfig": {"secure": "v1:c2VjcmV0:ZW5jcnlwdGVk"},
            "context": "onprem-admin",
            "fabric": "infiniband",
            "storageClass": "weka-rwx",
            "gpuPools": [
                {"name": "a100", "gpusPerNode": 8, "gpuMemoryGib": 40, "gpuArch": "ampere",
                 "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}},
            ],
        },
    }  # fmt: skip
    project = project_with_dev_variant(tmp_path, "onprem", lambda config: config.update({"disagg:cluster": onprem}))
    result = synth(tmp_path / "out", stack="onprem", project=project)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert json.loads((out / "outputs.json").read_text())["kubeconfig"] == "[secret]"
    provider = json.loads((out / "resources/pulumi_providers_kubernetes/onprem-k8s.json").read_text())
    assert provider["inputs"]["context"] == "onprem-admin"
    assert list((out / "manifests").rglob("nicclusterpolicy-*.yaml"))


def test_synth_prints_the_capacity_warnings_the_program_logs(tmp_path: Path) -> None:
    """__main__.py sends StackConfig.capacity_report() warnings to pulumi.log.warn; disaggctl synth
    prints them (the subprocess uses the real clock: before the H100 block starts there are three)."""
    from disaggctl.synth.program import run_program

    result = run_program(PROJECT_DIR, "prod")
    assert [w.split(":")[1] for w in result.warnings] == [
        "deployments[0].prefill.minGroups",
        "deployments[0].decode.minGroups",
        "cluster.eks.gpuNodePools[0].capacityBlock",
        "cluster.eks.gpuNodePools[1].availabilityZone",
        "cluster.eks.publicAccessCidrs[0]",  # the deployer-CIDR placeholder: pulumi up refuses it
    ]
    run = synth(tmp_path / "prod", "prod")
    assert run.returncode == 0, run.stderr
    printed = [line for line in run.stderr.splitlines() if line.startswith("warning: ")]
    assert printed and all(line.removeprefix("warning: ") in result.warnings for line in printed)
    assert [w.split(":")[1] for w in run_program(PROJECT_DIR, "dev").warnings] == ["cluster.eks.publicAccessCidrs[0]"]
