"""check_capacity: each rule on the smallest config that breaks it, and the prod stack before/after.

Every AWS rule's test names the AWS document it follows.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from components.cluster.aws_node_pool import capacity_block_schedule, node_group_sizes
from components.config import ConfigError, StackConfig, load_stack_config
from components.config.capacity import (
    GroupDemand,
    PoolSupply,
    check_capacity,
    cpu_quantity,
    efa_interfaces_per_pod,
    group_demands,
    host_memory_request_gib,
    llmapi_group_memory_gib,
    max_output_tokens,
    nodes_needed,
    pool_supply,
    quantity_gib,
    storage_zone,
    stream_drain_seconds,
    weight_bytes_per_param,
)
from components.config.cluster import CapacityBlockConfig, GpuNodePoolConfig
from components.config.loader import parse_raw_config
from disaggctl.synth.program import read_stack_config
from engines.catalog import MODELS

PROJECT_DIR = Path(__file__).resolve().parents[3]
BEFORE = yaml.safe_load((Path(__file__).parent / "data" / "prod-before-capacity.yaml").read_text())
BEFORE_BLOCK = datetime(2026, 11, 27, tzinfo=timezone.utc)

H100 = "disagg:cluster.eks.gpuNodePools[0]"
H200 = "disagg:cluster.eks.gpuNodePools[1]"
BLOCK = {"start": "2026-12-01T11:30:00Z", "end": "2026-12-15T11:30:00Z", "instanceCount": 8}


def prod_sections() -> dict:
    _, raw, _ = read_stack_config(PROJECT_DIR, "prod")
    return {key: json.loads(value) if value[:1] in "[{" else value for key, value in raw.items()}


def proposed_prod_sections() -> dict:
    """The committed prod (its capacity stanza applied), as sections a test may edit."""
    return copy.deepcopy(prod_sections())


def before_capacity_sections() -> dict:
    """prod with the pools, system group and platform it had before the capacity work
    (data/prod-before-capacity.yaml): what the issue measured."""
    sections = copy.deepcopy(prod_sections())
    sections["disagg:cluster"]["eks"]["gpuNodePools"] = copy.deepcopy(BEFORE["cluster"]["gpuNodePools"])
    sections["disagg:cluster"]["eks"]["systemNodeGroup"] = copy.deepcopy(BEFORE["cluster"]["systemNodeGroup"])
    sections["disagg:platform"] = copy.deepcopy(BEFORE["platform"])
    # its platform scaled through the metrics adapter's HPA, which reads the leaders' trtllm_* gauges:
    # proven on TensorRT-LLM 1.3 only (runtime/capabilities.py), so the workers are declared 1.3 here
    # and only the capacity rules speak
    sections["disagg:images"] = {**sections["disagg:images"], "trtllmVersion": "1.3.0rc24"}
    return sections


def raw(sections: dict) -> dict[str, str]:
    return {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in sections.items()}


def load(sections: dict) -> StackConfig:
    """``sections`` as a StackConfig whose other cross-section checks pass; the capacity rules
    are left to the test (the loader refuses their problems, see test_the_loader_refuses_...)."""
    parsed, problems = parse_raw_config(raw(sections))
    assert problems == []
    config = StackConfig.model_validate(parsed)
    assert config.cross_check(capacity=False) == []
    return config


def proposed(edit) -> tuple[list[str], list[str]]:
    sections = proposed_prod_sections()
    edit(sections)
    report = check_capacity(load(sections), now=BEFORE_BLOCK)
    return report.problems, report.warnings


def pool(sections, index: int) -> dict:
    return sections["disagg:cluster"]["eks"]["gpuNodePools"][index]


# --- the prod stack -----------------------------------------------------------------------------


def test_prod_before_the_capacity_work_has_the_problems_the_issue_measured() -> None:
    problems = check_capacity(load(before_capacity_sections()), now=BEFORE_BLOCK).problems
    assert [p.split(":", 2)[1] for p in problems] == [
        "cluster.eks.gpuNodePools[0].capacityBlock",
        "cluster.eks.gpuNodePools[0].desiredSize",
        "cluster.eks.gpuNodePools[0]",
        "cluster.eks.gpuNodePools[1].placementGroup",
        "cluster.eks.gpuNodePools[1]",
        "cluster.eks.systemNodeGroup",
    ]
    # llama-70b's planned prefill (16 of 16 × 2 GPUs: 4 nodes) and decode (4 × 8 GPUs: 4 nodes) at
    # their maximum; llama-70b-pd's 22 × 1 + 5 × 2 GPUs (3 + 2 nodes) and llama-8b-engine (1)
    assert "need 8 p5.48xlarge nodes" in problems[2] and "holds at most 4" in problems[2]
    assert "need 6 p5en.48xlarge nodes" in problems[4] and "holds at most 3" in problems[4]


def test_committed_prod_has_no_problem_and_says_what_it_warns(proposed_prod) -> None:
    report = check_capacity(proposed_prod, now=BEFORE_BLOCK)
    assert report.problems == []
    assert len(report.warnings) == 3
    assert report.warnings[0].startswith("disagg:deployments[0].prefill.minGroups: 10 group(s) on pool 'h100' stay Pending")
    assert report.warnings[1].startswith("disagg:deployments[0].decode.minGroups: 2 group(s) on pool 'h100' stay Pending")
    assert report.warnings[2].startswith(f"{H200}.availabilityZone: pool 'h200' is in us-east-2b but the FSx")


# --- EC2 User Guide, "Capacity Reservations for cluster placement groups" ---------------------


def test_reservation_with_a_placement_group_the_stack_creates_is_refused() -> None:
    """EC2 User Guide, "Capacity Reservations for cluster placement groups": a reservation serves
    a cluster placement group only if it was created in it."""

    def edit(sections):
        pool(sections, 1).pop("placementGroupName")
        pool(sections, 1)["placementGroup"] = True

    problems, _ = proposed(edit)
    assert problems == [
        f"{H200}.placementGroup: pool 'h200' targets reservation cr-0f1e2d3c4b5a69788 and a cluster "
        "placement group this stack creates, but a reservation belongs to a cluster placement group "
        "only if it was created in it: set placementGroupName to the reservation's own group "
        "(placementGroup: false), or drop the placement group"
    ]


def test_reservation_in_its_own_placement_group_is_accepted(proposed_prod) -> None:
    """EC2 User Guide, "Capacity Reservations for cluster placement groups"."""
    h200 = proposed_prod.cluster.eks.gpu_node_pools[1]
    assert (h200.placement_group, h200.placement_group_name) == (False, "llm-prod-h200-odcr")


def test_placement_group_name_and_placement_group_together_are_refused() -> None:
    with pytest.raises(ValidationError, match="placementGroupName 'pg-own' names an existing group"):
        GpuNodePoolConfig(
            name="h200", instance_type="p5en.48xlarge", availability_zone="us-east-2b",
            placement_group=True, placement_group_name="pg-own",
        )


# --- EC2 User Guide, "Capacity Blocks for ML"; EKS User Guide, managed node groups on them ----


def test_capacity_block_without_its_window_is_refused() -> None:
    """EC2 User Guide, "Capacity Blocks for ML": a block has a start and an end."""
    problems, _ = proposed(lambda s: pool(s, 0).pop("capacityBlock"))
    assert problems == [
        f"{H100}.capacityBlock: pool 'h100' is on Capacity Block cr-0a1b2c3d4e5f60718 but its start, end "
        "and size are not given, so nothing can wait for the start or drain before the end: add "
        "capacityBlock {start, end, instanceCount} as the EC2 console shows them"
    ]


def test_managed_node_group_on_a_block_must_start_at_zero() -> None:
    """EKS User Guide, "Create a managed node group with Capacity Blocks for ML": desired 0 until
    the block is active, and 0 for node group version upgrades."""

    def edit(sections):
        pool(sections, 0).update(autoscaler="none", minSize=4, desiredSize=4)

    problems, _ = proposed(edit)
    assert len(problems) == 1
    assert problems[0].startswith(f"{H100}.desiredSize: pool 'h100' is a managed node group on a Capacity Block with minSize 4 / desiredSize 4")


def test_pool_larger_than_its_block_is_refused() -> None:
    """EC2 User Guide, "Capacity Blocks for ML": a block holds a fixed number of instances."""
    problems, _ = proposed(lambda s: pool(s, 0)["capacityBlock"].update(instanceCount=4))
    assert problems[0] == (
        f"{H100}.maxSize: 8 nodes, but Capacity Block cr-0a1b2c3d4e5f60718 holds 4 instances: set maxSize: 4"
    )
    assert "holds at most 4: its Capacity Block holds 4" in problems[1]


def test_ended_block_is_refused() -> None:
    """EC2 User Guide, "Capacity Blocks for ML": instances are terminated from 30 minutes before the end."""
    sections = proposed_prod_sections()
    after = datetime(2027, 6, 1, 11, 0, tzinfo=timezone.utc)
    problems = check_capacity(load(sections), now=after).problems
    assert problems == [
        f"{H100}.capacityBlock.end: the block ends 2027-06-01T11:30:00+00:00 (instances are terminated "
        "from 30 minutes before): buy a new block and update capacityBlock and capacityReservationId, "
        "or remove the pool"
    ]


def test_block_times_need_a_zone_and_an_order() -> None:
    with pytest.raises(ValidationError, match="has no time zone"):
        CapacityBlockConfig(start="2026-12-01T11:30:00", end="2026-12-15T11:30:00Z", instance_count=4)
    with pytest.raises(ValidationError, match="is not after its start"):
        CapacityBlockConfig(start="2026-12-15T11:30:00Z", end="2026-12-01T11:30:00Z", instance_count=4)


def managed_block_pool(**overrides) -> GpuNodePoolConfig:
    fields = dict(
        name="h100", instance_type="p5.48xlarge", availability_zone="us-east-2a", min_size=0,
        desired_size=0, max_size=8, capacity_type="capacity-block",
        capacity_reservation_id="cr-0a1b2c3d4e5f60718", capacity_block=BLOCK,
    )
    fields.update(overrides)
    return GpuNodePoolConfig.model_validate(fields)


def test_managed_block_scales_out_at_the_start_and_in_before_ec2_terminates() -> None:
    """EKS User Guide, "Create a managed node group with Capacity Blocks for ML" (scheduled
    scaling at the start and end) and EC2 User Guide, "Capacity Blocks for ML" (termination
    begins 30 minutes before the end): scale-in at end − 30 min − drainMarginMinutes."""
    schedule = capacity_block_schedule(managed_block_pool(), now=BEFORE_BLOCK)
    assert [(a.name, a.start_time(), a.min_size, a.desired_size, a.max_size) for a in schedule] == [
        ("block-start", "2026-12-01T11:30:00Z", 8, 8, 8),
        ("block-end", "2026-12-15T10:30:00Z", 0, 0, 8),
    ]


def test_managed_block_sizes_follow_the_clock() -> None:
    pool_ = managed_block_pool()
    assert node_group_sizes(pool_, BEFORE_BLOCK) == (0, 0, 8)
    during = datetime(2026, 12, 5, tzinfo=timezone.utc)
    assert node_group_sizes(pool_, during) == (8, 8, 8)
    assert [a.name for a in capacity_block_schedule(pool_, during)] == ["block-end"]


def test_karpenter_block_pool_gets_no_scheduled_actions() -> None:
    assert capacity_block_schedule(managed_block_pool(autoscaler="karpenter"), BEFORE_BLOCK) == []


# --- node demand vs supply ------------------------------------------------------------------


def test_fixed_managed_pool_cannot_absorb_autoscaled_groups() -> None:
    def edit(sections):
        pool(sections, 1).update(autoscaler="none", minSize=2, desiredSize=2)  # maxSize 6 holds the maxima
        sections["disagg:deployments"][1]["decode"].update(minGroups=4, maxGroups=8)

    problems, _ = proposed(edit)
    assert problems == [
        f"{H200}: the worker groups at their maximum need 6 p5en.48xlarge nodes (disagg:deployments[1].prefill "
        "maxGroups 22 × podsPerGroup 1 × gpusPerPod 1 → 3, disagg:deployments[1].decode maxGroups 8 × "
        "podsPerGroup 1 × gpusPerPod 2 → 2, disagg:deployments[2].workers maxGroups 1 × podsPerGroup 1 × "
        "gpusPerPod 2 → 1), but pool 'h200' holds at most 2: it is a managed node group fixed at desiredSize 2 "
        "(autoscaler: none, nothing adds a node): set autoscaler: karpenter with maxSize ≥ 6, or lower maxGroups"
    ]


@pytest.mark.parametrize(
    ("demand", "gpus", "nodes"),
    [
        (GroupDemand("w", "p", 4, 1, 2, 8), 8, 8),  # 4 groups × 2 pods of a full node
        (GroupDemand("w", "p", 2, 1, 1, 4), 8, 1),  # two 4-GPU groups share one node
        (GroupDemand("w", "p", 3, 1, 1, 4), 8, 2),
        (GroupDemand("w", "p", 2, 1, 2, 4), 8, 2),  # multi-node groups never share: 1 node each
    ],
)
def test_nodes_needed(demand, gpus, nodes) -> None:
    assert nodes_needed(demand, gpus) == nodes


# --- topology domains (LWS exclusive topology on topology.k8s.aws/network-node-layer-3) ------


def multi_node_llama_70b(sections) -> None:
    """llama-70b as prod shipped it before `disaggctl plan` sized it (prefill/decode on one node
    per group now): tp 8 × pp 2 over two p5.48xlarge nodes per group, 1 to 4 groups."""
    deployment = sections["disagg:deployments"][0]
    for key in ("prefill", "decode", "workload"):
        deployment.pop(key)
    deployment["mode"] = "tensor-parallel"
    deployment["workers"] = {
        "model": "llama-70b", "pool": "h100", "groups": 2, "minGroups": 1, "maxGroups": 4, "podsPerGroup": 2,
        "gpusPerPod": 8, "autoscaling": {"enabled": True, "targetKvCacheUtilization": 0.75},
        "llmApi": {"tensorParallelSize": 8, "pipelineParallelSize": 2, "maxBatchSize": 128, "maxNumTokens": 16384,
                   "maxSeqLen": 32768},
    }


def test_too_few_topology_domains_is_refused() -> None:
    """EC2 User Guide, "Amazon EC2 instance topology": nodes under one network node share a
    layer-3 domain; a multi-node group takes one domain exclusively."""
    problems, _ = proposed(lambda s: (multi_node_llama_70b(s), pool(s, 0).update(topologyDomains=1)))
    assert problems == [
        f"{H100}.topologyDomains: pool 'h100' spans 1 topology.k8s.aws/network-node-layer-3 domain(s), but "
        "disagg:deployments[0].workers need 4 at their maximum (one per multi-node group, exclusively): "
        "lower maxGroups to 1 or add capacity in other network domains"
    ]


def test_unknown_topology_domains_is_a_warning() -> None:
    problems, warnings = proposed(lambda s: (multi_node_llama_70b(s), pool(s, 0).pop("topologyDomains")))
    assert problems == []
    assert any(w.startswith(f"{H100}.topologyDomains: disagg:deployments[0].workers need 4 distinct") for w in warnings)


# --- EFA interfaces per pod ----------------------------------------------------------------


def test_pods_sharing_a_node_cannot_ask_for_more_efa_than_it_has() -> None:
    """EC2 User Guide, "Elastic Fabric Adapter: supported instance types" (g6e.48xlarge: 4 EFA
    interfaces for 8 GPUs): eight 1-GPU pods would ask for 8."""
    assert efa_interfaces_per_pod(4, 8, 1) == 1

    def edit(sections):
        pool(sections, 1).update(instanceType="g6e.48xlarge", capacityReservationId=None)
        pool(sections, 1).pop("capacityReservationId")
        for role in ("prefill", "decode"):
            sections["disagg:deployments"][1][role].update(gpusPerPod=1, podsPerGroup=8)

    problems = check_capacity(load_tolerant(edit), now=BEFORE_BLOCK).problems
    assert (
        "disagg:deployments[1].prefill.gpusPerPod: 8 pods of 1 GPUs on one g6e.48xlarge node ask for 8 × 1 "
        "EFA interfaces, but the node has 4 (AWS EFA device plugin advertises one per interface): raise "
        "gpusPerPod so fewer pods share a node"
    ) in problems


def load_tolerant(edit):
    """The proposed prod with ``edit``, validated as a model only (engine checks left out)."""
    sections = proposed_prod_sections()
    edit(sections)
    parsed, problems = parse_raw_config(raw(sections))
    assert problems == []
    return StackConfig.model_validate(parsed)


# --- storage zone -------------------------------------------------------------------------


def test_pool_in_another_zone_than_fsx_is_warned() -> None:
    """FSx for Lustre User Guide, "Deployment options": a PERSISTENT_2 file system lives in one
    Availability Zone; clients in another zone cross zones (inter-AZ data transfer)."""
    problems, warnings = proposed(lambda s: None)
    assert problems == []
    assert sum("FSx for Lustre file system is in us-east-2a" in w for w in warnings) == 1


def test_storage_zone_can_follow_the_pools() -> None:
    def edit(sections):
        for index in (0, 1):
            pool(sections, index)["availabilityZone"] = "us-east-2b"
        sections["disagg:cluster"]["eks"]["storage"]["availabilityZone"] = "us-east-2b"

    _, warnings = proposed(edit)
    assert not any("FSx" in w for w in warnings)


# --- host memory and stream drain ----------------------------------------------------------


def test_host_memory_of_a_70b_leader_with_8_ranks() -> None:
    model = MODELS["llama-3.1-70b-instruct"]
    bf16 = host_memory_request_gib(model.param_count, weight_bytes_per_param("bfloat16"), 16, 8, 64)
    assert bf16 == 196
    assert host_memory_request_gib(model.param_count, 2.0, 16, 8, 0) == 126  # /dev/shm is 70 of it
    fp8 = host_memory_request_gib(model.param_count, weight_bytes_per_param("bfloat16", "fp8"), 8, 8, 64)
    assert fp8 == 196  # half the bytes, half the ranks' share: the same shard size


def test_committed_prod_sizes_its_leaders_so_nothing_is_warned(prod) -> None:
    """Group pods' memory comes from host_memory_request_gib (serving); the stack sets none."""
    assert not [w for w in check_capacity(prod, now=BEFORE_BLOCK).warnings if ".orchestrator.resources.memory" in w]


def test_an_engine_leader_given_too_little_memory_is_warned() -> None:
    def edit(sections):
        sections["disagg:deployments"][2]["orchestrator"]["resources"] = {"cpu": "8", "memory": "32Gi"}

    memory = [w for w in proposed(edit)[1] if ".orchestrator.resources.memory" in w]
    assert memory == [
        "disagg:deployments[2].orchestrator.resources.memory: 32Gi for a workers leader running 2 ranks of "
        "'llama-3.1-8b-instruct' (world size 2) with a 64Gi RAM-backed /dev/shm charged to the same limit; it "
        "needs about 92Gi (OOM-killed while loading otherwise): set memory: 92Gi, or lower workers.shmSize"
    ]

    def exactly(sections):  # the figure the warning asks for is enough
        sections["disagg:deployments"][2]["orchestrator"]["resources"] = {"cpu": "8", "memory": "92Gi"}

    assert not [w for w in proposed(exactly)[1] if ".orchestrator.resources.memory" in w]


def test_stream_drain_covers_the_longest_request() -> None:
    assert stream_drain_seconds(1024, 0.05) == 92
    assert stream_drain_seconds(8192, 0.02, time_to_first_token_s=30, margin_s=0) == 194


def test_karpenter_drain_lead_is_ten_minutes() -> None:
    from components.config.capacity import KARPENTER_CAPACITY_BLOCK_DRAIN_LEAD
    from components.config.cluster import EC2_CAPACITY_BLOCK_TERMINATION_LEAD

    assert timedelta(minutes=30) == EC2_CAPACITY_BLOCK_TERMINATION_LEAD
    assert timedelta(minutes=10) == KARPENTER_CAPACITY_BLOCK_DRAIN_LEAD


def test_prod_sections_are_not_modified_by_the_proposal() -> None:
    before = copy.deepcopy(prod_sections())
    proposed_prod_sections()
    assert prod_sections() == before


@pytest.fixture
def prod() -> StackConfig:
    return load(prod_sections())


@pytest.fixture
def proposed_prod() -> StackConfig:
    return load(proposed_prod_sections())


def test_streams_longer_than_karpenters_block_drain_are_warned() -> None:
    """Karpenter docs (tasks/odcrs.md @v1.14.1): Capacity Block nodes drain 10 minutes before EC2
    terminates them (EC2 User Guide, "Capacity Blocks for ML": 30 minutes before the end)."""
    config = load(proposed_prod_sections())
    assert check_capacity(config, now=BEFORE_BLOCK, drain_seconds=600).warnings == check_capacity(config, now=BEFORE_BLOCK).warnings
    warnings = check_capacity(config, now=BEFORE_BLOCK, drain_seconds=601).warnings
    assert any(w.startswith(f"{H100}.capacityBlock: the serving pods drain for 601s, but Karpenter") for w in warnings)


def test_managed_block_drain_margin_must_cover_the_streams() -> None:
    def edit(sections):
        pool(sections, 0).update(autoscaler="none")
        pool(sections, 0)["capacityBlock"]["drainMarginMinutes"] = 1

    sections = proposed_prod_sections()
    edit(sections)
    warnings = check_capacity(load(sections), now=BEFORE_BLOCK, drain_seconds=92).warnings
    assert f"{H100}.capacityBlock.drainMarginMinutes: 1 minutes, but the serving pods drain for 92s: set drainMarginMinutes to 2 or more" in warnings


def test_cpu_tiers_at_their_maximum_must_fit_the_system_pool() -> None:
    """EC2 User Guide, "Amazon EC2 instance type specifications": m7i.4xlarge has 16 vCPUs. The llmapi
    frontends and routers count with the requests they get (2 CPUs unless set), the Triton frontend 8."""
    problem = check_capacity(load(before_capacity_sections()), now=BEFORE_BLOCK).problems[-1]
    assert problem == (
        "disagg:cluster.eks.systemNodeGroup: the CPU tiers at their maximum request 84 CPUs "
        "(deployments[0].frontend maxReplicas 12 × cpu 2, deployments[0].orchestrator maxReplicas 6 × cpu 2, "
        "deployments[1].frontend maxReplicas 8 × cpu 2, deployments[1].orchestrator maxReplicas 4 × cpu 2, "
        "deployments[2].frontend maxReplicas 3 × cpu 8), but the system pool holds at most 3 × (16 − 1) = 45 "
        "(m7i.4xlarge, fixed at desiredSize, nothing adds a node): set autoscaler: karpenter and a maxSize "
        "that holds them, or lower the frontends' maxReplicas"
    )


def test_karpenter_system_pool_too_small_says_how_large() -> None:
    problems, _ = proposed(lambda s: s["disagg:cluster"]["eks"]["systemNodeGroup"].update(maxSize=5))
    assert problems == [problems[0]]
    assert problems[0].endswith("(m7i.4xlarge, Karpenter up to maxSize): raise maxSize to 6, or lower the frontends' maxReplicas")


def test_the_loader_refuses_capacity_problems_once_everything_else_passes() -> None:
    sections = proposed_prod_sections()
    sections["disagg:cluster"]["eks"]["systemNodeGroup"].update(maxSize=5)
    with pytest.raises(ConfigError) as caught:
        load_stack_config(raw(sections))
    assert [p.split(":")[1] for p in caught.value.problems] == ["cluster.eks.systemNodeGroup"]


def test_the_stack_report_checks_the_drain_against_the_block(prod) -> None:
    """StackConfig.capacity_report passes the longest drain: prod's 32768-token sequences drain
    for 1679 s, more than Karpenter's 10 minutes before a Capacity Block ends (a warning)."""
    warnings = prod.capacity_report(now=BEFORE_BLOCK).warnings
    assert prod.capacity_report(now=BEFORE_BLOCK).problems == []
    assert [w.split(":")[1] for w in warnings] == [
        "deployments[0].prefill.minGroups",
        "deployments[0].decode.minGroups",
        "cluster.eks.gpuNodePools[0].capacityBlock",
        "cluster.eks.gpuNodePools[1].availabilityZone",
    ]
    assert "the serving pods drain for 1679s" in warnings[2]


# --- the smallest configs that break the remaining rules -------------------------------------


def test_drain_margin_that_leaves_no_time_in_the_block_is_refused() -> None:
    """A one-hour block: EC2 terminates from 30 minutes before the end (EC2 User Guide, "Capacity
    Blocks for ML"), so a 30-minute drain margin scales the group in at the very start."""
    hour = {"start": "2026-12-01T11:30:00Z", "end": "2026-12-01T12:30:00Z", "instance_count": 1}
    assert CapacityBlockConfig(**hour, drain_margin_minutes=29).scale_in_at() == datetime(2026, 12, 1, 11, 31, tzinfo=timezone.utc)
    with pytest.raises(ValidationError) as caught:
        CapacityBlockConfig(**hour, drain_margin_minutes=30)
    assert (
        "capacityBlock drainMarginMinutes 30 leaves no time in the block (the pool would scale in before it "
        "scales out): lower drainMarginMinutes"
    ) in str(caught.value)


def test_drain_margin_is_zero_or_more_minutes() -> None:
    assert CapacityBlockConfig.model_validate({**BLOCK, "drainMarginMinutes": 0}).drain_margin_minutes == 0
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        CapacityBlockConfig.model_validate({**BLOCK, "drainMarginMinutes": -1})


def test_managed_node_group_on_a_block_refuses_any_nonzero_desired_size() -> None:
    """EKS User Guide, "Create a managed node group with Capacity Blocks for ML": minSize 0 with
    desiredSize 2 still launches before the block is active."""

    def edit(sections):
        pool(sections, 0).update(autoscaler="none", minSize=0, desiredSize=2)

    problems, _ = proposed(edit)
    assert [p.split(":")[1] for p in problems] == ["cluster.eks.gpuNodePools[0].desiredSize"]
    assert "with minSize 0 / desiredSize 2;" in problems[0]


def test_karpenter_pool_on_a_block_is_not_held_to_the_managed_group_sizes() -> None:
    """Karpenter launches the block's nodes itself; the node group sizes are unused there."""
    problems, _ = proposed(lambda s: pool(s, 0).update(minSize=2, desiredSize=2))
    assert problems == []


def test_bytes_per_parameter_of_each_checkpoint_precision() -> None:
    assert [weight_bytes_per_param("bfloat16", q) for q in ("none", "FP8", "int8_sq", "int4_awq", "nvfp4")] == [
        2.0, 1.0, 1.0, 0.5, 0.5,
    ]
    assert [weight_bytes_per_param(d) for d in ("float16", "float32", "fp32")] == [2.0, 4.0, 4.0]


@pytest.mark.parametrize(
    ("quantity", "gib"),
    [("64Gi", 64.0), ("512Mi", 0.5), ("1048576Ki", 1.0), ("2Ti", 2048.0), ("1.5Gi", 1.5), (" 8Gi ", 8.0),
     ("1073741824", 1.0), ("4G", 4e9 / 2**30), ("4000M", 4e9 / 2**30), ("4000000K", 4e9 / 2**30), ("1T", 1e12 / 2**30),
     ("lots", None), ("8 Gi", None), ("-1Gi", None), ("8gi", None)],
)  # fmt: skip
def test_memory_quantities_in_gib(quantity: str, gib: float | None) -> None:
    assert quantity_gib(quantity) == gib


def test_cpu_quantities_in_cores() -> None:
    assert [cpu_quantity(q) for q in ("8", "500m", "1.5", "250m ", "eight", "1k")] == [8.0, 0.5, 1.5, 0.25, None, None]


def test_a_group_on_a_pool_the_cluster_lacks_asks_nothing_of_the_pools() -> None:
    """Such a group is refused by the stack's pool check; the capacity rules skip it, no crash."""

    def edit(sections):
        sections["disagg:deployments"][2]["workers"]["pool"] = "nowhere"

    demands = group_demands(load_tolerant(edit))
    assert "disagg:deployments[2].workers" not in [d.where for d in demands]
    assert [d.where for d in demands][:2] == ["disagg:deployments[0].prefill", "disagg:deployments[0].decode"]


def test_storage_zone_falls_back_to_the_first_zone_without_a_pinned_pool() -> None:
    def eks(edit) -> object:
        sections = proposed_prod_sections()
        edit(sections["disagg:cluster"]["eks"])
        return load_tolerant(lambda s: s.update(sections)).cluster.eks

    def unpin(cluster) -> None:
        for p in cluster["gpuNodePools"]:
            p.pop("availabilityZone")
            p["efa"] = False  # EFA pools must pin a zone
        cluster.get("storage", {}).pop("availabilityZone", None)

    assert storage_zone(eks(lambda c: None)) == "us-east-2a"  # the first pinned pool's
    unpinned = eks(unpin)
    assert unpinned.availability_zones[0] != unpinned.availability_zones[-1]
    assert storage_zone(unpinned) == unpinned.availability_zones[0]


def test_an_engine_leader_memory_that_cannot_be_read_is_not_judged() -> None:
    def edit(sections):
        sections["disagg:deployments"][2]["orchestrator"]["resources"] = {"cpu": "8", "memory": "lots"}

    report = check_capacity(load_tolerant(edit), now=BEFORE_BLOCK)
    assert not [w for w in report.warnings if ".orchestrator.resources.memory" in w]


def test_the_first_load_balancer_deployment_is_named() -> None:
    from tests.components.config.test_existing_cluster_capacity import NOW, stack

    config = stack(6, None)
    second = config.deployments[0].model_copy(update={"name": "second"})
    config = config.model_copy(update={"deployments": [config.deployments[0], second]})
    warnings = check_capacity(config, NOW).warnings
    assert [w.split(":")[1] for w in warnings if "LoadBalancer on an existing cluster" in w] == [
        "deployments[0].frontend.serviceType"
    ]


def test_llmapi_group_pod_memory(prod) -> None:
    """llama-70b decode: 8 ranks × (70.55e9 params × 2 B / 8 = 16.4 GiB + 6 GiB runtime) + 64 GiB
    shm, × 1.1 = 268 GiB; the fp8 prefill: 1 rank × (65.7 + 6) + 64, × 1.1 = 150 GiB."""
    decode = prod.deployments[0].worker_groups()["decode"]
    assert llmapi_group_memory_gib(prod, decode, 8) == 268
    assert llmapi_group_memory_gib(prod, prod.deployments[1].worker_groups()["prefill"], 1) == 150
    assert llmapi_group_memory_gib(prod, decode.model_copy(update={"model": "unknown"}), 8) is None
    assert llmapi_group_memory_gib(prod, decode.model_copy(update={"shm_size": "lots"}), 8) is None


def test_managed_block_drain_margin_boundary() -> None:
    """A 2-minute margin covers a 120 s drain exactly; 121 s is warned."""
    sections = proposed_prod_sections()
    pool(sections, 0).update(autoscaler="none")
    pool(sections, 0)["capacityBlock"]["drainMarginMinutes"] = 2
    config = load(sections)

    def margin_warnings(drain: int) -> list[str]:
        warnings = check_capacity(config, now=BEFORE_BLOCK, drain_seconds=drain).warnings
        return [w for w in warnings if ".capacityBlock.drainMarginMinutes" in w]

    assert margin_warnings(120) == []
    assert margin_warnings(121) == [
        f"{H100}.capacityBlock.drainMarginMinutes: 2 minutes, but the serving pods drain for 121s: set "
        "drainMarginMinutes to 3 or more"
    ]


def test_what_a_pool_on_a_block_supplies_and_why() -> None:
    """Karpenter launches up to maxSize, and a smaller block caps it; a managed group on a block
    is scaled out to min(maxSize, instanceCount) by the scheduled action."""
    assert pool_supply(managed_block_pool(autoscaler="karpenter")) == PoolSupply(8, "Karpenter launches up to maxSize 8")
    small = {**BLOCK, "instanceCount": 4}
    assert pool_supply(managed_block_pool(autoscaler="karpenter", capacity_block=small)) == PoolSupply(
        4, "its Capacity Block holds 4"
    )
    assert pool_supply(managed_block_pool(capacity_block=small)) == PoolSupply(
        4, "the block's scheduled scale-out sets 4 (min of maxSize and instanceCount)"
    )


def test_the_longest_output_leaves_one_prompt_token() -> None:
    """maxSeqLen 2 (the smallest accepted) leaves one output token; 16384 leaves 16383."""

    def longest(max_seq_len: int) -> int:
        def edit(sections):
            for role in ("prefill", "decode"):
                sections["disagg:deployments"][1][role]["llmApi"]["maxSeqLen"] = max_seq_len

        config = load_tolerant(edit)
        return max_output_tokens(config, config.deployments[1])

    assert (longest(2), longest(16384)) == (1, 16383)


def test_a_deployment_whose_engines_are_unknown_gets_the_shortest_output() -> None:
    """No maxSeqLen to read (the engine is not declared: refused by the stack check): one token."""

    def edit(sections):
        sections["disagg:deployments"][2]["workers"]["engine"] = "undeclared"

    config = load_tolerant(edit)
    assert config.deployments[2].runtime == "engine"
    assert max_output_tokens(config, config.deployments[2]) == 1


def test_a_system_size_without_a_known_vcpu_count_is_not_judged() -> None:
    """m7i.metal-24xl has no standard size name: its vCPUs are unknown, so the CPU tiers are not
    weighed against it (m7i.large, 2 vCPUs, is: 84 CPUs of tiers do not fit)."""
    sections = prod_sections()
    sections["disagg:cluster"]["eks"]["systemNodeGroup"]["instanceType"] = "m7i.metal-24xl"
    assert not [p for p in check_capacity(load(sections), now=BEFORE_BLOCK).problems if "systemNodeGroup" in p]
    sections["disagg:cluster"]["eks"]["systemNodeGroup"]["instanceType"] = "m7i.large"
    [problem] = [p for p in check_capacity(load(sections), now=BEFORE_BLOCK).problems if "systemNodeGroup" in p]
    assert problem.startswith("disagg:cluster.eks.systemNodeGroup: the CPU tiers at their maximum request 84 CPUs")
