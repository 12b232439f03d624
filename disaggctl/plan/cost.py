"""The one cost model of plan, synth (summary, outputs.json) and the PR comment: whole nodes, priced.

Nodes are counted with :func:`components.config.capacity.nodes_needed`, the packing synth's
capacity check uses (pods of one group share a node, a multi-node group has its nodes to itself,
groups do not share nodes), because EC2 bills whole instances. Two figures per deployment:
*expected*, the groups as configured (plan sizes them to the target rate), and *worst case*,
every group at maxGroups. Per pool, the worst case is the pool at its ceiling (maxSize, or a
Capacity Block's instanceCount): what its node group may be scaled to. $/Mtok is priced at the
target rate (requestRate × outputTokens, or concurrency × tokens/s/user), never at what the
nodes could produce flat out. Pure functions over the stack file's raw (camelCase) mappings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from components.config.capacity import GroupDemand, nodes_needed, pool_supply
from components.config.cluster import CapacityBlockConfig, GpuNodePoolConfig
from components.config.instance_types import lookup_instance_type
from components.config.workload import PricingConfig, WorkloadConfig, typical
from engines.llm_api import GROUP_KEYS

from .pricing import PoolPrice, PriceError, dollars_per_million_tokens, pool_price

ROLES = GROUP_KEYS


@dataclass(frozen=True)
class PoolSpec:
    """What the cost model needs of one GPU pool."""

    name: str
    instance_type: str
    capacity_type: str
    reservation_id: str | None
    supply_nodes: int
    """Nodes the pool holds with every scaler at its maximum (capacity.pool_supply: a fixed
    managed node group holds desiredSize); what plan may fill."""
    ceiling_nodes: int
    """Nodes the pool's node group may be scaled to (maxSize, or the Capacity Block's size):
    the worst-case bill."""
    committed_nodes: int
    """Nodes paid whether used or not (a Capacity Block's instanceCount), else 0."""

    @property
    def gpus_per_node(self) -> int:
        return lookup_instance_type(self.instance_type).gpus


def pool_spec(raw: Mapping[str, Any]) -> PoolSpec:
    """A pool from its ``gpuNodePools[i]`` mapping (sizes default as GpuNodePoolConfig's)."""
    raw_block = raw.get("capacityBlock")
    block = CapacityBlockConfig.model_validate(raw_block) if isinstance(raw_block, dict) else None
    sizes = {
        "desired_size": int(raw.get("desiredSize", 1)),
        "max_size": int(raw.get("maxSize", 2)),
        "autoscaler": raw.get("autoscaler", "none"),
    }
    # the capacity check's own function on the fields it reads (the rest of the pool is not needed here)
    supply = pool_supply(GpuNodePoolConfig.model_construct(capacity_block=block, **sizes))
    ceiling = sizes["max_size"] if block is None else min(sizes["max_size"], block.instance_count)
    return PoolSpec(
        name=str(raw["name"]),
        instance_type=str(raw["instanceType"]),
        capacity_type=str(raw.get("capacityType", "on-demand")),
        reservation_id=raw.get("capacityReservationId"),
        supply_nodes=supply.nodes,
        ceiling_nodes=ceiling,
        committed_nodes=block.instance_count if block is not None else 0,
    )


def pool_specs(cluster: Mapping[str, Any]) -> dict[str, PoolSpec]:
    """Every GPU pool of a raw ``disagg:cluster``."""
    eks = cluster.get("eks") or {}
    return {str(p["name"]): pool_spec(p) for p in eks.get("gpuNodePools") or [] if isinstance(p, dict) and p.get("name")}


@dataclass(frozen=True)
class GroupShape:
    """One worker role: where it runs, how many groups (expected and at most) and their size."""

    role: str
    pool: str
    groups: int
    max_groups: int
    pods_per_group: int
    gpus_per_pod: int

    def nodes(self, gpus_per_node: int, groups: int | None = None) -> int:
        demand = GroupDemand(self.role, self.pool, self.max_groups, self.groups, self.pods_per_group, self.gpus_per_pod)
        return nodes_needed(demand, gpus_per_node, self.groups if groups is None else groups)

    @property
    def gpus(self) -> int:
        return self.groups * self.pods_per_group * self.gpus_per_pod

    @property
    def max_gpus(self) -> int:
        return self.max_groups * self.pods_per_group * self.gpus_per_pod


def group_shapes(deployment: Mapping[str, Any], pools: Mapping[str, PoolSpec]) -> list[GroupShape]:
    """The worker roles of a raw deployment (gpusPerPod defaults to a whole node, as synth's)."""
    shapes = []
    for role in ROLES:
        group = deployment.get(role)
        if not isinstance(group, dict):
            continue
        pool = pools.get(str(group.get("pool")))
        groups = int(group.get("groups", 1))
        per_pod = group.get("gpusPerPod") or (pool.gpus_per_node if pool else 0)
        shapes.append(GroupShape(
            role=role,
            pool=str(group.get("pool")),
            groups=groups,
            max_groups=max(groups, int(group.get("maxGroups") or groups)),
            pods_per_group=int(group.get("podsPerGroup", 1)),
            gpus_per_pod=int(per_pod),
        ))
    return shapes


@dataclass(frozen=True)
class CostRow:
    """One pool's share: nodes and $/hour expected and at worst, with its price and where it is from."""

    pool: str
    instance_type: str
    kind: str
    """on-demand | capacity block | reservation | unpriced: each is a row of its own."""
    basis: str
    usd_per_node_hour: float | None
    gpus: int
    nodes: int
    max_nodes: int
    usd_per_hour: float | None
    max_usd_per_hour: float | None

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("usd_per_node_hour", "usd_per_hour", "max_usd_per_hour"):
            if out[key] is not None:
                out[key] = round(out[key], 4)
        return out


@dataclass(frozen=True)
class Cost:
    """A deployment's (or a stack's) rows; totals are None when any row has no price."""

    rows: tuple[CostRow, ...]
    problems: tuple[str, ...] = ()

    def _total(self, key: str) -> float | None:
        values = [getattr(r, key) for r in self.rows]
        return None if any(v is None for v in values) else float(sum(values))

    @property
    def usd_per_hour(self) -> float | None:
        return self._total("usd_per_hour")

    @property
    def max_usd_per_hour(self) -> float | None:
        return self._total("max_usd_per_hour")

    @property
    def nodes(self) -> int:
        return sum(r.nodes for r in self.rows)

    @property
    def max_nodes(self) -> int:
        return sum(r.max_nodes for r in self.rows)

    @property
    def gpus(self) -> int:
        return sum(r.gpus for r in self.rows)


def price_of(pool: PoolSpec, region: str | None, pricing: PricingConfig) -> PoolPrice | PriceError:
    try:
        return pool_price(pool.instance_type, capacity_type=pool.capacity_type, reservation_id=pool.reservation_id,
                          region=region, pricing=pricing)
    except PriceError as err:
        return err


def _row(pool: PoolSpec, price: PoolPrice | PriceError, gpus: int, nodes: int, max_nodes: int) -> CostRow:
    if isinstance(price, PriceError):
        return CostRow(pool.name, pool.instance_type, "unpriced", str(price), None, gpus, nodes, max_nodes, None, None)
    each = price.usd_per_instance_hour
    return CostRow(pool.name, pool.instance_type, price.kind, price.basis, each, gpus, nodes, max_nodes,
                   nodes * each, max_nodes * each)


def deployment_cost(
    shapes: Iterable[GroupShape], pools: Mapping[str, PoolSpec], region: str | None, pricing: PricingConfig
) -> Cost:
    """Whole nodes per pool for ``shapes`` (expected: their groups; worst: maxGroups), priced."""
    by_pool: dict[str, list[GroupShape]] = {}
    problems: list[str] = []
    for shape in shapes:
        if shape.pool not in pools:
            problems.append(f"{shape.role}: pool '{shape.pool}' has no AWS instance type: no price")
            continue
        by_pool.setdefault(shape.pool, []).append(shape)
    rows = []
    for name, mine in sorted(by_pool.items()):
        pool = pools[name]
        per_node = pool.gpus_per_node
        price = price_of(pool, region, pricing)
        if isinstance(price, PriceError):
            problems.append(str(price))
        rows.append(_row(pool, price, sum(s.gpus for s in mine), sum(s.nodes(per_node) for s in mine),
                         sum(s.nodes(per_node, s.max_groups) for s in mine)))
    return Cost(tuple(rows), tuple(problems))


def pool_costs(
    pools: Mapping[str, PoolSpec], demand_nodes: Mapping[str, int], demand_gpus: Mapping[str, int],
    region: str | None, pricing: PricingConfig,
) -> Cost:
    """The stack's pools: expected = the deployments' nodes there (at least a Capacity Block's
    paid-for size), worst case = the pool at its ceiling."""
    rows = []
    problems = []
    for name, pool in sorted(pools.items()):
        price = price_of(pool, region, pricing)
        if isinstance(price, PriceError):
            problems.append(str(price))
        nodes = max(demand_nodes.get(name, 0), pool.committed_nodes)
        rows.append(_row(pool, price, demand_gpus.get(name, 0), nodes, max(pool.ceiling_nodes, nodes)))
    return Cost(tuple(rows), tuple(problems))


def target_tokens_per_second(workload: WorkloadConfig, tokens_per_s_per_user: float | None = None) -> float | None:
    """Output tokens/s the workload asks for: requestRate × typical outputTokens, or concurrency ×
    tokens/s/user (the prediction's); None when neither is known."""
    if workload.request_rate is not None:
        return workload.request_rate * typical(workload.output_tokens)
    if workload.concurrency is not None and tokens_per_s_per_user:
        return workload.concurrency * tokens_per_s_per_user
    return None


def usd_per_million_tokens(usd_per_hour: float | None, tokens_per_second: float | None) -> float | None:
    """$ per million output tokens at ``tokens_per_second`` (the target rate)."""
    if usd_per_hour is None or not tokens_per_second:
        return None
    return dollars_per_million_tokens(usd_per_hour, tokens_per_second)


# --------------------------------------------------------------------------- rendering (both formats)
COST_HEADER = ("pool", "instance", "price", "$/node-h", "GPUs", "nodes", "$/hour", "max nodes", "max $/hour")


def _money(value: float | None, fmt: str = ",.2f") -> str:
    return "-" if value is None else format(value, fmt)


def cost_cells(row: CostRow) -> tuple[str, ...]:
    return (row.pool, row.instance_type, row.kind, _money(row.usd_per_node_hour), str(row.gpus), str(row.nodes),
            _money(row.usd_per_hour), str(row.max_nodes), _money(row.max_usd_per_hour))


def render_cost_text(rows: Iterable[CostRow], indent: str = "") -> str:
    table = [COST_HEADER, *(cost_cells(r) for r in rows)]
    widths = [max(len(r[i]) for r in table) for i in range(len(COST_HEADER))]
    return "".join(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n" for r in table)


def render_cost_markdown(rows: Iterable[CostRow]) -> str:
    lines = ["| " + " | ".join(COST_HEADER) + " |", "|---|---|---|" + "---:|" * (len(COST_HEADER) - 3)]
    lines += ["| " + " | ".join(cost_cells(r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def row_from_json(data: Mapping[str, Any]) -> CostRow:
    return CostRow(**{k: data.get(k) for k in CostRow.__dataclass_fields__})  # type: ignore[arg-type]
