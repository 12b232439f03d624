"""Every Pulumi.<stack>.yaml of the project validates, and prod differs from dev where it should."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.config import StackConfig, load_stack_config
from disaggctl.synth.program import read_stack_config

PROJECT_DIR = Path(__file__).resolve().parents[3]
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
    # the layout `disaggctl plan` found for its workload: two groups of one tp-2 pod
    assert (deployment.workers.groups, deployment.workers.pods_per_group, deployment.workers.gpus_per_pod) == (2, 1, 2)
    assert deployment.workers.llm_api.tensor_parallel_size == 2
    assert deployment.workload is not None and deployment.workload.prediction is not None
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


def test_prod_disaggregates_prefill_and_decode_over_efa_on_both_pools() -> None:
    """Both llmapi deployments are what `disaggctl plan` found for their SLO: prefill/decode, KV
    cache moved over NIXL (EFA). The planned layouts fit one node per group, so prod no longer
    has a multi-node (podsPerGroup > 1) worker group."""
    prod = load("prod")
    bf16 = next(d for d in prod.deployments if d.name == "llama-70b")
    assert bf16.mode == "prefill-decode" and bf16.prefill is not None and bf16.decode is not None
    assert (bf16.prefill.groups, bf16.prefill.llm_api.tensor_parallel_size, bf16.prefill.gpus_per_pod) == (14, 2, 2)  # re-planned by $/Mtok (issue 23): same 7 nodes as 16
    assert (bf16.decode.groups, bf16.decode.llm_api.tensor_parallel_size, bf16.decode.gpus_per_pod) == (3, 8, 8)
    for group in (bf16.prefill, bf16.decode):
        assert group.autoscaling.enabled and group.min_groups is not None and group.max_groups is not None
        assert group.min_groups < group.groups <= group.max_groups
    assert prod.cluster.node_pools()[bf16.prefill.pool].efa_interfaces == 32
    fp8 = next(d for d in prod.deployments if d.name == "llama-70b-pd")
    assert fp8.runtime == "llmapi" and set(fp8.worker_groups()) == {"prefill", "decode"}
    assert fp8.prefill is not None and fp8.decode is not None
    assert (fp8.prefill.groups, fp8.prefill.llm_api.tensor_parallel_size) == (22, 1)
    assert (fp8.decode.groups, fp8.decode.llm_api.tensor_parallel_size) == (5, 2)
    for deployment, model, pool in ((bf16, "llama-70b", "h100"), (fp8, "llama-70b-fp8", "h200")):
        assert deployment.workload is not None and deployment.workload.prediction is not None
        for group in (deployment.prefill, deployment.decode):
            assert group is not None and group.model == model and group.pool == pool
            assert group.llm_api.cache_transceiver_config is not None
            assert group.llm_api.cache_transceiver_config.backend == "NIXL"  # EFA: NIXL over libfabric
    for group in (fp8.prefill, fp8.decode):
        assert group.llm_api.kv_cache_config.dtype == "fp8"
    assert all(g.pods_per_group == 1 for d in prod.deployments for g in d.worker_groups().values())
    assert prod.models["llama-70b-fp8"].repository == "nvidia/Llama-3.1-70B-Instruct-FP8"
    eks = prod.cluster.eks
    assert eks is not None and eks.endpoint_private_access and eks.deployer_access == "public-endpoint"
    assert eks.endpoint_public_access and eks.public_access_cidrs == ["DEPLOYER-CIDR"]  # filled in before pulumi up
    capacity = {p.name: p.capacity_type for p in prod.cluster.eks.gpu_node_pools}
    assert capacity == {"h100": "capacity-block", "h200": "on-demand"}


@pytest.mark.parametrize("stack", STACKS)
def test_every_model_revision_is_a_pinned_commit(stack: str) -> None:
    for source in load(stack).models.values():
        assert len(source.revision) == 40 and int(source.revision, 16) >= 0
