"""Every Pulumi.<stack>.yaml of the project validates, and prod differs from dev where it should."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.config import StackConfig, load_stack_config
from disaggctl.synth import read_stack_config

PROJECT_DIR = Path(__file__).resolve().parents[2]
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in PROJECT_DIR.glob("Pulumi.*.yaml"))


def load(stack: str) -> StackConfig:
    _, raw, _ = read_stack_config(PROJECT_DIR, stack)
    return load_stack_config(raw)


def test_the_project_has_dev_and_prod() -> None:
    assert {"dev", "prod"} <= set(STACKS)


@pytest.mark.parametrize("stack", STACKS)
def test_stack_config_is_valid(stack: str) -> None:
    config = load(stack)
    assert config.deployments, f"stack {stack} deploys no model"
    for deployment in config.deployments:
        for group in deployment.worker_groups().values():
            if deployment.runtime == "engine":
                assert group.engine is not None and group.gpus_per_pod is not None
                world = config.engines[group.engine].world_size
            else:
                assert group.model in config.models and group.gpus_per_pod is not None
                world = group.llm_api.world_size
            assert world == group.pods_per_group * group.gpus_per_pod


def test_dev_serves_llama_8b_with_the_llm_api_on_a100() -> None:
    dev = load("dev")
    assert dev.runtimes() == {"llmapi"} and dev.engines == {}
    (deployment,) = dev.deployments
    assert deployment.workers is not None
    assert (deployment.workers.model, deployment.workers.pool) == ("llama-8b", "a100")
    assert deployment.workers.llm_api.tensor_parallel_size == 4
    source = dev.models["llama-8b"]
    assert (source.repository, source.quantization) == ("meta-llama/Llama-3.1-8B-Instruct", "none")
    assert source.revision == "0e9e39f249a16976918f6564b8830bc894c89659"


def test_prod_uses_other_hardware_and_models_than_dev() -> None:
    dev, prod = load("dev"), load("prod")
    assert {p.instance_type for p in dev.cluster.node_pools().values()} == {"p4d.24xlarge"}
    assert {p.instance_type for p in prod.cluster.node_pools().values()} == {"p5.48xlarge", "p5en.48xlarge"}
    assert {m.model for m in dev.models.values()} == {"llama-3.1-8b-instruct"}
    assert {m.model for m in prod.models.values()} == {"llama-3.1-70b-instruct"}
    assert prod.namespace != dev.namespace


def test_prod_keeps_exactly_one_engine_deployment() -> None:
    prod = load("prod")
    engine = [d for d in prod.deployments if d.runtime == "engine"]
    assert [d.name for d in engine] == ["llama-8b-engine"]
    assert engine[0].mode == "tensor-parallel"
    assert prod.engine_pools() == {"llama-8b-tp2": "h200"}
    assert {d.name for d in prod.deployments if d.runtime == "llmapi"} == {"llama-70b", "llama-70b-pd"}


def test_prod_spans_nodes_over_efa_and_disaggregates_prefill_and_decode() -> None:
    prod = load("prod")
    tp = next(d for d in prod.deployments if d.name == "llama-70b")
    assert tp.workers is not None and tp.workers.pods_per_group == 2 and tp.workers.autoscaling.enabled
    assert (tp.workers.llm_api.tensor_parallel_size, tp.workers.llm_api.pipeline_parallel_size) == (8, 2)
    assert prod.cluster.node_pools()[tp.workers.pool].efa_interfaces == 32
    pd = next(d for d in prod.deployments if d.mode == "prefill-decode")
    assert pd.runtime == "llmapi" and set(pd.worker_groups()) == {"prefill", "decode"}
    assert pd.prefill is not None and pd.decode is not None
    for group in (pd.prefill, pd.decode):
        assert group.model == "llama-70b-fp8" and group.pool == "h200"
        assert group.llm_api.cache_transceiver_config is not None
        assert group.llm_api.cache_transceiver_config.backend == "NIXL"  # EFA: NIXL over libfabric
        assert group.llm_api.kv_cache_config.dtype == "fp8"
    assert prod.models["llama-70b-fp8"].repository == "nvidia/Llama-3.1-70B-Instruct-FP8"
    assert prod.cluster.eks is not None and not prod.cluster.eks.endpoint_public_access
    capacity = {p.name: p.capacity_type for p in prod.cluster.eks.gpu_node_pools}
    assert capacity == {"h100": "capacity-block", "h200": "on-demand"}


@pytest.mark.parametrize("stack", STACKS)
def test_every_model_revision_is_a_pinned_commit(stack: str) -> None:
    for source in load(stack).models.values():
        assert len(source.revision) == 40 and int(source.revision, 16) >= 0
