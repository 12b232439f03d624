"""Config → LlmApiDeploymentArgs (components/serving/llmapi/args.py) for the shipped dev stack."""

from __future__ import annotations

from pathlib import Path

from components.config import load_stack_config
from components.serving.llmapi.args import llmapi_deployment_args
from disaggctl.synth.program import read_stack_config
from tests.components.serving.conftest import A100, SYSTEM

ROOT = Path(__file__).resolve().parents[4]


def dev_args(frontend_image: str | None):
    _, raw, _ = read_stack_config(ROOT, "dev")
    config = load_stack_config(raw)
    (deployment,) = config.deployments
    return llmapi_deployment_args(
        deployment, namespace="llm-dev", worker_image=config.images.trtllm, frontend_image=frontend_image,
        model_dir="/models/models/llama-8b/h", gpu_pools={"a100": A100}, system_pool=SYSTEM,
        claim_name="store", mount_path="/models", runtime_files={"__init__.py": ""},
        aws_load_balancer=True, custom_metrics=False,
    )  # fmt: skip


def test_images_frontend_serves_both_cpu_tiers() -> None:
    args = dev_args("registry.example.com/disagg/cpu-tiers:1.0")
    assert args.frontend_image == args.router_image == "registry.example.com/disagg/cpu-tiers:1.0"
    default = dev_args(None)
    assert default.frontend_image is None and default.router_image is None  # both fall back to trtllm
    assert default.worker_image.startswith("nvcr.io/nvidia/tensorrt-llm/release:")


def test_dev_groups_follow_the_planned_layout() -> None:
    args = dev_args(None)
    (spec,) = args.workers.values()
    assert (spec.groups, spec.pods_per_group, spec.gpus_per_pod) == (2, 1, 2)
    text = spec.options_yaml("workers")
    assert "tensor_parallel_size: 2\n" in text and "max_num_tokens: 4096\n" in text
    assert spec.llm_api is not None and spec.llm_api.tensor_parallel_size == 2  # typed, not a YAML string
    assert args.served_model_name == "llama-8b" and args.mode == "tensor-parallel"
