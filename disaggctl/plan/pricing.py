"""AWS GPU instance prices per region (USD per instance-hour) and where each type is offered.

Every row carries its source, the date it was read and, where it was not read from AWS's own
page for that region, why it is believed (``note``). A pair that is not in the availability
table is refused (the instance type may not exist there: p5en.48xlarge in sa-east-1); a pair
offered but without a price here has no cost until ``disagg:pricing.onDemand`` gives one.
Capacity Blocks have no list price here (AWS re-prices them; the buyer pays what the block cost):
give it in ``disagg:pricing.capacityBlocks``. An on-demand capacity reservation is billed at the
on-demand rate unless ``disagg:pricing.reservations`` says otherwise (e.g. a Savings Plan).

Refresh (docs/planning.md, "Refreshing prices"): read each type on
https://aws.amazon.com/ec2/pricing/on-demand/ (Linux, shared tenancy, per region) or run
``aws pricing get-products --service-code AmazonEC2 --region us-east-1 --filters
Type=TERM_MATCH,Field=instanceType,Value=<type> Type=TERM_MATCH,Field=regionCode,Value=<region>
Type=TERM_MATCH,Field=operatingSystem,Value=Linux Type=TERM_MATCH,Field=tenancy,Value=Shared
Type=TERM_MATCH,Field=preInstalledSw,Value=NA Type=TERM_MATCH,Field=capacitystatus,Value=Used``,
and the offerings with ``aws ec2 describe-instance-type-offerings --location-type region
--filters Name=instance-type,Values=<type> --region <region>``; update the rows, their
``as_of`` and ``source``; ``tests/disaggctl/plan/test_cost_plan.py`` checks every row has both.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.config.instance_types import lookup_instance_type
from components.config.workload import PricingConfig

ON_DEMAND_PAGE = "aws.amazon.com/ec2/pricing/on-demand (Linux, shared tenancy)"
OFFERINGS_SOURCE = (
    "docs.aws.amazon.com/ec2/latest/instancetypes/ec2-instance-regions.html "
    "(aws ec2 describe-instance-type-offerings --location-type region)"
)
OFFERINGS_AS_OF = "2025-06"
REFERENCE_REGION = "us-east-1"
"""Region whose price is shown (with a note) when no region is known (bare ``plan --instance-types``)."""


@dataclass(frozen=True)
class ListPrice:
    """One on-demand list price and its provenance."""

    usd_per_hour: float
    as_of: str
    source: str
    note: str = ""
    """Empty when read for this region from ``source``; otherwise how the value was obtained."""

    @property
    def confirmed(self) -> bool:
        return not self.note


_CUT_SOURCE = f"{ON_DEMAND_PAGE}, after the June 2025 P4/P5 price cut, us-east-1 as read for issue 23"
_OLD_SOURCE = f"{ON_DEMAND_PAGE}, us-east-1, 2025-05-01 table (before the June 2025 P4/P5 cut)"
_SAME_US = "assumed equal to us-east-1 (AWS lists these types at one price in us-east-1/-2 and us-west-2); not re-read"
_NOT_CUT = "not re-confirmed since 2025-05-01 (the June 2025 cut covered P4 and P5 only)"

# Rows are data reviewed against their source (docs/planning.md, "Refreshing prices"), not rules: a
# price ± 1 is not a bug a test can see, so tools/mutation.py leaves them alone (docs/testing.md).
_US_EAST_1: dict[str, ListPrice] = {
    "p4d.24xlarge": ListPrice(21.96, "2026-12", _CUT_SOURCE),  # pragma: no mutate
    "p4de.24xlarge": ListPrice(
        27.494, "2026-12", _CUT_SOURCE,  # pragma: no mutate
        "derived: the 2025-05-01 price 40.9657 / 1.49 (issue 23: the old price was +49%); not read from the page",
    ),
    "p5.48xlarge": ListPrice(55.04, "2026-12", _CUT_SOURCE, "approximate (~55.04 in issue 23); not read to the cent"),  # pragma: no mutate
    "p5en.48xlarge": ListPrice(63.30, "2026-12", _CUT_SOURCE, "approximate (~63.30 in issue 23); not read to the cent"),  # pragma: no mutate
    "p5e.48xlarge": ListPrice(
        63.30, "2026-12", _CUT_SOURCE,  # pragma: no mutate
        "not confirmed: p5e is sold mostly as Capacity Blocks; priced as p5en.48xlarge (same 8x H200)",
    ),
    "p6-b200.48xlarge": ListPrice(113.9328, "2025-05-01", _OLD_SOURCE, _NOT_CUT),  # pragma: no mutate
    "g5.xlarge": ListPrice(1.006, "2025-05-01", _OLD_SOURCE, _NOT_CUT),  # pragma: no mutate
    "g5.12xlarge": ListPrice(5.672, "2025-05-01", _OLD_SOURCE, _NOT_CUT),  # pragma: no mutate
    "g5.48xlarge": ListPrice(16.288, "2025-05-01", _OLD_SOURCE, _NOT_CUT),  # pragma: no mutate
    "g6.xlarge": ListPrice(0.8048, "2025-05-01", _OLD_SOURCE, _NOT_CUT),  # pragma: no mutate
    "g6.12xlarge": ListPrice(4.6016, "2025-05-01", _OLD_SOURCE, _NOT_CUT),  # pragma: no mutate
    "g6.48xlarge": ListPrice(13.3504, "2025-05-01", _OLD_SOURCE, _NOT_CUT),  # pragma: no mutate
    "g6e.12xlarge": ListPrice(10.4926, "2025-05-01", _OLD_SOURCE, _NOT_CUT),  # pragma: no mutate
    "g6e.48xlarge": ListPrice(30.131, "2025-05-01", _OLD_SOURCE, _NOT_CUT),  # pragma: no mutate
}


def _same_as_us_east_1(price: ListPrice) -> ListPrice:
    return ListPrice(price.usd_per_hour, price.as_of, price.source, "; ".join(filter(None, (price.note, _SAME_US))))


OFFERED_IN: dict[str, frozenset[str]] = {
    "p4d.24xlarge": frozenset({"us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1"}),
    "p4de.24xlarge": frozenset({"us-east-1", "us-west-2"}),
    "p5.48xlarge": frozenset({"us-east-1", "us-east-2", "us-west-2", "eu-north-1", "ap-northeast-1"}),
    "p5e.48xlarge": frozenset({"us-east-2", "us-west-2"}),
    "p5en.48xlarge": frozenset({"us-east-1", "us-east-2", "us-west-2", "ap-northeast-1"}),
    "p6-b200.48xlarge": frozenset({"us-east-1", "us-east-2", "us-west-2"}),
    "g5.xlarge": frozenset({"us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1"}),
    "g5.12xlarge": frozenset({"us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1"}),
    "g5.48xlarge": frozenset({"us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1"}),
    "g6.xlarge": frozenset({"us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1"}),
    "g6.12xlarge": frozenset({"us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1"}),
    "g6.48xlarge": frozenset({"us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1"}),
    "g6e.12xlarge": frozenset({"us-east-1", "us-east-2", "us-west-2"}),
    "g6e.48xlarge": frozenset({"us-east-1", "us-east-2", "us-west-2"}),
}
"""Instance type -> regions that offer it (source ``OFFERINGS_SOURCE`` as of ``OFFERINGS_AS_OF``).
Only regions known to offer the type are listed; a region missing here is refused, not assumed."""

ON_DEMAND: dict[tuple[str, str], ListPrice] = {
    **{("us-east-1", t): p for t, p in _US_EAST_1.items()},
    **{(r, t): _same_as_us_east_1(p) for r in ("us-east-2", "us-west-2") for t, p in _US_EAST_1.items()},
}
"""(region, instance type) -> Linux on-demand list price. Regions outside the US have no rows yet:
their prices differ and were not read (a warning, or ``disagg:pricing.onDemand``)."""

PRICED_REGIONS = tuple(sorted({region for region, _ in ON_DEMAND}))


@dataclass(frozen=True)
class PoolPrice:
    """Price of one node of a pool, what it is, and where it came from."""

    usd_per_instance_hour: float
    kind: str
    """``on-demand``, ``capacity block`` or ``reservation``: a row of its own in cost tables."""
    basis: str
    """One line: where the number comes from (and what is unconfirmed about it)."""


class PriceError(ValueError):
    """No price is known, or the instance type is not offered in the region; the message names
    the key to set."""


def offered(instance_type: str, region: str) -> bool:
    return region in OFFERED_IN.get(instance_type, frozenset())


def check_offered(instance_type: str, region: str | None, pricing: PricingConfig | None = None) -> str | None:
    """None when ``instance_type`` is known to exist in ``region`` (or the buyer priced it), else
    the one-line reason and fix."""
    pricing = pricing or PricingConfig()
    if region is None or offered(instance_type, region) or instance_type in pricing.on_demand:
        return None
    where = sorted(OFFERED_IN.get(instance_type, ()))
    return (
        f"instance type '{instance_type}' is not offered in {region} as far as the availability table "
        f"knows ({OFFERINGS_SOURCE}, {OFFERINGS_AS_OF}; offered in: {', '.join(where) or 'no region listed'}): "
        "choose another region or instance type; if `aws ec2 describe-instance-type-offerings --location-type "
        f"region --filters Name=instance-type,Values={instance_type} --region {region}` lists it now, set "
        f"disagg:pricing.onDemand.{instance_type} to its price there (and add the region to "
        "disaggctl/plan/pricing.py OFFERED_IN)"
    )


def pool_price(
    instance_type: str,
    *,
    capacity_type: str = "on-demand",
    reservation_id: str | None = None,
    region: str | None = None,
    pricing: PricingConfig | None = None,
) -> PoolPrice:
    """Hourly price of one node of ``instance_type`` in ``region`` bought as ``capacity_type``.

    Raises :class:`PriceError` when the type is not offered in the region, or no price is known."""
    pricing = pricing or PricingConfig()
    lookup_instance_type(instance_type)  # a known GPU type, or ValueError naming the known ones
    refusal = check_offered(instance_type, region, pricing)
    if refusal:
        raise PriceError(refusal)
    if capacity_type == "capacity-block" and reservation_id in pricing.capacity_blocks:
        price = pricing.capacity_blocks[reservation_id]
        return PoolPrice(price, "capacity block", f"capacity block {reservation_id}: disagg:pricing.capacityBlocks")
    if reservation_id and reservation_id in pricing.reservations:
        price = pricing.reservations[reservation_id]
        return PoolPrice(price, "reservation", f"reservation {reservation_id}: disagg:pricing.reservations")
    if instance_type in pricing.on_demand:
        price, basis = pricing.on_demand[instance_type], "on-demand: disagg:pricing.onDemand"
    else:
        shown_region = region or REFERENCE_REGION
        row = ON_DEMAND.get((shown_region, instance_type))
        if row is None:
            raise PriceError(
                f"price not in the table for {instance_type} in {shown_region} (rows: {', '.join(PRICED_REGIONS)}): "
                f"set disagg:pricing.onDemand.{instance_type} (USD per instance-hour in {shown_region})"
            )
        price = row.usd_per_hour
        basis = f"on-demand {shown_region} {row.as_of}" + (" (unconfirmed: see the row's note in disaggctl/plan/pricing.py)" if row.note else "")
        if region is None:
            basis += f" (no region given: {REFERENCE_REGION} price)"
    if capacity_type == "capacity-block":
        key = f"disagg:pricing.capacityBlocks.{reservation_id}" if reservation_id else "disagg:pricing.capacityBlocks"
        return PoolPrice(price, "capacity block", f"no Capacity Block price, priced {basis}: set {key}")
    if reservation_id:
        return PoolPrice(price, "reservation", f"reservation {reservation_id} billed at the {basis} rate")
    return PoolPrice(price, "on-demand", basis)


def dollars_per_million_tokens(usd_per_hour: float, tokens_per_second: float) -> float:
    """Cost of a million output tokens at a sustained rate."""
    return usd_per_hour / (tokens_per_second * 3600.0) * 1e6
