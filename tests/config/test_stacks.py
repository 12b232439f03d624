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
            assert config.engines[group.engine].world_size == group.pods_per_group * group.gpus_per_pod


def test_prod_uses_other_hardware_and_models_than_dev() -> None:
    dev, prod = load("dev"), load("prod")
    assert {p.instance_type for p in dev.cluster.node_pools().values()} == {"p4d.24xlarge"}
    assert {p.instance_type for p in prod.cluster.node_pools().values()} == {"p5.48xlarge", "p5en.48xlarge"}
    assert {e.model for e in dev.engines.values()} == {"llama-3.1-8b-instruct"}
    assert {e.model for e in prod.engines.values()} == {"llama-3.1-70b-instruct"}
    assert prod.namespace != dev.namespace


def test_prod_spans_nodes_over_efa_and_disaggregates_prefill_and_decode() -> None:
    prod = load("prod")
    tp = next(d for d in prod.deployments if d.mode == "tensor-parallel")
    assert tp.workers is not None and tp.workers.pods_per_group == 2 and tp.workers.autoscaling.enabled
    assert prod.cluster.node_pools()[tp.workers.pool].efa_interfaces == 32
    pd = next(d for d in prod.deployments if d.mode == "prefill-decode")
    assert set(pd.worker_groups()) == {"prefill", "decode"}
    assert prod.cluster.eks is not None and not prod.cluster.eks.endpoint_public_access
    capacity = {p.name: p.capacity_type for p in prod.cluster.eks.gpu_node_pools}
    assert capacity == {"h100": "capacity-block", "h200": "on-demand"}
