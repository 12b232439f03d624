"""No secret value or secret file content appears anywhere in the synth output tree."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

PROJECT_DIR = Path(__file__).resolve().parents[3]
TOKEN = "kubeconfig-bearer-7f3a9c0d2e514b6a8c1d"
CERT = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tVEVTVC1DQS1EQVRB"


def project_with(tmp_path: Path, cluster: dict) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", project)
    shutil.copy(PROJECT_DIR / "__main__.py", project)
    stack = yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text())
    stack["config"]["disagg:cluster"] = cluster
    (project / "Pulumi.onprem.yaml").write_text(yaml.safe_dump(stack))
    return project


def onprem(kubeconfig: str) -> dict:
    return {
        "name": "onprem", "provider": "existing",
        "existing": {
            "kubeconfig": kubeconfig, "context": "onprem-admin", "fabric": "infiniband", "storageClass": "weka-rwx",
            "gpuPools": [{"name": "a100", "gpusPerNode": 8, "gpuMemoryGib": 40, "gpuArch": "ampere",
                          "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}}],
        },
    }  # fmt: skip


KUBECONFIG = f"""apiVersion: v1
kind: Config
clusters:
- name: onprem
  cluster: {{server: 'https://10.0.0.1:6443', certificate-authority-data: {CERT}}}
contexts:
- name: onprem-admin
  context: {{cluster: onprem, user: admin}}
current-context: onprem-admin
users:
- name: admin
  user: {{token: {TOKEN}}}
"""


def synth(project: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "disaggctl", "synth", "--stack", "onprem", "--out", str(out), "--project", str(project)],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_a_kubeconfig_file_is_read_but_never_written_out(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig.yaml"
    kubeconfig.write_text(KUBECONFIG)
    out = tmp_path / "out"
    result = synth(project_with(tmp_path, onprem(str(kubeconfig))), out)
    assert result.returncode == 0, result.stderr
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 20
    leaks = [
        str(p.relative_to(out)) for p in files
        if any(s in p.read_text() for s in (TOKEN, CERT, "current-context"))
    ]  # fmt: skip
    assert leaks == []
    assert TOKEN not in result.stdout + result.stderr
    provider = (out / "resources/pulumi_providers_kubernetes/onprem-k8s.json").read_text()
    assert '"kubeconfig": "[secret]"' in provider


def test_a_plaintext_kubeconfig_fails_synth_without_echoing_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = synth(project_with(tmp_path, onprem(KUBECONFIG)), out)
    assert result.returncode == 2
    assert "pulumi config set --secret --path 'cluster.existing.kubeconfig'" in result.stderr
    assert TOKEN not in result.stderr + result.stdout
    assert not out.exists()


def test_config_secrets_become_secrets_that_synth_masks(tmp_path: Path) -> None:
    """``pulumi config set --secret hfToken …`` is all a gated model needs: the program creates
    the hf-token Secret, and the synth output holds no value of it."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", project)
    shutil.copy(PROJECT_DIR / "__main__.py", project)
    stack = yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text())
    ciphertext = "v1:Q0lQSEVSVEVYVC1OT1QtQS1UT0tFTg==:c2VjcmV0LWhmLXRva2VuLWNpcGhlcnRleHQ="
    stack["config"]["disagg:hfToken"] = {"secure": ciphertext}
    (project / "Pulumi.onprem.yaml").write_text(yaml.safe_dump(stack))
    out = tmp_path / "out"
    result = synth(project, out)
    assert result.returncode == 0, result.stderr
    secret = out / "resources/kubernetes_core_v1_Secret/llm-dev-secrets-hf-token.json"
    recorded = yaml.safe_load(secret.read_text())
    assert recorded["inputs"]["metadata"] == {
        "name": "hf-token", "namespace": "llm-dev",
        "labels": {"app.kubernetes.io/managed-by": "pulumi", "app.kubernetes.io/part-of": "disagg-inference"},
    }  # fmt: skip
    assert recorded["inputs"]["stringData"] == "[secret]"
    assert not any(ciphertext in p.read_text() for p in out.rglob("*") if p.is_file())
