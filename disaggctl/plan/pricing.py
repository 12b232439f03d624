"""AWS GPU instance prices (USD per instance-hour) and the cost of a deployment's GPUs.

The table holds Linux on-demand list prices. Source: the Amazon EC2 On-Demand pricing page
(aws.amazon.com/ec2/pricing/on-demand/), Linux, shared tenancy, as published on
``PRICES_AS_OF``; these types cost the same in us-east-1, us-east-2 and us-west-2. AWS changes GPU
prices (it cut P4/P5 prices in June 2025): override any entry with ``disagg:pricing.onDemand``.
Capacity Blocks and reservations have no list price here: give theirs in
``disagg:pricing.capacityBlocks`` / ``reservations`` (keyed by reservation id); without one the
pool is priced on demand and the cost line says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.config.instance_types import lookup_instance_type
from components.config.workload import PricingConfig

PRICES_SOURCE = "aws.amazon.com/ec2/pricing/on-demand (Linux, shared tenancy)"
PRICES_AS_OF = "2025-05-01"
PRICED_REGIONS = ("us-east-1", "us-east-2", "us-west-2")

ON_DEMAND_USD_PER_HOUR: dict[str, float] = {
    "p4d.24xlarge": 32.7726,  # 8x A100 40GB
    "p4de.24xlarge": 40.9657,  # 8x A100 80GB
    "p5.48xlarge": 98.32,  # 8x H100 80GB
    "p5e.48xlarge": 84.80,  # 8x H200 (Capacity Blocks / limited on-demand)
    "p5en.48xlarge": 84.80,  # 8x H200, EFAv3
    "p6-b200.48xlarge": 113.9328,  # 8x B200
    "g5.xlarge": 1.006,  # 1x A10G
    "g5.12xlarge": 5.672,  # 4x A10G
    "g5.48xlarge": 16.288,  # 8x A10G
    "g6.xlarge": 0.8048,  # 1x L4
    "g6.12xlarge": 4.6016,  # 4x L4
    "g6.48xlarge": 13.3504,  # 8x L4
    "g6e.12xlarge": 10.4926,  # 4x L40S
    "g6e.48xlarge": 30.1310,  # 8x L40S
}


@dataclass(frozen=True)
class PoolPrice:
    """Price of one node of a pool, and where it came from."""

    usd_per_instance_hour: float
    usd_per_gpu_hour: float
    basis: str
    """``on-demand``, ``on-demand (override)``, ``capacity block cr-…``, ``reservation cr-…``,
    or ``on-demand: no price for capacity block cr-… in disagg:pricing`` ."""


class PriceError(ValueError):
    """No price is known; the message names the key to set."""


def pool_price(
    instance_type: str,
    *,
    capacity_type: str = "on-demand",
    reservation_id: str | None = None,
    region: str | None = None,
    pricing: PricingConfig | None = None,
) -> PoolPrice:
    """Hourly price of one node of ``instance_type`` bought as ``capacity_type``."""
    pricing = pricing or PricingConfig()
    gpus = lookup_instance_type(instance_type).gpus
    if capacity_type == "capacity-block" and reservation_id in pricing.capacity_blocks:
        price = pricing.capacity_blocks[reservation_id]
        return PoolPrice(price, price / gpus, f"capacity block {reservation_id}")
    if reservation_id and reservation_id in pricing.reservations:
        price = pricing.reservations[reservation_id]
        return PoolPrice(price, price / gpus, f"reservation {reservation_id}")
    if instance_type in pricing.on_demand:
        price = pricing.on_demand[instance_type]
        basis = "on-demand (override)"
    elif instance_type in ON_DEMAND_USD_PER_HOUR:
        price = ON_DEMAND_USD_PER_HOUR[instance_type]
        basis = f"on-demand {PRICES_AS_OF}"
        if region and region not in PRICED_REGIONS:
            basis += f" (us-east-1 price; {region} not in the table)"
    else:
        raise PriceError(
            f"no price for instance type '{instance_type}': set disagg:pricing.onDemand."
            f"{instance_type} (USD per instance-hour)"
        )
    if capacity_type == "capacity-block":
        key = f"disagg:pricing.capacityBlocks.{reservation_id}" if reservation_id else "disagg:pricing"
        basis = f"on-demand price: no Capacity Block price, set {key}"
    return PoolPrice(price, price / gpus, basis)


def dollars_per_million_tokens(usd_per_hour: float, tokens_per_second: float) -> float:
    """Cost of a million output tokens at a sustained rate."""
    return usd_per_hour / (tokens_per_second * 3600.0) * 1e6
