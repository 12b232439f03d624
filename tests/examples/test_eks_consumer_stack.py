"""The EKS consumer example (examples/eks-consumer: cluster + platform + one prefill/decode
deployment composed in code) synthesizes, and the components refuse what the stack loader refuses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.cluster.aws import AwsGpuCluster
from components.config.capacity import host_memory_request_gib, weight_bytes_per_param
from components.config.cluster import EksConfig, GpuNodePoolConfig
from components.config.errors import ConfigError
from components.config.models import ModelSourceConfig
from components.config.scheduling import NodePool
from components.serving.llmapi.deployment import LlmApiDeploymentArgs, WorkerGroupSpec
from engines.llm_api import CacheTransceiverOptions, LlmApiOptions

PROJECT_DIR = Path(__file__).resolve().parents[2]
EXAMPLE_DIR = PROJECT_DIR / "examples" / "eks-consumer"
NAMESPACE = "team-llama"


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("eks-consumer") / "llm-eks-team"
    shutil.copytree(EXAMPLE_DIR, project)
    shutil.copy(project / "Pulumi.example.yaml", project / "Pulumi.ci.yaml")
    out = project / "out"
    done = subprocess.run(
        [sys.executable, "-m", "disaggctl", "synth", "--stack", "ci", "--out", str(out)],
        cwd=project, env={**os.environ, "PYTHONPATH": str(PROJECT_DIR)}, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def manifest(out: Path, name: str) -> dict[str, Any]:
    return yaml.safe_load((out / "manifests" / NAMESPACE / name).read_text())


def test_the_cluster_platform_and_deployment_are_declared(synth: Path) -> None:
    types = {p.name for p in (synth / "resources").iterdir()}
    assert {"aws_eks_cluster_Cluster", "aws_eks_nodeGroup_NodeGroup", "disagg_serving_LlmApiDeployment"} <= types
    platform = {p.name for p in (synth / "manifests" / "gpu-platform").iterdir()}
    assert "helmrelease-llm-eks-team-platform-efa-device-plugin-release.yaml" in platform


@pytest.mark.parametrize(("role", "replicas", "gpus", "efa", "tp"), [("prefill", 4, 2, 8, 2), ("decode", 1, 8, 32, 8)])
def test_each_role_gets_its_gpus_efa_and_model_sized_memory(synth: Path, role: str, replicas: int, gpus: int, efa: int, tp: int) -> None:
    lws = manifest(synth, f"leaderworkerset-chat-{role}-leaderworkerset.yaml")
    assert lws["spec"]["replicas"] == replicas
    pod = lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]
    assert pod["nodeSelector"] == {"disagg.dev/pool": "h100"}
    limits = pod["containers"][0]["resources"]["limits"]
    model = ModelSourceConfig(model="llama-3.1-70b-instruct", revision="1605565b47bb9346c5515c34102e054115b4f98b")
    memory = host_memory_request_gib(model.info.param_count, weight_bytes_per_param("bfloat16", "none"), tp, gpus, 32)
    assert (limits["nvidia.com/gpu"], limits["vpc.amazonaws.com/efa"], limits["memory"]) == (str(gpus), str(efa), f"{memory}Gi")


def test_both_sides_move_kv_cache_with_nixl(synth: Path) -> None:
    for role in ("prefill", "decode"):
        options = yaml.safe_load(manifest(synth, f"configmap-chat-{role}-llm-api.yaml")["data"]["llm_api.yaml"])
        assert options["cache_transceiver_config"]["backend"] == "NIXL"


# -- the components refuse what the loader refuses ----------------------------------------------------------

H100 = GpuNodePoolConfig(name="h100", instance_type="p5.48xlarge", availability_zone="us-west-2a", max_size=2).node_pool()
LLAMA_70B = ModelSourceConfig(model="llama-3.1-70b-instruct", revision="1605565b47bb9346c5515c34102e054115b4f98b")
NIXL = CacheTransceiverOptions(backend="NIXL")
PREFILL = LlmApiOptions(tensor_parallel_size=2, max_batch_size=1, max_seq_len=16384, cache_transceiver_config=NIXL)
DECODE = LlmApiOptions(tensor_parallel_size=8, max_batch_size=64, max_seq_len=16384, cache_transceiver_config=NIXL)


def args(prefill: WorkerGroupSpec, decode: WorkerGroupSpec | None = None) -> LlmApiDeploymentArgs:
    return LlmApiDeploymentArgs(
        namespace="team", mode="prefill-decode", worker_image="nvcr.io/nvidia/tensorrt-llm/release:1.2.1",
        model_dir="/models/m", model=LLAMA_70B, served_model_name="llama", max_seq_len=16384,
        workers={"prefill": prefill, "decode": decode or WorkerGroupSpec(pool=H100, gpus_per_pod=8, llm_api=DECODE)},
        system_pool=NodePool(name="system", gpus_per_node=0, gpu_memory_gib=0, node_selector={}),
        claim_name="claim", runtime_files={},
    )


def refusal(prefill: WorkerGroupSpec, decode: WorkerGroupSpec | None = None) -> str:
    with pytest.raises(ValueError) as caught:
        args(prefill, decode)
    return str(caught.value)


def test_the_example_layout_is_accepted() -> None:
    assert args(WorkerGroupSpec(pool=H100, gpus_per_pod=2, groups=4, llm_api=PREFILL)).workers["prefill"].groups == 4


def test_forty_prefill_groups_on_a_two_node_pool_are_refused() -> None:
    message = refusal(WorkerGroupSpec(pool=H100, gpus_per_pod=2, groups=40, llm_api=PREFILL))
    assert (
        "prefill, decode: at their largest (groups or max_groups) the worker groups on pool 'h100' need 11 nodes, "
        "but the pool has at most 2: lower groups/max_groups or grow the pool"
    ) in message


def test_a_group_whose_gpus_do_not_match_its_parallelism_is_refused() -> None:
    message = refusal(WorkerGroupSpec(pool=H100, gpus_per_pod=4, llm_api=PREFILL))
    assert (
        "prefill.llmApi: tensorParallelSize × pipelineParallelSize = 2 × 1 = 2 GPUs, but the group gets "
        "podsPerGroup 1 × gpusPerPod 4 = 4: set gpusPerPod: 2, or change tensorParallelSize/pipelineParallelSize"
    ) in message


def test_a_missing_transceiver_on_efa_is_refused_with_nixl_as_the_fix() -> None:
    no_transceiver = LlmApiOptions(tensor_parallel_size=2, max_batch_size=1, max_seq_len=16384)
    message = refusal(WorkerGroupSpec(pool=H100, gpus_per_pod=2, llm_api=no_transceiver))
    assert "set cacheTransceiverConfig: {backend: NIXL} (UCX has no EFA transport) on both sides" in message


def test_ucx_over_efa_is_refused() -> None:
    ucx = PREFILL.model_copy(update={"cache_transceiver_config": CacheTransceiverOptions(backend="UCX")})
    message = refusal(WorkerGroupSpec(pool=H100, gpus_per_pod=2, llm_api=ucx))
    assert "prefill.llmApi.cacheTransceiverConfig.backend: 'UCX' on pool 'h100': UCX has no EFA transport" in message


def test_a_group_spec_takes_options_once() -> None:
    with pytest.raises(ValueError, match="give the LLM API options once"):
        WorkerGroupSpec(pool=H100, gpus_per_pod=2, llm_api=PREFILL, llm_api_yaml="tensor_parallel_size: 2\n")


def test_the_cluster_component_refuses_what_the_loader_refuses() -> None:
    eks = EksConfig(region="us-wset-2", availability_zones=["us-wset-2a", "us-wset-2b"], public_access_cidrs=["52.94.76.0/22"])
    with pytest.raises(ConfigError) as caught:
        AwsGpuCluster("bad", eks)
    assert caught.value.problems[0] == (
        "disagg:cluster.eks.region: 'us-wset-2' is not an AWS region with EKS "
        "(https://docs.aws.amazon.com/general/latest/gr/eks.html): did you mean 'us-west-2'?"
    )
