"""verify and fabric-check read the stack: API kind, model, key header and fabric from its
configuration, endpoints from its outputs; verify runs against the real llmapi chain (stand-in,
router, frontend with an API key) on 127.0.0.1."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from components.config.cluster import POOL_LABEL
from disaggctl.verify.cli import main
from disaggctl.verify.stack import DeploymentTarget, deployment_targets, read_stack
from tests.runtime.procs import Cluster

PROJECT_DIR = Path(__file__).resolve().parents[3]
DATA = Path(__file__).parent / "data"
KEY = "k3y-for-verify-tests"


def test_prod_targets_take_their_api_from_the_runtime() -> None:
    assert deployment_targets(read_stack(PROJECT_DIR, "prod")) == [
        DeploymentTarget("llama-70b", "openai", "llama-70b", None),
        DeploymentTarget("llama-70b-pd", "openai", "llama-70b-pd", None),
        DeploymentTarget("llama-8b-engine", "kserve", "ensemble", None),
    ]


def test_an_unknown_deployment_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"--deployment 'llama' is not a deployment of the stack \(it has llama-8b\)"):
        deployment_targets(read_stack(PROJECT_DIR, "dev"), "llama")


def public_project(tmp_path: Path, header: str = "x-api-key") -> Path:
    """dev's stack with its frontend internet-facing behind an API key (no SLO: nothing to gate)."""
    (tmp_path / "Pulumi.yaml").write_text((PROJECT_DIR / "Pulumi.yaml").read_text())
    doc = yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text())
    deployment = doc["config"]["disagg:deployments"][0]
    deployment["frontend"]["internalLoadBalancer"] = False
    deployment.pop("workload")
    doc["config"]["disagg:platform"] = {"security": {"publicFrontends": {"llama-8b": {
        "sourceRanges": ["52.94.76.0/22"], "auth": {"header": header, "key": {"secretName": "llama-api-key"}}}}}}
    (tmp_path / "Pulumi.pub.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path


def fake_pulumi(tmp_path: Path, outputs: dict, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `pulumi` on PATH that answers `stack output --json --stack pub` (and records its argv)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    script.write_text(
        "#!/bin/sh\n"
        f"echo \"$@\" > {tmp_path / 'pulumi-args'}\n"
        f"cat <<'EOF'\n{json.dumps(outputs)}\nEOF\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return tmp_path / "pulumi-args"


@pytest.fixture(scope="module")
def chain() -> Iterator[str]:
    """stand-in → router → frontend serving 'llama-8b', the key checked in x-api-key."""
    cluster = Cluster()
    try:
        standin = cluster.standin(model="llama-8b")
        router = cluster.router("--workers", f"static://127.0.0.1:{standin.port}")
        frontend = cluster.frontend(router.url, model="llama-8b",
                                    extra=("--api-key-env", "FRONTEND_API_KEY", "--api-key-header", "x-api-key"),
                                    env={"FRONTEND_API_KEY": KEY})
        yield f"127.0.0.1:{frontend.port}"
    finally:
        cluster.close()


def verify_args(project: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["verify", "--stack", "pub", "--project", str(project), "--requests", "4", "--concurrency", "2",
            "--time-limit", "30", "--max-tokens", "8", "--report", str(tmp_path / "report.json"), *extra]


def test_verify_reads_everything_from_the_stack(chain, tmp_path, monkeypatch, capsys) -> None:
    project = public_project(tmp_path)
    argv_file = fake_pulumi(tmp_path, {"frontendEndpoints": {"llama-8b": {"http": chain}}}, monkeypatch)
    key_file = tmp_path / "key.txt"
    key_file.write_text(KEY + "\n")
    assert main(verify_args(project, tmp_path, "--api-key-file", str(key_file))) == 0
    out = capsys.readouterr().out
    assert "=== deployment llama-8b (OpenAI API, model llama-8b)" in out
    assert out.rstrip().endswith("verify: PASS")
    assert argv_file.read_text().split() == ["stack", "output", "--json", "--stack", "pub"]
    assert json.loads((tmp_path / "report.json").read_text())["summary"]["requests_ok"] == 4


def test_a_public_frontend_without_the_key_file_is_a_usage_error(chain, tmp_path, monkeypatch, capsys) -> None:
    project = public_project(tmp_path)
    fake_pulumi(tmp_path, {"frontendEndpoints": {"llama-8b": {"http": chain}}}, monkeypatch)
    assert main(verify_args(project, tmp_path)) == 2
    assert capsys.readouterr().err == (
        "verify: deployment 'llama-8b' is public and checks x-api-key: pass --api-key-file FILE\n"
    )


def test_a_wrong_key_fails_the_health_check(chain, tmp_path, monkeypatch, capsys) -> None:
    project = public_project(tmp_path)
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"frontendEndpoints": {"llama-8b": {"http": chain}}}))
    key_file = tmp_path / "key.txt"
    key_file.write_text("not-the-key\n")
    code = main(verify_args(project, tmp_path, "--api-key-file", str(key_file), "--stack-outputs", str(outputs)))
    assert code == 1
    assert capsys.readouterr().err.startswith("verify: FAIL: model listed at 127.0.0.1:")


def test_an_invalid_stack_is_one_line_per_problem(tmp_path, capsys) -> None:
    project = public_project(tmp_path)
    doc = yaml.safe_load((project / "Pulumi.pub.yaml").read_text())
    doc["config"]["disagg:deployments"][0]["workers"]["groups"] = "two"
    (project / "Pulumi.pub.yaml").write_text(yaml.safe_dump(doc))
    assert main(verify_args(project, tmp_path)) == 2
    assert capsys.readouterr().err == (
        "verify: disagg:deployments[0].workers.groups: Input should be a valid integer, unable to parse string "
        'as an integer (got "two"): fix the value\n'
    )


def test_without_pulumi_the_outputs_file_is_asked_for(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    code = main(["verify", "--stack", "dev", "--project", str(PROJECT_DIR)])
    assert code == 2
    assert capsys.readouterr().err == (
        "verify: no pulumi CLI on PATH to read stack 'dev''s outputs: install it, or pass --stack-outputs FILE "
        "(pulumi stack output --json > FILE)\n"
    )


def test_fabric_render_takes_each_fabric_pool_from_the_stack(capsys) -> None:
    code = main(["fabric-check", "render", "--stack", "prod", "--project", str(PROJECT_DIR),
                 "--image", "registry.example.com/nccl-tests:2.13.9", "--no-ssh-secret"])
    assert code == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    jobs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Job"}
    assert sorted(jobs) == ["nccl-fabric-check-h100", "nccl-fabric-check-h200"]
    for pool, efa in (("h100", "32"), ("h200", "16")):
        pod = jobs[f"nccl-fabric-check-{pool}"]["spec"]["template"]["spec"]
        assert jobs[f"nccl-fabric-check-{pool}"]["metadata"]["namespace"] == "llm-prod"
        assert pod["nodeSelector"] == {POOL_LABEL: pool}
        limits = pod["containers"][0]["resources"]["limits"]
        assert (limits["nvidia.com/gpu"], limits["vpc.amazonaws.com/efa"]) == ("8", efa)
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]


@pytest.mark.parametrize(("log", "code"), [("nccl_efa_p4d_2node.log", 0), ("nccl_socket_fallback.log", 1)])
def test_fabric_parse_expects_the_stacks_fabric(log: str, code: int, capsys) -> None:
    assert main(["fabric-check", "parse", str(DATA / log), "--stack", "prod", "--project", str(PROJECT_DIR)]) == code
    if code == 0:
        assert capsys.readouterr().out.rstrip().endswith("fabric-check: PASS (efa, expected efa)")


def _images(out: str) -> set[str]:
    """Every container image of the rendered manifests (the etcd pod's aside)."""
    images = set()
    for doc in yaml.safe_load_all(out):
        pod = (doc or {}).get("spec", {})
        pod = pod.get("template", {}).get("spec", pod)
        images.update(c["image"] for c in pod.get("containers", []) if "etcd" not in c["image"])
    return images


PROD_CHECK_IMAGE = read_stack(PROJECT_DIR, "prod").images.fabric_check


@pytest.mark.parametrize(
    "command",
    [["render", "--no-ssh-secret"], ["kv-render", "--deployment", "llama-70b"]],
    ids=["render", "kv-render"],
)
def test_fabric_checks_take_the_image_from_the_stack_and_image_overrides_it(command: list[str], capsys) -> None:
    """Prod names its check image (images.fabricCheck): no flag needed; --image still wins."""
    assert PROD_CHECK_IMAGE and PROD_CHECK_IMAGE.endswith("/disagg/kv-fabric-check:1.2.1-efa")
    base = ["fabric-check", command[0], "--stack", "prod", "--project", str(PROJECT_DIR), *command[1:]]
    assert main(base) == 0
    assert _images(capsys.readouterr().out) == {PROD_CHECK_IMAGE}
    assert main([*base, "--image", "registry.example.com/other:1"]) == 0
    assert _images(capsys.readouterr().out) == {"registry.example.com/other:1"}


@pytest.mark.parametrize(
    "command", [["render", "--no-ssh-secret"], ["kv-render", "--deployment", "llama-8b"]], ids=["render", "kv-render"]
)
def test_a_stack_without_a_check_image_asks_for_the_key_or_image_in_one_line(command: list[str], capsys) -> None:
    """Dev runs stock NGC images and names no check image: one line, the usage exit code."""
    assert read_stack(PROJECT_DIR, "dev").images.fabric_check is None
    assert main(["fabric-check", command[0], "--stack", "dev", "--project", str(PROJECT_DIR), *command[1:]]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"fabric-check {command[0]}: stack 'dev' names no check image: set images.fabricCheck "
        "(images/kv-fabric-check/Dockerfile) in its Pulumi.<stack>.yaml, or pass --image\n"
    )


def test_without_a_stack_the_checks_still_need_an_image(capsys) -> None:
    assert main(["fabric-check", "render", "--fabric", "efa", "--no-ssh-secret"]) == 2
    assert capsys.readouterr().err == (
        "fabric-check render: without --stack, pass --image (nccl-tests with MPI=1, Open MPI, openssh)\n"
    )
    assert main(["fabric-check", "kv-render", "--fabric", "efa"]) == 2
    assert capsys.readouterr().err == (
        "fabric-check kv-render: without --stack, pass --image (images/kv-fabric-check/Dockerfile)\n"
    )
