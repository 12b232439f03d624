"""Karpenter NodePools and EC2NodeClasses per GPU pool, against the v1.14.1 CRDs and chart keys."""

from __future__ import annotations

import json

import jsonschema
import pytest

from components.config.cluster import GpuNodePoolConfig, SystemNodeGroupConfig
from components.config.platform import KarpenterConfig
from components.platform.karpenter import (
    capacity_types,
    ec2_node_class,
    karpenter_values,
    network_interfaces,
    node_pool,
    system_node_class,
    system_node_pool,
)

SG = ["sg-0cluster", "sg-0efa"]
BLOCK = {"start": "2026-12-01T11:30:00Z", "end": "2026-12-15T11:30:00Z", "instanceCount": 8}


def h100_block() -> GpuNodePoolConfig:
    return GpuNodePoolConfig.model_validate(
        dict(name="h100", instanceType="p5.48xlarge", availabilityZone="us-east-2a", minSize=0, desiredSize=0,
             maxSize=8, capacityType="capacity-block", capacityReservationId="cr-0a1b2c3d4e5f60718",
             capacityBlock=BLOCK, autoscaler="karpenter")
    )


def h200_reserved() -> GpuNodePoolConfig:
    return GpuNodePoolConfig.model_validate(
        dict(name="h200", instanceType="p5en.48xlarge", availabilityZone="us-east-2b", maxSize=2,
             placementGroupName="llm-prod-h200-odcr", capacityReservationId="cr-0f1e2d3c4b5a69788",
             autoscaler="karpenter", labels={"team": "inference"})
    )


def crd(name: str) -> dict:
    from pathlib import Path

    return json.loads((Path(__file__).parent / "data" / name).read_text())["openAPIV3Schema"]


@pytest.mark.parametrize("pool", [h100_block(), h200_reserved()], ids=["h100-block", "h200-reservation"])
def test_node_class_and_pool_match_the_upstream_crds(upstream, pool) -> None:
    node_class = ec2_node_class(pool, "llm-prod", "llm-prod-node-role", "subnet-0abc", SG, KarpenterConfig(), "pg")
    for manifest, file in ((node_class, "ec2nodeclass-karpenter-1.14.1.schema.json"), (node_pool(pool, KarpenterConfig()), "nodepool-karpenter-1.14.1.schema.json")):
        errors = sorted(jsonschema.Draft7Validator(upstream.strict(crd(file))).iter_errors(manifest), key=str)
        assert [e.message for e in errors] == []


def test_efa_interfaces_of_p5_are_32_devices_behind_one_primary() -> None:
    slots = network_interfaces(h100_block().instance)
    assert slots[0] == {"networkCardIndex": 0, "deviceIndex": 0, "interfaceType": "interface"}
    efa = [s for s in slots if s["interfaceType"] == "efa-only"]
    assert len(efa) == 32 and sorted({s["networkCardIndex"] for s in efa}) == list(range(32))


def test_network_interfaces_follow_the_crd_rules() -> None:
    """The EC2NodeClass CEL rules (pkg/apis/v1/ec2nodeclass.go @v1.14.1): a primary 'interface' at
    card 0 / device 0, no duplicate card+device pair, at most one efa-only per card."""
    slots = network_interfaces(h200_reserved().instance)
    assert any(s["networkCardIndex"] == 0 and s["deviceIndex"] == 0 and s["interfaceType"] == "interface" for s in slots)
    pairs = [(s["networkCardIndex"], s["deviceIndex"]) for s in slots]
    assert len(pairs) == len(set(pairs))
    cards = [s["networkCardIndex"] for s in slots if s["interfaceType"] == "efa-only"]
    assert len(cards) == len(set(cards)) == 16


def test_capacity_block_pool_launches_only_into_its_block() -> None:
    """Karpenter docs (tasks/odcrs.md @v1.14.1): Capacity Blocks are selected like ODCRs and used
    through capacity type 'reserved'."""
    pool = h100_block()
    spec = ec2_node_class(pool, "llm-prod", "role", "subnet-0abc", SG, KarpenterConfig())["spec"]
    assert spec["capacityReservationSelectorTerms"] == [{"id": "cr-0a1b2c3d4e5f60718"}]
    assert "placementGroupSelector" not in spec
    requirements = {r["key"]: r["values"] for r in node_pool(pool, KarpenterConfig())["spec"]["template"]["spec"]["requirements"]}
    assert requirements == {
        "node.kubernetes.io/instance-type": ["p5.48xlarge"],
        "karpenter.sh/capacity-type": ["reserved"],
        "topology.kubernetes.io/zone": ["us-east-2a"],
        "karpenter.k8s.aws/capacity-reservation-id": ["cr-0a1b2c3d4e5f60718"],
    }


def test_reservation_pool_uses_the_reservations_own_placement_group() -> None:
    """EC2 User Guide, "Capacity Reservations for cluster placement groups"."""
    spec = ec2_node_class(h200_reserved(), "llm-prod", "role", "subnet-0abc", SG, KarpenterConfig(), "llm-prod-h200-odcr")["spec"]
    assert spec["placementGroupSelector"] == {"name": "llm-prod-h200-odcr"}


def test_on_demand_and_spot_pools_are_not_reserved() -> None:
    base = dict(name="a", instance_type="p4d.24xlarge", availability_zone="us-west-2b", autoscaler="karpenter")
    assert capacity_types(GpuNodePoolConfig(**base)) == ["on-demand"]
    assert capacity_types(GpuNodePoolConfig(**base, capacity_type="spot")) == ["spot"]


def test_node_pool_keeps_labels_taint_and_caps_gpus_at_max_size() -> None:
    spec = node_pool(h200_reserved(), KarpenterConfig())["spec"]
    template = spec["template"]
    assert template["metadata"]["labels"] == {"disagg.dev/pool": "h200", "team": "inference"}
    assert template["spec"]["taints"] == [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]
    assert spec["limits"]["nvidia.com/gpu"] == "16"
    assert spec["disruption"] == {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "10m"}


def test_node_class_uses_the_pinned_al2023_alias_and_imdsv2() -> None:
    spec = ec2_node_class(h100_block(), "llm-prod", "role", "subnet-0abc", SG, KarpenterConfig())["spec"]
    assert spec["amiSelectorTerms"] == [{"alias": "al2023@v20260724"}]
    assert spec["metadataOptions"]["httpTokens"] == "required"
    assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1


def test_unpinned_ami_alias_is_refused() -> None:
    with pytest.raises(ValueError, match="is not a pinned AL2023 alias"):
        KarpenterConfig(ami_alias="al2023@latest")


def test_every_value_set_exists_in_the_upstream_chart(upstream, clusters) -> None:
    values = karpenter_values(clusters.handle("efa"), "llm-prod", "llm-prod-karpenter")
    assert values["settings"] == {
        "clusterName": "llm-prod",
        "interruptionQueue": "llm-prod-karpenter",
        "featureGates": {"reservedCapacity": True},
    }
    assert upstream.unknown_values(values, upstream.key_table("karpenter-1.14.1.values-keys.json")) == []


def test_system_node_pool_adds_cpu_nodes_beyond_the_managed_group(upstream) -> None:
    system = SystemNodeGroupConfig(instance_type="m7i.4xlarge", min_size=3, desired_size=3, max_size=12, autoscaler="karpenter")
    pool = system_node_pool(system, KarpenterConfig())
    assert pool["spec"]["limits"] == {"cpu": "144"}
    assert pool["spec"]["template"]["metadata"]["labels"] == {"disagg.dev/pool": "system"}
    assert "taints" not in pool["spec"]["template"]["spec"]
    node_class = system_node_class(system, "llm-prod", "role", ["subnet-0a", "subnet-0b"], ["sg-0c"], KarpenterConfig())
    for manifest, file in ((node_class, "ec2nodeclass-karpenter-1.14.1.schema.json"), (pool, "nodepool-karpenter-1.14.1.schema.json")):
        errors = jsonschema.Draft7Validator(upstream.strict(crd(file))).iter_errors(manifest)
        assert [e.message for e in errors] == []
