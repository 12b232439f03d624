"""The consumer example runs from a built and installed wheel of this project, outside its __main__.py.

The wheel is built with pip, installed into a directory of its own, and the example project
(examples/consumer, a copy) is synthesized with only that directory on PYTHONPATH. The
assertions read the synthesized Kubernetes manifests: the multi-node aggregated groups
(mpirun + trtllm-llmapi-launch over two pods), the prefill/decode groups moving KV cache with
UCX over InfiniBand, the router's discovery flags, and every LeaderWorkerSet against the
upstream CRD schema (tests/components/serving/conftest.py: reference directory and strict schema).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

PROJECT_DIR = Path(__file__).resolve().parents[2]
EXAMPLE_DIR = PROJECT_DIR / "examples" / "consumer"
NAMESPACE = "team-chat"
IMAGE = "registry.example.com/llm-team/tensorrt-llm-sshd:1.2.1"

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "onprem", "cluster": {"server": "https://10.0.0.1:6443"}}],
    "contexts": [{"name": "onprem", "context": {"cluster": "onprem", "user": "ci"}}],
    "current-context": "onprem",
    "users": [{"name": "ci", "user": {"token": "not-a-real-token"}}],
}


def _serving_conftest() -> Any:
    """tests/components/serving/conftest.py as a module (its CRD reference directory and strict schema)."""
    spec = importlib.util.spec_from_file_location(
        "serving_conftest", PROJECT_DIR / "tests" / "components" / "serving" / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This project built as a wheel and installed (without dependencies) into a directory of its own."""
    dist, site = tmp_path_factory.mktemp("dist"), tmp_path_factory.mktemp("site")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist), str(PROJECT_DIR)], check=True
    )
    (wheel,) = dist.glob("disagg_inference-*.whl")
    subprocess.run([*pip, "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)], check=True)
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


@pytest.fixture(scope="module")
def synth(consumer: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example synthesized offline (``python -m disaggctl synth``) from the installed package."""
    project, env = consumer
    out = tmp_path_factory.mktemp("synth")
    run = subprocess.run(
        [sys.executable, "-m", "disaggctl", "synth", "--stack", "ci", "--out", str(out)],
        cwd=project, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return out


def manifest(out: Path, kind: str, name: str) -> dict:
    return yaml.safe_load((out / "manifests" / NAMESPACE / f"{kind}-{name}.yaml").read_text())


def leader(lws: dict) -> dict:
    (container,) = lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"]
    return container


def env_of(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def exec_argv(container: dict) -> list[str]:
    """The command line the leader's bash script finally execs."""
    assert container["command"][:2] == ["/bin/bash", "-c"]
    (line,) = [line for line in container["command"][2].splitlines() if line.startswith("exec ")]
    return shlex.split(line)[1:]


def llm_api_options(out: Path, name: str) -> dict:
    return yaml.safe_load(manifest(out, "configmap", f"{name}-llm-api")["data"]["llm_api.yaml"])


def test_components_come_from_the_installed_package(consumer, installed: Path) -> None:
    project, env = consumer
    code = (
        "import components, engines, runtime; print(components.__file__, engines.__file__, runtime.__file__)"
    )
    where = subprocess.run(
        [sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(where) == 3
    assert all(Path(path).is_relative_to(installed) for path in where), where


def test_the_example_composes_the_llmapi_components(synth: Path, installed: Path) -> None:
    tree = (synth / "tree.txt").read_text()
    for component in (
        "ExistingCluster",
        "PlatformOperators",
        "ModelStore",
        "ModelPreparation",
        "LlmApiDeployment",
    ):
        assert component in tree
    for legacy in ("EngineBuild", "DisaggregatedDeployment", "TritonOrchestrator"):
        assert legacy not in tree
    summary = (synth / "summary.txt").read_text()
    assert any(
        line.split() == ["kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet", "3"]
        for line in summary.splitlines()
    )
    assert any(line.split() == ["disagg:serving:LlmApiDeployment", "2"] for line in summary.splitlines())
    # the runtime ConfigMap ships the installed package's router, not a checkout's
    runtime = manifest(synth, "configmap", "chat-runtime-configmap")["data"]
    assert runtime["router.py"] == (installed / "runtime" / "router.py").read_text()


def test_outputs_and_the_model_preparation(synth: Path) -> None:
    outputs = json.loads((synth / "outputs.json").read_text())
    assert set(outputs) == {"modelLocation", "frontendEndpoints", "routerUrls"}
    location = outputs["modelLocation"]
    assert location.startswith("/models/models/llama-70b/") and len(location.rsplit("/", 1)[1]) == 16
    assert outputs["routerUrls"] == {
        "chat": f"http://chat-router.{NAMESPACE}.svc.cluster.local:8000",
        "long-context": f"http://long-context-router.{NAMESPACE}.svc.cluster.local:8000",
    }
    job = manifest(synth, "job", "llama-70b-job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    # the token is a file from the hf-token Secret (HF_TOKEN_PATH), never an environment variable
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert "HF_TOKEN" not in env and env["HF_TOKEN_PATH"] == "/var/run/secrets/huggingface/token"
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert volumes["hf-token"]["secret"]["secretName"] == "hf-token"
    assert volumes["hf-token"]["secret"]["items"] == [{"key": "HF_TOKEN", "path": "token"}]
    request = json.loads(manifest(synth, "configmap", "llama-70b-code")["data"]["request.json"])
    assert request["repository"] == "meta-llama/Llama-3.1-70B-Instruct"
    assert request["revision"] == "1605565b47bb9346c5515c34102e054115b4f98b"


def test_multi_node_groups_run_mpirun_with_trtllm_llmapi_launch(synth: Path) -> None:
    location = json.loads((synth / "outputs.json").read_text())["modelLocation"]
    lws = manifest(synth, "leaderworkerset", "long-context-workers-leaderworkerset")
    template = lws["spec"]["leaderWorkerTemplate"]
    assert template["size"] == 2
    assert lws["spec"]["replicas"] == 2
    argv = exec_argv(leader(lws))
    assert argv[0] == "mpirun"
    launch = argv.index("trtllm-llmapi-launch")
    assert argv[launch - 2 : launch] == ["-n", "16"]  # one rank per GPU of the two 8-GPU pods
    assert argv[launch + 1 :][:3] == ["trtllm-serve", "serve", location]
    assert argv[argv.index("--extra_llm_api_options") + 1] == "/etc/trtllm/llm_api.yaml"
    assert {"NCCL_IB_HCA", "NCCL_IB_DISABLE"} <= set(argv[i + 1] for i, a in enumerate(argv) if a == "-x")
    for pod in (template["leaderTemplate"], template["workerTemplate"]):
        (container,) = pod["spec"]["containers"]
        assert container["image"] == IMAGE
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"
        assert container["resources"]["limits"]["rdma/rdma_shared_device_a"] == "1"
        assert container["resources"]["requests"]["memory"] == "126Gi"  # 8 ranks staging 1/16 of 70B bf16
        assert {
            "name": "mpi-ssh",
            "secret": {"secretName": "long-context-mpi-ssh", "defaultMode": 0o440},
        } in pod["spec"]["volumes"]
    (worker,) = template["workerTemplate"]["spec"]["containers"]
    assert worker["command"][2].splitlines()[-1].startswith('exec "$sshd_bin" -D -e -f ')
    assert worker["ports"] == [{"name": "ssh", "containerPort": 2222, "protocol": "TCP"}]
    options = llm_api_options(synth, "long-context-workers")
    assert (options["tensor_parallel_size"], options["pipeline_parallel_size"]) == (8, 2)
    assert options["max_seq_len"] == 131072
    assert "cache_transceiver_config" not in options


@pytest.mark.parametrize(
    ("role", "server_role", "tp", "groups"), [("prefill", "context", 4, 2), ("decode", "generation", 8, 1)]
)
def test_prefill_and_decode_move_kv_cache_with_ucx_over_infiniband(
    synth: Path, role, server_role, tp, groups
) -> None:
    text = manifest(synth, "configmap", f"chat-{role}-llm-api")["data"]["llm_api.yaml"]
    assert text.startswith(f"# trtllm-serve --extra_llm_api_options, role {server_role} (generated)\n")
    options = yaml.safe_load(text)
    assert options["cache_transceiver_config"] == {"backend": "UCX", "max_tokens_in_buffer": 16384}
    assert options["tensor_parallel_size"] == tp
    assert options["disable_overlap_scheduler"] is (role == "prefill")
    lws = manifest(synth, "leaderworkerset", f"chat-{role}-leaderworkerset")
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == 1
    assert lws["spec"]["replicas"] == groups
    container = leader(lws)
    env = env_of(container)
    assert "ib" in env["UCX_TLS"].split(","), env["UCX_TLS"]
    assert "tcp" not in env["UCX_TLS"].split(",")
    assert "TRTLLM_NIXL_KVCACHE_BACKEND" not in env  # UCX itself, not NIXL over UCX
    assert exec_argv(container)[:2] == ["trtllm-serve", "serve"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == str(tp)


def test_routers_discover_their_groups(synth: Path) -> None:
    def router_args(name: str) -> list[str]:
        (container,) = manifest(synth, "deployment", f"{name}-router-deployment")["spec"]["template"]["spec"][
            "containers"
        ]
        return [*container["command"], *container.get("args", [])]

    def flag(argv: list[str], name: str) -> str:
        return argv[argv.index(name) + 1]

    chat = router_args("chat")
    assert "runtime.router" in chat and "--workers" not in chat
    assert flag(chat, "--context") == f"dns://chat-prefill-leaders.{NAMESPACE}.svc.cluster.local:8000"
    assert flag(chat, "--generation") == f"dns://chat-decode-leaders.{NAMESPACE}.svc.cluster.local:8000"
    long_context = router_args("long-context")
    assert "--context" not in long_context
    assert (
        flag(long_context, "--workers")
        == f"dns://long-context-workers-leaders.{NAMESPACE}.svc.cluster.local:8000"
    )
    # the headless Services the router resolves select the ready leaders of each set
    service = manifest(synth, "service", "chat-decode-leaders")
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {
        "leaderworkerset.sigs.k8s.io/name": "chat-decode",
        "leaderworkerset.sigs.k8s.io/worker-index": "0",
    }
    assert service["spec"]["publishNotReadyAddresses"] is False


def test_leader_worker_sets_match_the_crd_schema(synth: Path) -> None:
    serving = _serving_conftest()
    validator = jsonschema.Draft7Validator(serving.crd_schema("lws-leaderworkersets.crd.yaml"))
    found = sorted((synth / "manifests" / NAMESPACE).glob("leaderworkerset-*.yaml"))
    assert [p.name for p in found] == [
        "leaderworkerset-chat-decode-leaderworkerset.yaml",
        "leaderworkerset-chat-prefill-leaderworkerset.yaml",
        "leaderworkerset-long-context-workers-leaderworkerset.yaml",
    ]
    for path in found:
        lws = yaml.safe_load(path.read_text())
        errors = sorted(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(lws)
        )
        assert errors == [], path.name
    # the strict schema does catch a misspelt field (the API server would silently prune it)
    lws = yaml.safe_load(found[-1].read_text())
    lws["spec"]["leaderWorkerTemplate"]["sizee"] = lws["spec"]["leaderWorkerTemplate"].pop("size")
    assert any("sizee" in e.message for e in validator.iter_errors(lws))


def test_a_group_the_model_cannot_split_is_refused_before_any_resource(consumer, tmp_path: Path) -> None:
    project, env = consumer
    broken = tmp_path / "llm-team"
    shutil.copytree(project, broken)
    program = broken / "__main__.py"
    text = program.read_text()
    assert text.count("tensor_parallel_size=4,") == 1  # the prefill groups
    program.write_text(text.replace("tensor_parallel_size=4,", "tensor_parallel_size=3,"))
    out = tmp_path / "synth"
    run = subprocess.run(
        [sys.executable, "-m", "disaggctl", "synth", "--stack", "ci", "--out", str(out)],
        cwd=broken, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert (
        "  - prefill.llmApi.tensorParallelSize: 3 must divide the 64 attention heads of "
        "'llama-3.1-70b-instruct': use one of 1, 2, 4, 8, 16, 32, 64\n"
    ) in run.stdout + run.stderr
    assert not out.exists()


def test_the_multi_node_ssh_keys_are_generated_by_the_stack_and_masked(synth: Path) -> None:
    """The Secret the groups mount above is declared by the stack from two generated ED25519
    keys; its data never reaches the synth output."""
    secret = manifest(synth, "secret", "team-secrets-long-context-mpi-ssh")
    assert secret["metadata"]["name"] == "long-context-mpi-ssh"
    assert secret["stringData"] == "[secret]"
    summary = (synth / "summary.txt").read_text()
    assert any(line.split() == ["tls:index/privateKey:PrivateKey", "2"] for line in summary.splitlines())
    assert "PRIVATE KEY" not in "".join(p.read_text() for p in synth.rglob("*") if p.is_file())
