"""Karpenter: the controller (Helm, pinned) and one NodePool + EC2NodeClass per autoscaled GPU pool.

Karpenter (aws/karpenter-provider-aws v1.14.1) meets every requirement of the GPU pools, so no
Cluster Autoscaler is needed:

* EFA: ``spec.networkInterfaces`` attaches every EFA interface of the instance type (the primary
  ``interface`` plus one ``efa-only`` per network card);
* placement: ``spec.placementGroupSelector`` names the cluster placement group (the stack's, or
  the one a reservation was created in);
* reservations and Capacity Blocks: ``spec.capacityReservationSelectorTerms`` with the ``cr-``
  id and capacity type ``reserved`` (feature gate ReservedCapacity, on by default since v1.6);
  Karpenter launches only while the reservation is active and drains Capacity Block nodes
  10 minutes before EC2 terminates them;
* AMI: ``amiSelectorTerms`` alias ``al2023@<version>`` (the NVIDIA variant on GPU types).

With ``systemNodeGroup.autoscaler: karpenter`` a CPU NodePool (label ``disagg.dev/pool=system``)
adds up to maxSize − desiredSize nodes of the system instance type for the CPU tiers; the
controllers, Karpenter included, stay on the managed system node group.

Nodes carry the pool's labels and the ``nvidia.com/gpu:NoSchedule`` taint as the managed node
groups did; NodePool ``limits`` cap the pool at ``maxSize`` nodes' GPUs; empty nodes are removed
after ``consolidateAfter``, busy ones are never consolidated away (``WhenEmpty``).
Schemas: tests/components/platform/data/{nodepool,ec2nodeclass}-karpenter-1.14.1.schema.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.aws_iam import KARPENTER_SERVICE_ACCOUNT
from components.cluster.contract import AwsClusterInfo, ClusterHandle
from components.config.cluster import GPU_TAINT, POOL_LABEL, GpuNodePoolConfig, SystemNodeGroupConfig
from components.config.instance_types import InstanceType, efa_interface_layout
from components.config.platform import ChartConfig, KarpenterConfig, PlatformConfig
from components.config.scheduling import GPU_RESOURCE
from components.platform.gpu_operator import system_node_selector
from components.platform.helm_release import ChartComponent

TYPE_TOKEN = "disagg:platform:Karpenter"
RELEASE_NAME = "karpenter"
SERVICE_ACCOUNT = KARPENTER_SERVICE_ACCOUNT[1]
NODE_POOL_API = "karpenter.sh/v1"
NODE_CLASS_API = "karpenter.k8s.aws/v1"
CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"
RESERVATION_ID_LABEL = "karpenter.k8s.aws/capacity-reservation-id"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
ZONE_LABEL = "topology.kubernetes.io/zone"
ROOT_DEVICE = "/dev/xvda"


def network_interfaces(instance: InstanceType) -> list[dict]:
    """``spec.networkInterfaces``: the primary interface and one EFA device per network card.

    Karpenter's primary must be ``interface`` (no combined ENA+EFA type), so card 0 gets an
    ``efa-only`` at device 1 as every other card does (components.config.instance_types layout).
    """
    slots = [{"networkCardIndex": 0, "deviceIndex": 0, "interfaceType": "interface"}]
    for slot in efa_interface_layout(instance):
        card = slot.network_card_index
        slots.append({"networkCardIndex": card, "deviceIndex": 1, "interfaceType": "efa-only"})
    return slots


def capacity_types(pool: GpuNodePoolConfig) -> list[str]:
    """Karpenter capacity types of the pool: ``reserved`` for reservations and Capacity Blocks."""
    if pool.capacity_reservation_id is not None:
        return ["reserved"]
    return ["spot"] if pool.capacity_type == "spot" else ["on-demand"]


def node_class_name(pool: GpuNodePoolConfig) -> str:
    return f"gpu-{pool.name}"


def ec2_node_class(
    pool: GpuNodePoolConfig,
    cluster_name: str,
    node_role: Any,
    subnet_id: Any,
    security_group_ids: Sequence[Any],
    config: KarpenterConfig,
    placement_group: str | None = None,
) -> dict:
    """The EC2NodeClass of ``pool`` (``subnet_id``/``node_role``/groups may be Pulumi outputs)."""
    spec: dict = {
        "role": node_role,
        "amiSelectorTerms": [{"alias": config.ami_alias}],
        "subnetSelectorTerms": [{"id": subnet_id}],
        "securityGroupSelectorTerms": [{"id": group} for group in security_group_ids],
        "blockDeviceMappings": [
            {
                "deviceName": ROOT_DEVICE,
                "rootVolume": True,
                "ebs": {
                    "volumeSize": f"{pool.disk_size_gib}Gi",
                    "volumeType": "gp3",
                    "iops": 6000,
                    "throughput": 500,
                    "encrypted": True,
                    "deleteOnTermination": True,
                },
            }
        ],
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": 1,
            "httpTokens": "required",
        },
        "tags": {"Name": f"{cluster_name}-{pool.name}", "disagg.dev/pool": pool.name},
    }
    if pool.efa:
        spec["networkInterfaces"] = network_interfaces(pool.instance)
    if placement_group:
        spec["placementGroupSelector"] = {"name": placement_group}
    if pool.capacity_reservation_id:
        spec["capacityReservationSelectorTerms"] = [{"id": pool.capacity_reservation_id}]
    return {
        "apiVersion": NODE_CLASS_API,
        "kind": "EC2NodeClass",
        "metadata": {"name": node_class_name(pool)},
        "spec": spec,
    }


def node_pool(pool: GpuNodePoolConfig, config: KarpenterConfig) -> dict:
    """The NodePool of ``pool``: its instance type, zone, capacity type, labels, taint and limits."""
    instance = pool.instance
    requirements = [
        {"key": INSTANCE_TYPE_LABEL, "operator": "In", "values": [pool.instance_type]},
        {"key": CAPACITY_TYPE_LABEL, "operator": "In", "values": capacity_types(pool)},
    ]
    if pool.availability_zone:
        requirements.append({"key": ZONE_LABEL, "operator": "In", "values": [pool.availability_zone]})
    if pool.capacity_reservation_id:
        requirements.append(
            {"key": RESERVATION_ID_LABEL, "operator": "In", "values": [pool.capacity_reservation_id]}
        )
    return {
        "apiVersion": NODE_POOL_API,
        "kind": "NodePool",
        "metadata": {"name": f"gpu-{pool.name}"},
        "spec": {
            "template": {
                "metadata": {"labels": dict(sorted(pool.node_labels().items()))},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": node_class_name(pool)},
                    "requirements": requirements,
                    "taints": [{"key": GPU_TAINT.key, "effect": GPU_TAINT.effect}],
                    "expireAfter": "Never",
                },
            },
            "limits": {
                GPU_RESOURCE: str(pool.max_size * instance.gpus),
                "cpu": str(pool.max_size * instance.vcpus),
                "memory": f"{pool.max_size * instance.memory_gib}Gi",
            },
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": config.consolidate_after},
        },
    }


SYSTEM_NODE_CLASS = "system"


def system_node_class(
    system: SystemNodeGroupConfig,
    cluster_name: str,
    node_role: Any,
    subnet_ids: Sequence[Any],
    security_group_ids: Sequence[Any],
    config: KarpenterConfig,
) -> dict:
    """The EC2NodeClass of the CPU nodes Karpenter adds to the system pool (private subnets)."""
    return {
        "apiVersion": NODE_CLASS_API,
        "kind": "EC2NodeClass",
        "metadata": {"name": SYSTEM_NODE_CLASS},
        "spec": {
            "role": node_role,
            "amiSelectorTerms": [{"alias": config.ami_alias}],
            "subnetSelectorTerms": [{"id": subnet} for subnet in subnet_ids],
            "securityGroupSelectorTerms": [{"id": group} for group in security_group_ids],
            "blockDeviceMappings": [
                {
                    "deviceName": ROOT_DEVICE,
                    "rootVolume": True,
                    "ebs": {"volumeSize": f"{system.disk_size_gib}Gi", "volumeType": "gp3", "encrypted": True},
                }
            ],
            "metadataOptions": {
                "httpEndpoint": "enabled",
                "httpProtocolIPv6": "disabled",
                "httpPutResponseHopLimit": 1,
                "httpTokens": "required",
            },
            "tags": {"Name": f"{cluster_name}-system", "disagg.dev/pool": "system"},
        },
    }


def system_node_pool(system: SystemNodeGroupConfig, config: KarpenterConfig) -> dict:
    """CPU nodes beyond the managed group's desiredSize, up to maxSize, labelled as the system pool."""
    extra = system.max_size - system.desired_size
    vcpus = system.vcpus or 0
    return {
        "apiVersion": NODE_POOL_API,
        "kind": "NodePool",
        "metadata": {"name": "system"},
        "spec": {
            "template": {
                "metadata": {"labels": {POOL_LABEL: "system"}},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": SYSTEM_NODE_CLASS},
                    "requirements": [
                        {"key": INSTANCE_TYPE_LABEL, "operator": "In", "values": [system.instance_type]},
                        {"key": CAPACITY_TYPE_LABEL, "operator": "In", "values": ["on-demand"]},
                    ],
                    "expireAfter": "720h",
                },
            },
            "limits": {"cpu": str(extra * vcpus)},
            # streaming frontends: only empty nodes go away, busy ones are never consolidated
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": config.consolidate_after},
        },
    }


def karpenter_values(handle: ClusterHandle, cluster_name: Any, queue_name: Any) -> dict:
    """Helm values of the karpenter chart: cluster, interruption queue, reserved capacity on."""
    values: dict = {
        "settings": {
            "clusterName": cluster_name,
            "interruptionQueue": queue_name,
            "featureGates": {"reservedCapacity": True},
        },
        "serviceAccount": {"name": SERVICE_ACCOUNT},
        "replicas": 2,
    }
    selector = system_node_selector(handle.system_pool)
    if selector:
        values["nodeSelector"] = selector
    return values


class Karpenter(ChartComponent):
    """The karpenter Helm release, then an EC2NodeClass and a NodePool per autoscaled GPU pool."""

    TYPE_TOKEN = TYPE_TOKEN
    RELEASE_NAME = RELEASE_NAME

    node_classes: dict[str, k8s.apiextensions.CustomResource]
    node_pools: dict[str, k8s.apiextensions.CustomResource]

    def check(self, handle: ClusterHandle, config: PlatformConfig) -> None:
        aws = handle.aws
        if aws is None or aws.karpenter_interruption_queue is None or not (
            aws.karpenter_pools or aws.karpenter_system is not None
        ):
            raise ValueError(
                f"Karpenter on cluster '{handle.name}' without AWS details or Karpenter pools: "
                "install it only on EKS clusters with a pool of autoscaler: karpenter"
            )

    def chart(self, config: PlatformConfig) -> ChartConfig:
        return config.karpenter.chart

    def chart_values(self, handle: ClusterHandle, config: PlatformConfig) -> dict:
        aws = _aws(handle)
        return karpenter_values(handle, aws.cluster_name, aws.karpenter_interruption_queue)

    def release_namespace(self, config: PlatformConfig) -> str:
        return KARPENTER_SERVICE_ACCOUNT[0]

    def before_release(
        self, name: str, handle: ClusterHandle, depends_on: list[pulumi.Resource]
    ) -> list[pulumi.Resource]:
        return [*depends_on, *_aws(handle).karpenter_dependencies]

    def outputs(self) -> dict[str, Any]:
        return {"release": self.release.name, "nodePools": sorted(self.node_pools)}

    def after_release(self, name: str, handle: ClusterHandle, config: PlatformConfig) -> dict[str, Any]:
        aws = _aws(handle)
        settings = config.karpenter
        after = pulumi.ResourceOptions(parent=self, provider=handle.provider, depends_on=[self.release])
        self.node_classes = {}
        self.node_pools = {}
        for pool in aws.karpenter_pools:
            manifest = ec2_node_class(
                pool,
                handle.name,
                aws.node_role_name,
                aws.pool_subnet_ids[pool.name],
                aws.pool_security_group_ids[pool.name],
                settings,
                aws.placement_groups.get(pool.name),
            )
            self.node_classes[pool.name] = k8s.apiextensions.CustomResource(
                f"{name}-{pool.name}-node-class",
                api_version=manifest["apiVersion"],
                kind=manifest["kind"],
                metadata=manifest["metadata"],
                spec=manifest["spec"],
                opts=after,
            )
            pool_manifest = node_pool(pool, settings)
            self.node_pools[pool.name] = k8s.apiextensions.CustomResource(
                f"{name}-{pool.name}-node-pool",
                api_version=pool_manifest["apiVersion"],
                kind=pool_manifest["kind"],
                metadata=pool_manifest["metadata"],
                spec=pool_manifest["spec"],
                opts=pulumi.ResourceOptions(
                    parent=self, provider=handle.provider, depends_on=[self.node_classes[pool.name]]
                ),
            )
        if aws.karpenter_system is not None:
            system_class = system_node_class(
                aws.karpenter_system, handle.name, aws.node_role_name, aws.system_subnet_ids,
                aws.system_security_group_ids, settings,
            )
            self.node_classes["system"] = k8s.apiextensions.CustomResource(
                f"{name}-system-node-class",
                api_version=system_class["apiVersion"],
                kind=system_class["kind"],
                metadata=system_class["metadata"],
                spec=system_class["spec"],
                opts=after,
            )
            system_pool = system_node_pool(aws.karpenter_system, settings)
            self.node_pools["system"] = k8s.apiextensions.CustomResource(
                f"{name}-system-node-pool",
                api_version=system_pool["apiVersion"],
                kind=system_pool["kind"],
                metadata=system_pool["metadata"],
                spec=system_pool["spec"],
                opts=pulumi.ResourceOptions(
                    parent=self, provider=handle.provider, depends_on=[self.node_classes["system"]]
                ),
            )
        return {}


def _aws(handle: ClusterHandle) -> AwsClusterInfo:
    """The AWS details Karpenter needs (present: :meth:`Karpenter.check` ran first)."""
    assert handle.aws is not None and handle.aws.karpenter_interruption_queue is not None
    return handle.aws
