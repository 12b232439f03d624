""".ci/pr-preview end to end: synth every stack on a base commit and on the working tree, diff them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_preview_shows_a_worker_group_change_in_dev_only(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for rel in git(PROJECT_DIR, "ls-files").splitlines():
        if rel.startswith("tests/"):
            continue
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_DIR / rel, repo / rel)
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=ci", "-c", "user.email=ci@example.com", "commit", "-qm", "base")
    dev = repo / "Pulumi.dev.yaml"
    # a third group needs a second a100 node: the pool (no autoscaler) must hold it, or the
    # capacity check refuses the stack
    text = dev.read_text().replace("        groups: 2\n", "        groups: 3\n", 1)
    dev.write_text(text.replace("          desiredSize: 1\n", "          desiredSize: 2\n", 1))

    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(repo)}
    run = subprocess.run([".ci/pr-preview", "HEAD", "build/preview"], cwd=repo, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]

    comment = (repo / "build/preview/comment.md").read_text()
    assert "| `dev` | 0 | 0 |" in comment
    assert "| `prod` | 0 | 0 | 0 |" in comment
    assert "-  replicas: 2\n+  replicas: 3\n" in comment
    assert "LeaderWorkerSet" in comment
