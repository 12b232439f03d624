"""NetworkOperator: the NVIDIA Network Operator and its NicClusterPolicy, for InfiniBand/RoCE.

The chart installs the operator (and the NicClusterPolicy CRD); the policy, created after the
release, deploys on the GPU nodes:

* the RDMA shared device plugin, advertising the resource the cluster's GPU pools request
  (``rdma/<name>`` in :attr:`NodePool.rdma_resource`, so it is not configured twice);
* optionally the DOCA/MOFED driver container (off when the hosts already have the driver);
* optionally a secondary network: Multus, the CNI plugins, IPoIB on InfiniBand, and nv-ipam.

Node Feature Discovery is not deployed a second time: the GPU Operator's NFD (or the cluster's
own) labels the nodes, and the chart only adds its NodeFeatureRules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.contract import ClusterHandle
from components.config.platform import RDMA_FABRICS, ChartConfig, NetworkOperatorConfig, PlatformConfig
from components.config.scheduling import Fabric, NodePool
from components.platform.gpu_operator import gpu_node_tolerations, system_node_selector
from components.platform.helm_release import ChartComponent

TYPE_TOKEN = "disagg:platform:NetworkOperator"
RELEASE_NAME = "network-operator"
NIC_CLUSTER_POLICY_NAME = "nic-cluster-policy"
"""The operator reconciles only the NicClusterPolicy of this name."""
DEFAULT_RDMA_PREFIX = "rdma"
"""Resource prefix the RDMA shared device plugin uses unless told otherwise."""
_RESOURCE_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_FQDN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def rdma_resource(gpu_pools: Mapping[str, NodePool], fabric: Fabric) -> tuple[str, str]:
    """``(prefix, name)`` of the RDMA resource the GPU pools request; one for the whole cluster."""
    wanted = sorted({pool.rdma_resource for pool in gpu_pools.values() if pool.rdma_resource})
    if not wanted:
        raise ValueError(
            f"the cluster's fabric is '{fabric}' but no GPU pool has an RDMA resource, so the RDMA "
            "shared device plugin would advertise nothing pods ask for: set the cluster's "
            "rdmaResourceName (pools then request rdma/<name>)"
        )
    if len(wanted) > 1:
        raise ValueError(
            f"GPU pools request different RDMA resources ({', '.join(wanted)}) but the NIC cluster "
            "policy advertises one: give every pool the same rdma_resource"
        )
    prefix, slash, name = wanted[0].partition("/")
    if not slash or not _RESOURCE_NAME.match(name) or not _FQDN.match(prefix):
        raise ValueError(
            f"RDMA resource '{wanted[0]}' is not '<prefix>/<name>' with a DNS prefix and a name of "
            "letters, digits, '-', '_' or '.' (e.g. rdma/rdma_shared_device_a): fix rdmaResourceName"
        )
    return prefix, name


def rdma_shared_device_plugin_config(
    config: NetworkOperatorConfig, fabric: Fabric, gpu_pools: Mapping[str, NodePool]
) -> dict:
    """The RDMA shared device plugin's configuration (``configList``) as data."""
    prefix, name = rdma_resource(gpu_pools, fabric)
    device = config.rdma_shared_device
    selectors: dict[str, list[str]] = {"linkTypes": device.link_types_for(fabric)}
    if device.vendors:
        selectors["vendors"] = list(device.vendors)
    if device.if_names:
        selectors["ifNames"] = list(device.if_names)
    entry: dict = {"resourceName": name, "rdmaHcaMax": device.rdma_hca_max, "selectors": selectors}
    if prefix != DEFAULT_RDMA_PREFIX:
        entry["resourcePrefix"] = prefix
    return {"configList": [entry]}


def gpu_node_affinity(gpu_pools: Mapping[str, NodePool]) -> dict | None:
    """Required node affinity matching any GPU pool's node selector; None if one selects all."""
    terms = []
    for _, pool in sorted(gpu_pools.items()):
        if not pool.node_selector:
            return None
        terms.append(
            {
                "matchExpressions": [
                    {"key": key, "operator": "In", "values": [value]}
                    for key, value in sorted(pool.node_selector.items())
                ]
            }
        )
    if not terms:
        return None
    return {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}


def _image(config: NetworkOperatorConfig, image: str, version: str | None = None) -> dict:
    return {
        "image": image,
        "repository": config.image_repository,
        "version": version or config.components_tag(),
    }


def nic_cluster_policy_spec(
    config: NetworkOperatorConfig, fabric: Fabric, gpu_pools: Mapping[str, NodePool]
) -> dict:
    """``spec`` of the NicClusterPolicy for a cluster with ``fabric`` and these GPU pools."""
    plugin_config = rdma_shared_device_plugin_config(config, fabric, gpu_pools)
    spec: dict = {
        "tolerations": gpu_node_tolerations(gpu_pools),
        "rdmaSharedDevicePlugin": {
            **_image(config, "k8s-rdma-shared-dev-plugin"),
            "config": json.dumps(plugin_config, indent=2, sort_keys=True),
        },
    }
    affinity = gpu_node_affinity(gpu_pools)
    if affinity is not None:
        spec["nodeAffinity"] = affinity
    if config.ofed_driver:
        spec["ofedDriver"] = {
            **_image(config, "doca-driver", config.ofed_driver_version),
            "startupProbe": {"initialDelaySeconds": 10, "periodSeconds": 20},
            "livenessProbe": {"initialDelaySeconds": 30, "periodSeconds": 30},
            "readinessProbe": {"initialDelaySeconds": 10, "periodSeconds": 30},
            "upgradePolicy": {
                "autoUpgrade": True,
                "maxParallelUpgrades": 1,
                "drain": {"enable": True, "force": True, "deleteEmptyDir": True, "timeoutSeconds": 300},
            },
        }
    secondary = config.secondary_network
    if secondary.enabled:
        network = {
            "cniPlugins": _image(config, "plugins"),
            "multus": _image(config, "multus-cni"),
        }
        if fabric == "infiniband":
            network["ipoib"] = _image(config, "ipoib-cni")
        spec["secondaryNetwork"] = network
        if secondary.ipam == "nv-ipam":
            spec["nvIpam"] = {**_image(config, "nvidia-k8s-ipam"), "enableWebhook": False}
    return spec


def network_operator_values(system_pool: NodePool | None = None) -> dict:
    """Helm values of the network-operator chart (NFD comes from the GPU Operator)."""
    values: dict = {"nfd": {"enabled": False, "deployNodeFeatureRules": True}}
    selector = system_node_selector(system_pool)
    if selector:
        values["operator"] = {"nodeSelector": selector}
    return values


class NetworkOperator(ChartComponent):
    """The network-operator Helm release, then the NicClusterPolicy (its CRD comes with the chart)."""

    TYPE_TOKEN = TYPE_TOKEN
    RELEASE_NAME = RELEASE_NAME

    nic_cluster_policy: k8s.apiextensions.CustomResource
    policy_spec: dict

    def check(self, handle: ClusterHandle, config: PlatformConfig) -> None:
        if handle.fabric not in RDMA_FABRICS:
            raise ValueError(
                f"NetworkOperator on a cluster whose fabric is '{handle.fabric}': it serves only "
                "InfiniBand/RoCE clusters (PlatformOperators installs it only there)"
            )

    def chart(self, config: PlatformConfig) -> ChartConfig:
        return config.network_operator.chart

    def chart_values(self, handle: ClusterHandle, config: PlatformConfig) -> dict:
        self.policy_spec = nic_cluster_policy_spec(config.network_operator, handle.fabric, handle.gpu_pools)
        return network_operator_values(handle.system_pool)

    def after_release(self, name: str, handle: ClusterHandle, config: PlatformConfig) -> dict[str, Any]:
        self.nic_cluster_policy = k8s.apiextensions.CustomResource(
            f"{name}-nic-cluster-policy",
            api_version="mellanox.com/v1alpha1",
            kind="NicClusterPolicy",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NIC_CLUSTER_POLICY_NAME),
            spec=self.policy_spec,
            opts=pulumi.ResourceOptions(parent=self, provider=handle.provider, depends_on=[self.release]),
        )
        return {"policy": NIC_CLUSTER_POLICY_NAME}
