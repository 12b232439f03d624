"""The whole-node cost model (disaggctl/plan/cost.py), function by function.

test_cost_plan.py proves the model end to end (plan's pick, dev's forecast); these pin each pure
function on the smallest input that tells a right answer from a near miss: default sizes, a
Capacity Block's ceiling and commitment, whole-node packing, unpriced rows, the target rate and the
two table formats byte for byte.
"""

from __future__ import annotations

import pytest

from components.config.workload import PricingConfig, WorkloadConfig
from disaggctl.plan.cost import (
    COST_HEADER,
    Cost,
    CostRow,
    GroupShape,
    PoolSpec,
    deployment_cost,
    group_shapes,
    pool_costs,
    pool_spec,
    pool_specs,
    price_of,
    render_cost_markdown,
    render_cost_text,
    row_from_json,
    target_tokens_per_second,
    usd_per_million_tokens,
)
from disaggctl.plan.pricing import ON_DEMAND, PriceError

P4D = ON_DEMAND[("us-east-1", "p4d.24xlarge")].usd_per_hour
BLOCK = {"start": "2027-01-04T11:30:00Z", "end": "2027-01-11T11:30:00Z", "instanceCount": 3}


def _workload(**extra: object) -> WorkloadConfig:
    return WorkloadConfig.model_validate(
        {"inputTokens": 1000, "outputTokens": 200, "slo": {"ttftMs": 500, "tpotMs": 40}, **extra}
    )


# --------------------------------------------------------------------------- pools
def test_a_pool_without_sizes_takes_the_node_groups_defaults() -> None:
    spec = pool_spec({"name": "gpu", "instanceType": "p4d.24xlarge"})
    assert spec == PoolSpec("gpu", "p4d.24xlarge", "on-demand", None, supply_nodes=1, ceiling_nodes=2, committed_nodes=0)
    assert spec.gpus_per_node == 8


def test_a_fixed_managed_node_group_supplies_its_desired_size_and_may_reach_its_max() -> None:
    spec = pool_spec({"name": "gpu", "instanceType": "g5.12xlarge", "minSize": 1, "desiredSize": 3, "maxSize": 7,
                      "capacityType": "spot", "capacityReservationId": "cr-1"})
    assert (spec.supply_nodes, spec.ceiling_nodes, spec.committed_nodes) == (3, 7, 0)
    assert (spec.capacity_type, spec.reservation_id, spec.gpus_per_node) == ("spot", "cr-1", 4)


def test_karpenter_supplies_up_to_max_size() -> None:
    spec = pool_spec({"name": "gpu", "instanceType": "p4d.24xlarge", "desiredSize": 1, "maxSize": 5,
                      "autoscaler": "karpenter"})
    assert (spec.supply_nodes, spec.ceiling_nodes) == (5, 5)


@pytest.mark.parametrize(("max_size", "expected"), [(2, 2), (3, 3), (9, 3)])
def test_a_capacity_block_caps_the_pool_and_is_paid_in_full(max_size: int, expected: int) -> None:
    spec = pool_spec({"name": "cb", "instanceType": "p5.48xlarge", "capacityType": "capacity-block",
                      "capacityReservationId": "cr-b", "minSize": 0, "desiredSize": 0, "maxSize": max_size,
                      "capacityBlock": BLOCK})
    assert (spec.supply_nodes, spec.ceiling_nodes, spec.committed_nodes) == (expected, expected, 3)


def test_pool_specs_keeps_named_mappings_only() -> None:
    cluster = {"eks": {"gpuNodePools": [
        {"name": "a", "instanceType": "p4d.24xlarge"},
        {"instanceType": "p4d.24xlarge"},
        "not-a-pool",
        {"name": "b", "instanceType": "g5.12xlarge", "maxSize": 4},
    ]}}
    specs = pool_specs(cluster)
    assert list(specs) == ["a", "b"]
    assert specs["b"].ceiling_nodes == 4
    assert pool_specs({}) == {} == pool_specs({"eks": None}) == pool_specs({"eks": {"gpuNodePools": None}})


# --------------------------------------------------------------------------- worker roles
def test_group_shapes_reads_each_role_with_synths_defaults() -> None:
    pools = {"gpu": pool_spec({"name": "gpu", "instanceType": "p4d.24xlarge"})}
    deployment = {
        "prefill": {"pool": "gpu", "groups": 2, "maxGroups": 5, "podsPerGroup": 2, "gpusPerPod": 4},
        "decode": {"pool": "gpu", "groups": 3},
        "workers": "not-a-group",
    }
    shapes = group_shapes(deployment, pools)
    assert shapes == [
        GroupShape("prefill", "gpu", groups=2, max_groups=5, pods_per_group=2, gpus_per_pod=4),
        GroupShape("decode", "gpu", groups=3, max_groups=3, pods_per_group=1, gpus_per_pod=8),
    ]
    assert (shapes[0].gpus, shapes[0].max_gpus, shapes[1].gpus, shapes[1].max_gpus) == (16, 40, 24, 24)


def test_max_groups_below_groups_counts_as_groups_and_an_unknown_pool_has_no_gpus() -> None:
    [shape] = group_shapes({"workers": {"pool": "nowhere", "groups": 4, "maxGroups": 2}}, {})
    assert (shape.pool, shape.groups, shape.max_groups, shape.gpus_per_pod, shape.gpus) == ("nowhere", 4, 4, 0, 0)


def test_a_missing_group_count_is_one_group() -> None:
    [shape] = group_shapes({"workers": {"pool": "gpu", "gpusPerPod": 2}}, {})
    assert (shape.groups, shape.max_groups, shape.pods_per_group, shape.gpus) == (1, 1, 1, 2)


@pytest.mark.parametrize(
    ("shape", "per_node", "expected", "at_max"),
    [
        (GroupShape("w", "gpu", 3, 5, 1, 2), 8, 1, 2),   # 4 pods per node: 3 -> 1 node, 5 -> 2 nodes
        (GroupShape("w", "gpu", 4, 4, 1, 2), 8, 1, 1),   # exactly one node full
        (GroupShape("w", "gpu", 2, 3, 2, 8), 8, 4, 6),   # multi-node groups own their nodes
        (GroupShape("w", "gpu", 2, 3, 3, 4), 8, 4, 6),   # 3 pods of 4 GPUs: 2 nodes per group, none shared
        (GroupShape("w", "gpu", 1, 1, 1, 16), 8, 0, 0),  # a pod larger than the node never lands
    ],
)
def test_group_nodes_are_whole_nodes(shape: GroupShape, per_node: int, expected: int, at_max: int) -> None:
    assert shape.nodes(per_node) == expected
    assert shape.nodes(per_node, shape.max_groups) == at_max


# --------------------------------------------------------------------------- rows and totals
def _row(name: str, usd: float | None, nodes: int, max_nodes: int, gpus: int = 8) -> CostRow:
    return CostRow(name, "p4d.24xlarge", "on-demand" if usd is not None else "unpriced", "basis", usd, gpus, nodes,
                   max_nodes, None if usd is None else usd * nodes, None if usd is None else usd * max_nodes)


def test_as_json_rounds_money_to_four_places_and_keeps_none() -> None:
    row = CostRow("a", "p4d.24xlarge", "on-demand", "b", 21.123456, 8, 3, 4, 63.370368, 84.493824)
    assert row.as_json() == {
        "pool": "a", "instance_type": "p4d.24xlarge", "kind": "on-demand", "basis": "b",
        "usd_per_node_hour": 21.1235, "gpus": 8, "nodes": 3, "max_nodes": 4,
        "usd_per_hour": 63.3704, "max_usd_per_hour": 84.4938,
    }
    assert _row("u", None, 1, 2).as_json()["usd_per_hour"] is None


def test_row_from_json_is_the_inverse_of_as_json_and_fills_missing_keys_with_none() -> None:
    row = _row("a", 2.5, 3, 4)
    assert row_from_json(row.as_json()) == row
    partial = row_from_json({"pool": "a", "nodes": 2, "unknown": 1})
    assert (partial.pool, partial.nodes, partial.usd_per_hour, partial.instance_type) == ("a", 2, None, None)


def test_totals_sum_the_rows_and_are_unknown_when_one_row_is_unpriced() -> None:
    priced = Cost((_row("a", 2.0, 1, 3, gpus=8), _row("b", 5.0, 2, 2, gpus=4)))
    assert (priced.usd_per_hour, priced.max_usd_per_hour) == (12.0, 16.0)
    assert (priced.nodes, priced.max_nodes, priced.gpus) == (3, 5, 12)
    mixed = Cost((_row("a", 2.0, 1, 3), _row("u", None, 1, 1)))
    assert (mixed.usd_per_hour, mixed.max_usd_per_hour, mixed.nodes) == (None, None, 2)
    assert Cost(()).usd_per_hour == 0.0
    assert isinstance(Cost((_row("a", 2, 1, 1),)).usd_per_hour, float)


def test_price_of_returns_the_refusal_instead_of_raising() -> None:
    pool = pool_spec({"name": "gpu", "instanceType": "p5e.48xlarge"})
    refused = price_of(pool, "us-east-1", PricingConfig())
    assert isinstance(refused, PriceError) and "not offered in us-east-1" in str(refused)
    priced = price_of(pool_spec({"name": "gpu", "instanceType": "p4d.24xlarge"}), "us-east-1", PricingConfig())
    assert not isinstance(priced, PriceError) and priced.usd_per_instance_hour == P4D


# --------------------------------------------------------------------------- deployments and pools
def test_deployment_cost_packs_each_pool_and_prices_expected_and_worst_case() -> None:
    pools = {
        "b": pool_spec({"name": "b", "instanceType": "p4d.24xlarge", "maxSize": 4}),
        "a": pool_spec({"name": "a", "instanceType": "g5.12xlarge", "maxSize": 4}),
    }
    shapes = [
        GroupShape("prefill", "b", 3, 5, 1, 2),   # 1 node, 2 at max
        GroupShape("decode", "b", 1, 2, 2, 8),    # 2 nodes, 4 at max
        GroupShape("workers", "a", 1, 1, 1, 4),   # 1 node
        GroupShape("extra", "elsewhere", 1, 1, 1, 1),
    ]
    cost = deployment_cost(shapes, pools, "us-east-1", PricingConfig(onDemand={"g5.12xlarge": 5.0}))
    assert [r.pool for r in cost.rows] == ["a", "b"]
    a, b = cost.rows
    assert (a.gpus, a.nodes, a.max_nodes, a.usd_per_hour, a.max_usd_per_hour) == (4, 1, 1, 5.0, 5.0)
    assert (b.gpus, b.nodes, b.max_nodes) == (6 + 16, 3, 6)
    assert b.usd_per_hour == pytest.approx(3 * P4D) and b.max_usd_per_hour == pytest.approx(6 * P4D)
    assert b.kind == "on-demand" and b.usd_per_node_hour == P4D
    assert cost.problems == ("extra: pool 'elsewhere' has no AWS instance type: no price",)


def test_an_unpriced_pool_is_a_row_without_money_and_a_problem() -> None:
    pools = {"gpu": pool_spec({"name": "gpu", "instanceType": "p4d.24xlarge"})}
    cost = deployment_cost([GroupShape("workers", "gpu", 1, 2, 1, 8)], pools, "eu-west-1", PricingConfig())
    [row] = cost.rows
    assert (row.kind, row.usd_per_node_hour, row.usd_per_hour, row.max_usd_per_hour) == ("unpriced", None, None, None)
    assert (row.nodes, row.max_nodes, row.gpus) == (1, 2, 8)
    assert row.basis == cost.problems[0] and "disagg:pricing.onDemand.p4d.24xlarge" in row.basis
    assert cost.usd_per_hour is None


def test_pool_costs_bill_at_least_the_block_and_at_worst_the_ceiling() -> None:
    pools = {
        "cb": pool_spec({"name": "cb", "instanceType": "p5.48xlarge", "capacityType": "capacity-block",
                         "capacityReservationId": "cr-b", "maxSize": 3, "capacityBlock": BLOCK}),
        "od": pool_spec({"name": "od", "instanceType": "p4d.24xlarge", "maxSize": 4}),
        "idle": pool_spec({"name": "idle", "instanceType": "p4d.24xlarge", "maxSize": 2}),
        "over": pool_spec({"name": "over", "instanceType": "p4d.24xlarge", "maxSize": 2}),
    }
    pricing = PricingConfig(capacityBlocks={"cr-b": 40.0})
    cost = pool_costs(pools, {"cb": 1, "od": 2, "over": 5}, {"cb": 8, "od": 16, "over": 40}, "us-east-1", pricing)
    rows = {r.pool: r for r in cost.rows}
    assert [r.pool for r in cost.rows] == ["cb", "idle", "od", "over"]
    assert (rows["cb"].nodes, rows["cb"].max_nodes, rows["cb"].usd_per_hour, rows["cb"].kind) == (3, 3, 120.0, "capacity block")
    assert (rows["od"].nodes, rows["od"].max_nodes, rows["od"].gpus) == (2, 4, 16)
    assert (rows["idle"].nodes, rows["idle"].max_nodes, rows["idle"].gpus, rows["idle"].usd_per_hour) == (0, 2, 0, 0.0)
    assert (rows["over"].nodes, rows["over"].max_nodes) == (5, 5)  # demand above the ceiling is shown, not hidden
    assert cost.problems == ()


def test_pool_costs_report_an_unpriced_pool() -> None:
    pools = {"gpu": pool_spec({"name": "gpu", "instanceType": "p4d.24xlarge"})}
    cost = pool_costs(pools, {"gpu": 1}, {"gpu": 8}, "eu-west-1", PricingConfig())
    assert len(cost.problems) == 1 and cost.rows[0].kind == "unpriced" and cost.max_usd_per_hour is None


# --------------------------------------------------------------------------- the target rate
def test_target_rate_is_request_rate_times_typical_output_tokens() -> None:
    assert target_tokens_per_second(_workload(requestRate=2.5)) == 500.0
    mean = _workload(requestRate=2.0, outputTokens={"mean": 300, "max": 1000})
    assert target_tokens_per_second(mean, tokens_per_s_per_user=99.0) == 600.0  # the rate wins over the prediction


def test_target_rate_from_concurrency_needs_the_predicted_speed_per_user() -> None:
    assert target_tokens_per_second(_workload(concurrency=16), tokens_per_s_per_user=25.0) == 400.0
    assert target_tokens_per_second(_workload(concurrency=16)) is None
    assert target_tokens_per_second(_workload(concurrency=16), tokens_per_s_per_user=0.0) is None


def test_usd_per_million_tokens_at_the_target_rate() -> None:
    assert usd_per_million_tokens(36.0, 1000.0) == pytest.approx(10.0)  # 36 $/h over 3.6 Mtok/h
    assert usd_per_million_tokens(None, 1000.0) is None
    assert usd_per_million_tokens(36.0, None) is None
    assert usd_per_million_tokens(36.0, 0.0) is None


# --------------------------------------------------------------------------- rendering
ROWS = (
    CostRow("gpu", "p4d.24xlarge", "on-demand", "b", 21.96, 8, 1, 2, 21.96, 43.92),
    CostRow("big-pool", "p5.48xlarge", "unpriced", "why", None, 16, 2, 3, None, None),
    CostRow("x", "g5.12xlarge", "reservation", "b", 1234.5, 4, 10, 10, 12345.0, 12345.0),
)


def test_the_text_table_is_aligned_and_prints_unknown_money_as_a_dash() -> None:
    assert render_cost_text(ROWS, indent="  ") == (
        "  pool      instance      price        $/node-h  GPUs  nodes  $/hour     max nodes  max $/hour\n"
        "  gpu       p4d.24xlarge  on-demand    21.96     8     1      21.96      2          43.92\n"
        "  big-pool  p5.48xlarge   unpriced     -         16    2      -          3          -\n"
        "  x         g5.12xlarge   reservation  1,234.50  4     10     12,345.00  10         12,345.00\n"
    )


def test_the_markdown_table_right_aligns_the_numbers() -> None:
    assert render_cost_markdown(ROWS) == (
        "| pool | instance | price | $/node-h | GPUs | nodes | $/hour | max nodes | max $/hour |\n"
        "|---|---|---|---:|---:|---:|---:|---:|---:|\n"
        "| gpu | p4d.24xlarge | on-demand | 21.96 | 8 | 1 | 21.96 | 2 | 43.92 |\n"
        "| big-pool | p5.48xlarge | unpriced | - | 16 | 2 | - | 3 | - |\n"
        "| x | g5.12xlarge | reservation | 1,234.50 | 4 | 10 | 12,345.00 | 10 | 12,345.00 |\n"
    )
    assert render_cost_markdown(()).count("\n") == 2
    assert len(COST_HEADER) == 9
