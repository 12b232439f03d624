"""The consumer example runs from an installed wheel of this project, outside its __main__.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PROJECT_DIR = Path(__file__).resolve().parents[2]
EXAMPLE_DIR = PROJECT_DIR / "examples" / "consumer"

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "onprem", "cluster": {"server": "https://10.0.0.1:6443"}}],
    "contexts": [{"name": "onprem", "context": {"cluster": "onprem", "user": "ci"}}],
    "current-context": "onprem",
    "users": [{"name": "ci", "user": {"token": "not-a-real-token"}}],
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This project installed as a package (built wheel) into a directory of its own."""
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(PROJECT_DIR)],
        check=True,
    )
    return site


@pytest.fixture(scope="module")
def consumer(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    project = tmp_path_factory.mktemp("consumer") / "llm-team"
    shutil.copytree(EXAMPLE_DIR, project)
    kubeconfig = project / "kubeconfig.yaml"
    kubeconfig.write_text(yaml.safe_dump(KUBECONFIG))
    stack = yaml.safe_load((project / "Pulumi.example.yaml").read_text())
    stack["config"]["llm-team:kubeconfig"] = str(kubeconfig)
    (project / "Pulumi.ci.yaml").write_text(yaml.safe_dump(stack))
    env = {**os.environ, "PYTHONPATH": str(installed)}
    return project, env


def test_components_come_from_the_installed_package(consumer, installed: Path) -> None:
    project, env = consumer
    where = subprocess.run(
        [sys.executable, "-c", "import components, engines, disaggctl; print(components.__file__, engines.__file__)"],
        cwd=project, env=env, capture_output=True, text=True, check=True,
    ).stdout.split()
    assert all(Path(path).is_relative_to(installed) for path in where), where


def test_consumer_stack_synthesizes(consumer, tmp_path: Path) -> None:
    project, env = consumer
    out = tmp_path / "synth"
    run = subprocess.run(
        [sys.executable, "-m", "disaggctl", "synth", "--stack", "ci", "--out", str(out)],
        cwd=project, env=env, capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    tree = (out / "tree.txt").read_text()
    for component in ("ExistingCluster", "PlatformOperators", "ModelStore", "EngineBuild", "DisaggregatedDeployment"):
        assert component in tree
    kinds = {p.name.split("-", 1)[0] for p in (out / "manifests").rglob("*.yaml")}
    assert {"job", "leaderworkerset", "nicclusterpolicy", "deployment", "service"} <= {k.lower() for k in kinds}
    outputs = json.loads((out / "outputs.json").read_text())
    assert set(outputs) == {"frontendEndpoint", "engineLocation"}
    assert "/engines/mixtral-8x7b-instruct/" in json.dumps(outputs["engineLocation"])
