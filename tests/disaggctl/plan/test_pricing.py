"""Prices and availability (disaggctl/plan/pricing.py): which price a pool gets, from where, and what is refused.

Each branch of ``pool_price`` on the smallest input that reaches it; the table's rows are data
with a source and a date (test_cost_plan.py checks both), so only the rules over them are tested here.
"""

from __future__ import annotations

import pytest

from components.config.workload import PricingConfig
from disaggctl.plan.pricing import (
    ON_DEMAND,
    PRICED_REGIONS,
    REFERENCE_REGION,
    ListPrice,
    PoolPrice,
    PriceError,
    check_offered,
    dollars_per_million_tokens,
    offered,
    pool_price,
)

P4D = ON_DEMAND[("us-east-1", "p4d.24xlarge")]
G5 = ON_DEMAND[("us-east-1", "g5.12xlarge")]


def test_a_row_is_confirmed_only_without_a_note() -> None:
    assert ListPrice(1.0, "2026-12", "page").confirmed is True
    assert ListPrice(1.0, "2026-12", "page", "approximate").confirmed is False
    assert P4D.confirmed and not G5.confirmed


def test_other_us_regions_copy_us_east_1_and_say_so() -> None:
    for region in ("us-east-2", "us-west-2"):
        for instance_type in ("p4d.24xlarge", "g5.12xlarge"):
            row, base = ON_DEMAND[(region, instance_type)], ON_DEMAND[("us-east-1", instance_type)]
            assert (row.usd_per_hour, row.as_of, row.source) == (base.usd_per_hour, base.as_of, base.source)
            assert row.note.endswith("assumed equal to us-east-1 (AWS lists these types at one price in "
                                     "us-east-1/-2 and us-west-2); not re-read")
            assert row.note.startswith(base.note) and not row.confirmed
    assert ON_DEMAND[("us-east-2", "p4d.24xlarge")].note.startswith("assumed")  # no leading "; " when base has none
    assert PRICED_REGIONS == ("us-east-1", "us-east-2", "us-west-2")


def test_offered_reads_the_availability_table() -> None:
    assert offered("p5en.48xlarge", "us-east-1") is True
    assert offered("p5en.48xlarge", "sa-east-1") is False
    assert offered("no-such-type", "us-east-1") is False


def test_check_offered_passes_known_pairs_no_region_and_buyer_priced_types() -> None:
    assert check_offered("p5e.48xlarge", "us-east-2") is None
    assert check_offered("p5e.48xlarge", None) is None
    assert check_offered("p5e.48xlarge", "us-east-1", PricingConfig(on_demand={"p5e.48xlarge": 70.0})) is None
    assert check_offered("p5e.48xlarge", "us-east-1", PricingConfig(on_demand={"p5.48xlarge": 70.0})) is not None


def test_check_offered_names_where_the_type_is_offered_and_the_fix() -> None:
    message = check_offered("p5e.48xlarge", "us-east-1")
    assert message is not None
    assert message.startswith("instance type 'p5e.48xlarge' is not offered in us-east-1 as far as the availability "
                              "table knows (")
    assert "offered in: us-east-2, us-west-2): choose another region or instance type" in message
    assert message.endswith("set disagg:pricing.onDemand.p5e.48xlarge to its price there (and add the region to "
                            "disaggctl/plan/pricing.py OFFERED_IN)")
    assert "offered in: no region listed)" in (check_offered("no-such-type", "us-east-1") or "")


def test_an_unknown_instance_type_is_refused_as_unknown_not_as_unpriced() -> None:
    with pytest.raises(ValueError, match="is not a GPU instance type this project knows") as caught:
        pool_price("m5.large")
    assert not isinstance(caught.value, PriceError)


def test_not_offered_is_refused_before_any_price_is_looked_up() -> None:
    with pytest.raises(PriceError, match="'p5e.48xlarge' is not offered in us-east-1"):
        pool_price("p5e.48xlarge", region="us-east-1", pricing=PricingConfig(reservations={"cr-1": 1.0}),
                   reservation_id="cr-1")


def test_on_demand_from_the_table_in_the_given_region() -> None:
    assert pool_price("p4d.24xlarge", region="us-east-1") == PoolPrice(P4D.usd_per_hour, "on-demand",
                                                                       "on-demand us-east-1 2026-12")
    g5 = pool_price("g5.12xlarge", region="us-west-2")
    assert g5 == PoolPrice(G5.usd_per_hour, "on-demand", "on-demand us-west-2 2025-05-01 (unconfirmed: see the row's "
                                                        "note in disaggctl/plan/pricing.py)")


def test_without_a_region_the_reference_regions_price_is_shown_and_said() -> None:
    price = pool_price("p4d.24xlarge")
    assert price.usd_per_instance_hour == P4D.usd_per_hour
    assert price.basis == f"on-demand {REFERENCE_REGION} 2026-12 (no region given: {REFERENCE_REGION} price)"


def test_a_region_without_table_rows_needs_the_buyers_price() -> None:
    with pytest.raises(PriceError) as caught:
        pool_price("p4d.24xlarge", region="eu-west-1")
    assert str(caught.value) == (
        "price not in the table for p4d.24xlarge in eu-west-1 (rows: us-east-1, us-east-2, us-west-2): "
        "set disagg:pricing.onDemand.p4d.24xlarge (USD per instance-hour in eu-west-1)"
    )
    priced = pool_price("p4d.24xlarge", region="eu-west-1", pricing=PricingConfig(on_demand={"p4d.24xlarge": 30.0}))
    assert priced == PoolPrice(30.0, "on-demand", "on-demand: disagg:pricing.onDemand")


def test_the_buyers_on_demand_price_overrides_the_table() -> None:
    price = pool_price("p4d.24xlarge", region="us-east-1", pricing=PricingConfig(on_demand={"p4d.24xlarge": 1.5}))
    assert (price.usd_per_instance_hour, price.kind) == (1.5, "on-demand")


def test_a_capacity_block_takes_its_own_price_only_as_a_capacity_block() -> None:
    pricing = PricingConfig(capacity_blocks={"cr-b": 31.0})
    block = pool_price("p5.48xlarge", capacity_type="capacity-block", reservation_id="cr-b", pricing=pricing)
    assert block == PoolPrice(31.0, "capacity block", "capacity block cr-b: disagg:pricing.capacityBlocks")
    # the same id on an on-demand pool is not a block price: a reservation billed at on-demand
    other = pool_price("p5.48xlarge", reservation_id="cr-b", region="us-east-1", pricing=pricing)
    assert (other.kind, other.usd_per_instance_hour) == ("reservation", ON_DEMAND[("us-east-1", "p5.48xlarge")].usd_per_hour)
    assert other.basis.startswith("reservation cr-b billed at the on-demand us-east-1 2026-12")


def test_a_capacity_block_without_its_price_falls_back_and_names_the_key() -> None:
    unnamed = pool_price("p5.48xlarge", capacity_type="capacity-block", region="us-east-1")
    assert unnamed.kind == "capacity block"
    assert unnamed.basis.endswith(": set disagg:pricing.capacityBlocks")
    named = pool_price("p5.48xlarge", capacity_type="capacity-block", reservation_id="cr-x", region="us-east-1",
                       pricing=PricingConfig(capacity_blocks={"cr-other": 1.0}))
    assert named.basis.startswith("no Capacity Block price, priced on-demand us-east-1 2026-12")
    assert named.basis.endswith(": set disagg:pricing.capacityBlocks.cr-x")


def test_a_reservation_with_its_own_price() -> None:
    pricing = PricingConfig(reservations={"cr-r": 12.0})
    price = pool_price("p4d.24xlarge", reservation_id="cr-r", region="us-east-1", pricing=pricing)
    assert price == PoolPrice(12.0, "reservation", "reservation cr-r: disagg:pricing.reservations")
    # a capacity block whose id is only priced as a reservation still is a reservation price (explicit beats table)
    block = pool_price("p4d.24xlarge", capacity_type="capacity-block", reservation_id="cr-r", region="us-east-1",
                       pricing=pricing)
    assert (block.usd_per_instance_hour, block.kind) == (12.0, "reservation")


def test_a_reservation_without_its_own_price_is_billed_on_demand() -> None:
    price = pool_price("p4d.24xlarge", reservation_id="cr-r", region="us-east-1",
                       pricing=PricingConfig(reservations={"cr-other": 1.0}))
    assert price == PoolPrice(P4D.usd_per_hour, "reservation", "reservation cr-r billed at the on-demand us-east-1 "
                                                               "2026-12 rate")


def test_dollars_per_million_tokens() -> None:
    assert dollars_per_million_tokens(36.0, 1000.0) == pytest.approx(10.0)
    assert dollars_per_million_tokens(7.2, 500.0) == pytest.approx(4.0)
