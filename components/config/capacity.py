"""Capacity that really exists: what the scalers may ask for, checked against what the pools hold.

Pure functions, evaluated on the validated configuration before any resource is declared
(:func:`check_capacity`, called from ``StackConfig.cross_check``): every autoscaler driven to its
maximum must fit the GPU pools' maxima, multi-node groups need a network topology domain each,
Capacity Blocks and reservations are used the way EC2 and EKS accept them, weights are read from
storage in the pools' zone, and pods ask for the host memory their ranks use.

The one non-obvious decision: a managed node group without an autoscaler supplies exactly
``desiredSize`` nodes (nothing adds one), so worker-group autoscaling beyond it is an error, not
a hope. Each AWS rule names the document it follows, and a test names it too.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from components.config.cluster import EksConfig, GpuNodePoolConfig
from engines.catalog import MODELS

NAMESPACE = "disagg"
GIB = 2**30

KARPENTER_CAPACITY_BLOCK_DRAIN_LEAD = timedelta(minutes=10)
"""Karpenter (aws/karpenter-provider-aws v1.14.1, website/content/en/preview/tasks/odcrs.md):
nodes of a Capacity Block are drained 10 minutes before EC2 begins terminating them."""
RANK_OVERHEAD_GIB = 6.0
"""Host memory of one executor rank besides its weights: CUDA context, PyTorch/TRT-LLM runtime,
NCCL/UCX buffers and the Python process (measured order of magnitude, rounded up)."""
MEMORY_HEADROOM = 1.10
"""Margin on the computed host memory (page cache of the weight files, allocator slack)."""


# --- pure capacity math ------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupDemand:
    """What one worker group asks of its pool at its maximum."""

    where: str
    """Config key of the group, e.g. ``disagg:deployments[0].workers``."""
    pool: str
    max_groups: int
    min_groups: int
    pods_per_group: int
    gpus_per_pod: int
    efa: bool = False

    @property
    def multi_node(self) -> bool:
        return self.pods_per_group > 1


def pods_per_node(gpus_per_node: int, gpus_per_pod: int) -> int:
    """Pods of ``gpus_per_pod`` GPUs one node holds (at least 1 when the pod fits)."""
    return max(1, gpus_per_node // gpus_per_pod) if gpus_per_pod <= gpus_per_node else 0


def nodes_needed(demand: GroupDemand, gpus_per_node: int, groups: int | None = None) -> int:
    """Nodes ``groups`` (default: the maximum) groups occupy; pods of a group may share a node."""
    count = demand.max_groups if groups is None else groups
    per_node = pods_per_node(gpus_per_node, demand.gpus_per_pod)
    if per_node == 0:
        return 0
    if demand.multi_node:
        # LWS exclusive topology: a multi-node group shares none of its nodes with another group
        return count * math.ceil(demand.pods_per_group / per_node)
    return math.ceil(count / per_node)


def efa_interfaces_per_pod(efa_interfaces: int, gpus_per_node: int, gpus_per_pod: int) -> int:
    """EFA interfaces a pod requests for its share of the node (``NodePool.fabric_resources``)."""
    if not efa_interfaces:
        return 0
    return max(1, int(efa_interfaces * gpus_per_pod / gpus_per_node))


def weight_bytes_per_param(dtype: str = "bfloat16", quantization: str = "none") -> float:
    """Bytes one parameter takes in the checkpoint the ranks load."""
    q = quantization.lower()
    if q in ("fp8", "int8", "int8_sq", "w8a8", "w8a16"):
        return 1.0
    if q in ("int4_awq", "w4a16", "w4a8_awq", "nvfp4", "fp4", "int4"):
        return 0.5
    return 4.0 if dtype in ("float32", "fp32") else 2.0


def host_memory_request_gib(
    param_count: float,
    bytes_per_param: float,
    world_size: int,
    ranks_per_pod: int,
    shm_gib: float,
    rank_overhead_gib: float = RANK_OVERHEAD_GIB,
) -> int:
    """Memory request (= limit) of a pod running ``ranks_per_pod`` ranks of a ``world_size`` model.

    Each rank stages its shard of the weights (``param_count × bytes_per_param / world_size``) in
    host memory while loading, besides its runtime; the RAM-backed ``/dev/shm`` (an emptyDir of
    medium Memory) is charged to the same cgroup, so it is added, not hoped for.
    Llama-3.1-70B in bf16, tp 8 × pp 2, 8 ranks per pod, 64 GiB shm: 182 GiB.
    """
    shard_gib = param_count * bytes_per_param / world_size / GIB
    ranks_gib = ranks_per_pod * (shard_gib + rank_overhead_gib)
    return math.ceil((ranks_gib + shm_gib) * MEMORY_HEADROOM)


def stream_drain_seconds(
    max_output_tokens: int,
    time_per_output_token_s: float,
    time_to_first_token_s: float = 10.0,
    margin_s: int = 30,
) -> int:
    """Seconds a pod must keep serving after it is told to stop, so no stream is cut.

    The longest request: its first token, then ``max_output_tokens`` at ``time_per_output_token_s``
    each, plus a margin. Use it as the preStop drain and terminationGracePeriodSeconds (+ a few
    seconds for the process to exit). 1024 tokens at 50 ms TPOT, 10 s TTFT: 92 s.
    """
    return math.ceil(time_to_first_token_s + max_output_tokens * time_per_output_token_s) + margin_s


TIME_PER_OUTPUT_TOKEN_S = 0.05
"""TPOT estimate that sizes the scale-in drain: 50 ms per token is slower than the decode step of
every catalog model on its pools, so the drain errs long."""


def max_output_tokens(config: Any, deployment: Any) -> int:
    """Longest output a request of ``deployment`` can get: the frontend caps prompt + output at the
    shortest maxSeqLen of its servers (llmapi), or of its engines (engine), so a one-token prompt
    leaves ``maxSeqLen − 1``."""
    if deployment.runtime == "llmapi":
        lengths = [group.llm_api.max_seq_len for group in deployment.worker_groups().values()]
    else:
        lengths = [
            config.engines[group.engine].max_seq_len
            for group in deployment.worker_groups().values()
            if group.engine in config.engines
        ]
    return max(1, min(lengths, default=2) - 1)


def deployment_drain_seconds(config: Any, deployment: Any) -> int:
    """:func:`stream_drain_seconds` of ``deployment``'s longest stream at the TPOT estimate."""
    return stream_drain_seconds(max_output_tokens(config, deployment), TIME_PER_OUTPUT_TOKEN_S)


def llmapi_group_memory_gib(config: Any, group: Any, gpus_per_pod: int) -> int | None:
    """Memory request (= limit) of an llmapi group pod: its ranks' shards of the checkpoint plus
    their runtime plus the RAM-backed /dev/shm (:func:`host_memory_request_gib`); None when the
    model or the shm size is unknown."""
    source = config.models.get(group.model or "")
    shm = quantity_gib(group.shm_size)
    if source is None or shm is None:
        return None
    world = group.llm_api.tensor_parallel_size * group.llm_api.pipeline_parallel_size
    return host_memory_request_gib(
        source.info.param_count,
        weight_bytes_per_param("bfloat16", source.quantization),
        max(world, 1),
        gpus_per_pod,
        shm,
    )


_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?$")
_FACTORS = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def quantity_gib(quantity: str) -> float | None:
    """A Kubernetes memory quantity in GiB (None when it cannot be read)."""
    match = _QUANTITY.match(str(quantity).strip())
    if not match:
        return None
    return float(match.group(1)) * _FACTORS[match.group(2)] / GIB


# --- the report --------------------------------------------------------------------------------


@dataclass
class CapacityReport:
    """Problems (the stack is refused) and warnings (printed, the stack goes on)."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PoolSupply:
    """Nodes a pool can hold when every scaler is at its maximum, and why."""

    nodes: int
    reason: str


def pool_supply(pool: GpuNodePoolConfig) -> PoolSupply:
    """The most nodes ``pool`` will ever hold."""
    block = pool.capacity_block
    if pool.autoscaler == "karpenter":
        if block is not None and block.instance_count < pool.max_size:
            return PoolSupply(block.instance_count, f"its Capacity Block holds {block.instance_count}")
        return PoolSupply(pool.max_size, f"Karpenter launches up to maxSize {pool.max_size}")
    if block is not None:
        nodes = min(pool.max_size, block.instance_count)
        return PoolSupply(nodes, f"the block's scheduled scale-out sets {nodes} (min of maxSize and instanceCount)")
    return PoolSupply(
        pool.desired_size,
        f"it is a managed node group fixed at desiredSize {pool.desired_size} (autoscaler: none, "
        "nothing adds a node)",
    )


def group_demands(config: Any) -> list[GroupDemand]:
    """Every worker group of the stack at its bounds (``config``: a StackConfig)."""
    pools = config.cluster.node_pools()
    demands = []
    for index, deployment in enumerate(config.deployments):
        for role, group in deployment.worker_groups().items():
            pool = pools.get(group.pool)
            if pool is None:
                continue
            hi = group.max_groups if group.max_groups is not None else group.groups
            lo = group.min_groups if group.min_groups is not None else group.groups
            demands.append(
                GroupDemand(
                    where=f"{NAMESPACE}:deployments[{index}].{role}",
                    pool=group.pool,
                    max_groups=hi,
                    min_groups=lo,
                    pods_per_group=group.pods_per_group,
                    gpus_per_pod=group.gpus_per_pod or pool.gpus_per_node,
                    efa=pool.fabric == "efa",
                )
            )
    return demands


def utc_now() -> datetime:
    """The clock Capacity Blocks are judged by (tests pin it: tests/conftest.py)."""
    return datetime.now(timezone.utc)


def check_capacity(config: Any, now: datetime | None = None, drain_seconds: int | None = None) -> CapacityReport:
    """All capacity rules for a validated StackConfig; ``now`` (UTC) dates the Capacity Blocks;
    ``drain_seconds`` (:func:`stream_drain_seconds` of the serving tiers) is checked against the
    time a Capacity Block leaves for draining."""
    now = now or utc_now()
    report = CapacityReport()
    demands = group_demands(config)
    eks = config.cluster.eks
    if eks is not None:
        for index, pool in enumerate(eks.gpu_node_pools):
            where = f"{NAMESPACE}:cluster.eks.gpuNodePools[{index}]"
            _pool_rules(where, pool, demands, now, report)
            if drain_seconds is not None:
                _block_drain(where, pool, drain_seconds, report)
        _storage_zone(eks, demands, report)
        _system_cpu(eks, config.deployments, report)
    existing = config.cluster.existing
    if existing is not None:
        _existing_cluster(existing, config.deployments, demands, report)
    pools = config.cluster.node_pools()
    for name, pool in sorted(pools.items()):
        mine = [d for d in demands if d.pool == name]
        _efa_share(pool, mine, report)
    _memory(config, report)
    return report


def _pool_rules(
    where: str, pool: GpuNodePoolConfig, demands: list[GroupDemand], now: datetime, report: CapacityReport
) -> None:
    mine = [d for d in demands if d.pool == pool.name]
    gpus = pool.instance.gpus
    block = pool.capacity_block
    # EC2 User Guide, "Capacity Reservations for cluster placement groups": a reservation serves a
    # cluster placement group only if it was created in it; the group this stack creates is new.
    if pool.capacity_reservation_id and pool.placement_group:
        report.problems.append(
            f"{where}.placementGroup: pool '{pool.name}' targets reservation "
            f"{pool.capacity_reservation_id} and a cluster placement group this stack creates, but a "
            "reservation belongs to a cluster placement group only if it was created in it: set "
            "placementGroupName to the reservation's own group (placementGroup: false), or drop the "
            "placement group"
        )
    if pool.capacity_type == "capacity-block":
        # EC2 User Guide, "Capacity Blocks for ML"; EKS User Guide, "Create a managed node group
        # with Capacity Blocks for ML": desired 0 until the block is active, zero before it ends.
        if block is None:
            report.problems.append(
                f"{where}.capacityBlock: pool '{pool.name}' is on Capacity Block "
                f"{pool.capacity_reservation_id} but its start, end and size are not given, so nothing "
                "can wait for the start or drain before the end: add capacityBlock {start, end, "
                "instanceCount} as the EC2 console shows them"
            )
        if pool.autoscaler == "none" and (pool.min_size or pool.desired_size):
            report.problems.append(
                f"{where}.desiredSize: pool '{pool.name}' is a managed node group on a Capacity Block "
                f"with minSize {pool.min_size} / desiredSize {pool.desired_size}; EKS cannot launch "
                "before the block is active (pulumi up waits and fails) and must be at 0 for version "
                "upgrades: set minSize: 0 and desiredSize: 0 (scheduled actions scale the group out at "
                "the start and to zero before the end), or autoscaler: karpenter"
            )
        if block is not None and pool.max_size > block.instance_count:
            report.problems.append(
                f"{where}.maxSize: {pool.max_size} nodes, but Capacity Block "
                f"{pool.capacity_reservation_id} holds {block.instance_count} instances: set maxSize: "
                f"{block.instance_count}"
            )
        if block is not None and now >= block.termination_at():
            report.problems.append(
                f"{where}.capacityBlock.end: the block ends {block.end.isoformat()} (instances are "
                "terminated from 30 minutes before): buy a new block and update capacityBlock and "
                "capacityReservationId, or remove the pool"
            )
        elif block is not None and now < block.start:
            for demand in mine:
                if demand.min_groups:
                    report.warnings.append(
                        f"{demand.where}.minGroups: {demand.min_groups} group(s) on pool '{pool.name}' "
                        f"stay Pending until its Capacity Block starts at {block.start.isoformat()}"
                    )
    supply = pool_supply(pool)
    needed = sum(nodes_needed(d, gpus) for d in mine)
    if needed > supply.nodes:
        detail = ", ".join(
            f"{d.where} maxGroups {d.max_groups} × podsPerGroup {d.pods_per_group} × gpusPerPod "
            f"{d.gpus_per_pod} → {nodes_needed(d, gpus)}"
            for d in mine
        )
        fix = (
            f"set autoscaler: karpenter with maxSize ≥ {needed}"
            if pool.autoscaler == "none" and block is None
            else f"raise maxSize to {needed}" + (" (and buy a larger block)" if block else "")
        )
        report.problems.append(
            f"{where}: the worker groups at their maximum need {needed} {pool.instance_type} nodes "
            f"({detail}), but pool '{pool.name}' holds at most {supply.nodes}: {supply.reason}: {fix}, "
            "or lower maxGroups"
        )
    _topology(where, pool, mine, report)


def _block_drain(where: str, pool: GpuNodePoolConfig, drain_seconds: int, report: CapacityReport) -> None:
    """The longest stream finishes before EC2 terminates a Capacity Block's instances."""
    block = pool.capacity_block
    if block is None:
        return
    if pool.autoscaler == "karpenter":
        available = int(KARPENTER_CAPACITY_BLOCK_DRAIN_LEAD.total_seconds())
        if drain_seconds > available:
            report.warnings.append(
                f"{where}.capacityBlock: the serving pods drain for {drain_seconds}s, but Karpenter "
                f"starts draining Capacity Block nodes only {available}s before EC2 terminates them: "
                "streams longer than that are cut at the block's end: lower maxSeqLen (llmApi or the engine's: the "
                "longest output is maxSeqLen − 1 tokens) or stop sending long requests before the block ends"
            )
    elif drain_seconds > block.drain_margin_minutes * 60:
        report.warnings.append(
            f"{where}.capacityBlock.drainMarginMinutes: {block.drain_margin_minutes} minutes, but the "
            f"serving pods drain for {drain_seconds}s: set drainMarginMinutes to "
            f"{math.ceil(drain_seconds / 60)} or more"
        )


def _topology(where: str, pool: GpuNodePoolConfig, mine: list[GroupDemand], report: CapacityReport) -> None:
    """LWS exclusive topology: each multi-node EFA group takes a network-node-layer-3 domain."""
    multi = [d for d in mine if d.multi_node and d.efa]
    if not multi:
        return
    needed = sum(d.max_groups for d in multi)
    keys = ", ".join(d.where for d in multi)
    if pool.topology_domains is None:
        report.warnings.append(
            f"{where}.topologyDomains: {keys} need {needed} distinct topology.k8s.aws/network-node-layer-3 "
            f"domains at their maximum (a multi-node group takes one exclusively), but how many the "
            f"pool '{pool.name}' spans is unknown; groups beyond it stay Pending: set topologyDomains "
            "to what `aws ec2 describe-instance-topology` reports for the pool's capacity"
        )
    elif pool.topology_domains < needed:
        report.problems.append(
            f"{where}.topologyDomains: pool '{pool.name}' spans {pool.topology_domains} "
            f"topology.k8s.aws/network-node-layer-3 domain(s), but {keys} need {needed} at their maximum "
            "(one per multi-node group, exclusively): lower maxGroups to "
            f"{pool.topology_domains} or add capacity in other network domains"
        )


def _efa_share(pool: Any, mine: list[GroupDemand], report: CapacityReport) -> None:
    """EFA interfaces requested by the pods sharing a node never exceed the node's."""
    if pool.fabric != "efa" or not pool.efa_interfaces:
        return
    for demand in mine:
        # pods of this group type that can share a node: as many as fit its GPUs, but never more than
        # the groups have at their maximum (4 single-GPU groups on an 8-GPU node are 4 pods, not 8)
        full = pods_per_node(pool.gpus_per_node, demand.gpus_per_pod)
        per_node = min(full, max(1, demand.max_groups * demand.pods_per_group))
        per_pod = efa_interfaces_per_pod(pool.efa_interfaces, pool.gpus_per_node, demand.gpus_per_pod)
        if per_node * per_pod > pool.efa_interfaces:
            report.problems.append(
                f"{demand.where}.gpusPerPod: {per_node} pods of {demand.gpus_per_pod} GPUs on one "
                f"{pool.instance_type} node ask for {per_node} × {per_pod} EFA interfaces, but the node "
                f"has {pool.efa_interfaces} (AWS EFA device plugin advertises one per interface): raise "
                "gpusPerPod so fewer pods share a node"
            )
        elif full * per_pod < pool.efa_interfaces:  # a node full of these pods leaves interfaces idle
            report.warnings.append(
                f"{demand.where}.gpusPerPod: {full} pod(s) of {demand.gpus_per_pod} GPUs use "
                f"{full * per_pod} of the {pool.efa_interfaces} EFA interfaces of a "
                f"{pool.instance_type} node: the rest carry no traffic"
            )


def _storage_zone(eks: EksConfig, demands: list[GroupDemand], report: CapacityReport) -> None:
    """FSx for Lustre lives in one zone; a pool elsewhere reads every weight across zones."""
    if eks.storage.kind != "fsx-lustre":
        return
    zone = storage_zone(eks)
    used = {d.pool for d in demands}
    for index, pool in enumerate(eks.gpu_node_pools):
        if pool.name in used and pool.availability_zone and pool.availability_zone != zone:
            report.warnings.append(
                f"{NAMESPACE}:cluster.eks.gpuNodePools[{index}].availabilityZone: pool '{pool.name}' is in "
                f"{pool.availability_zone} but the FSx for Lustre file system is in {zone} (a "
                "single-AZ deployment type): every weight load crosses zones (inter-AZ transfer "
                "charges and latency): move the pool or storage.availabilityZone to the same zone"
            )


def storage_zone(eks: EksConfig) -> str:
    """Zone of the FSx file system: storage.availabilityZone, else the first pinned GPU pool's,
    else the first zone."""
    chosen = getattr(eks.storage, "availability_zone", None)
    if chosen:
        return str(chosen)
    return next(
        (pool.availability_zone for pool in eks.gpu_node_pools if pool.availability_zone),
        eks.availability_zones[0],
    )


def _memory(config: Any, report: CapacityReport) -> None:
    """Leader pods (engine runtime: the orchestrator container) ask for the memory their ranks use."""
    pools = config.cluster.node_pools()
    for index, deployment in enumerate(config.deployments):
        orchestrator = deployment.orchestrator
        if deployment.runtime != "engine" or "resources" not in orchestrator.model_fields_set:
            continue  # sized by the serving components (host_memory_request_gib), not by the stack
        resources = getattr(orchestrator, "resources", None)
        memory = quantity_gib(getattr(resources, "memory", "")) if resources is not None else None
        for role, group in deployment.worker_groups().items():
            engine = config.engines.get(getattr(group, "engine", None) or "")
            pool = pools.get(group.pool)
            model = MODELS.get(engine.model) if engine is not None else None
            if engine is None or pool is None or model is None or memory is None or resources is None:
                continue
            shm = quantity_gib(group.shm_size) or 0.0
            ranks = group.gpus_per_pod or pool.gpus_per_node
            needed = host_memory_request_gib(
                model.param_count,
                weight_bytes_per_param(engine.dtype, engine.quantization),
                engine.world_size,
                ranks,
                shm,
            )
            if memory < needed:
                report.warnings.append(
                    f"{NAMESPACE}:deployments[{index}].orchestrator.resources.memory: "
                    f"{resources.memory} for a {role} leader running {ranks} ranks of '{engine.model}' "
                    f"(world size {engine.world_size}) with a {group.shm_size} RAM-backed /dev/shm "
                    f"charged to the same limit; it needs about {needed}Gi (OOM-killed while loading otherwise): "
                    f"set memory: {needed}Gi, or lower {role}.shmSize"
                )


def _existing_cluster(existing: Any, deployments: Any, demands: list[GroupDemand], report: CapacityReport) -> None:
    """What an existing cluster must provide itself: nodes for the scalers' maxima, load balancers."""
    for index, pool in enumerate(existing.gpu_pools):
        where = f"{NAMESPACE}:cluster.existing.gpuPools[{index}].maxNodes"
        mine = [d for d in demands if d.pool == pool.name]
        needed = sum(nodes_needed(d, pool.gpus_per_node) for d in mine)
        if not mine:
            continue
        if pool.max_nodes is None:
            report.warnings.append(
                f"{where}: the worker groups on pool '{pool.name}' need {needed} nodes at their maximum; "
                "this stack adds no node to an existing cluster: set maxNodes to what the pool (or its "
                "own autoscaler) can reach, so the stack can check it"
            )
        elif pool.max_nodes < needed:
            report.problems.append(
                f"{where}: the worker groups on pool '{pool.name}' need {needed} nodes at their maximum, but "
                f"the pool has at most {pool.max_nodes}: lower maxGroups or add nodes to the pool"
            )
    wants_lb = [
        f"{NAMESPACE}:deployments[{index}].frontend.serviceType"
        for index, deployment in enumerate(deployments)
        if getattr(getattr(deployment, "frontend", None), "service_type", None) == "LoadBalancer"
    ]
    if wants_lb and existing.load_balancer_services is False:
        report.problems.append(
            f"{wants_lb[0]}: LoadBalancer, but cluster.existing.loadBalancerServices is false (nothing "
            "would give the Service an address): set serviceType: ClusterIP and expose it your way, or "
            "install a load balancer implementation (e.g. MetalLB) and set loadBalancerServices: true"
        )
    elif wants_lb and existing.load_balancer_services is None:
        report.warnings.append(
            f"{wants_lb[0]}: LoadBalancer on an existing cluster; this stack installs no load balancer "
            "controller there: set cluster.existing.loadBalancerServices to true once the cluster has "
            "one (cloud controller, MetalLB), or use serviceType: ClusterIP"
        )


NODE_RESERVED_CPU = 1.0
"""CPU of each system node not available to the serving pods: kubelet/system reserve and the
node DaemonSets (kube-proxy, VPC CNI, Pod Identity agent, CSI node plugins) — rounded up."""


def cpu_quantity(quantity: str) -> float | None:
    """A Kubernetes CPU quantity in cores (``"8"``, ``"500m"``); None when it cannot be read."""
    text = str(quantity).strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(m?)", text)
    if not match:
        return None
    return float(match.group(1)) / (1000 if match.group(2) else 1)


def _system_cpu(eks: EksConfig, deployments: Any, report: CapacityReport) -> None:
    """The CPU tiers at their scalers' maxima (frontends, and the llmapi routers) fit the system
    node group."""
    system = eks.system_node_group
    vcpus = system.vcpus
    if vcpus is None:
        return
    demand = 0.0
    parts = []
    for index, deployment in enumerate(deployments):
        for key, replicas, resources in deployment.cpu_tiers():
            cpu = cpu_quantity(resources.cpu)
            if cpu is None:
                continue
            demand += replicas * cpu
            parts.append(f"deployments[{index}].{key} maxReplicas {replicas} × cpu {cpu:g}")
    nodes = system.max_size if system.autoscaler == "karpenter" else system.desired_size
    supply = nodes * (vcpus - NODE_RESERVED_CPU)
    if demand > supply:
        fix = (
            f"raise maxSize to {math.ceil(demand / (vcpus - NODE_RESERVED_CPU))}"
            if system.autoscaler == "karpenter"
            else "set autoscaler: karpenter and a maxSize that holds them"
        )
        report.problems.append(
            f"{NAMESPACE}:cluster.eks.systemNodeGroup: the CPU tiers at their maximum request {demand:g} "
            f"CPUs ({', '.join(parts)}), but the system pool holds at most {nodes} × ({vcpus} − "
            f"{NODE_RESERVED_CPU:g}) = {supply:g} ({system.instance_type}, "
            + ("Karpenter up to maxSize" if system.autoscaler == "karpenter" else "fixed at desiredSize, nothing adds a node")
            + f"): {fix}, or lower the frontends' maxReplicas"
        )
