"""NicClusterPolicy spec and network-operator values against upstream's CRD, webhook schema and values."""

from __future__ import annotations

import itertools
import json
import re

import jsonschema
import pytest

from components.config.platform import PlatformConfig
from components.platform.network_operator import (
    gpu_node_affinity,
    network_operator_values,
    nic_cluster_policy_spec,
    rdma_shared_device_plugin_config,
)

RESOURCE_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
"""The operator webhook's check of ``resourceName`` (validator/nicpolicy_webhook.go, v26.4.1)."""


def network(**section):
    return PlatformConfig.model_validate({"networkOperator": section}).network_operator


def spec_for(clusters, fabric="infiniband", config=None, **handle):
    cluster = clusters.handle(fabric, "existing", **handle)
    return nic_cluster_policy_spec(config or network(), fabric, cluster.gpu_pools)


def plugin_config(spec):
    return json.loads(spec["rdmaSharedDevicePlugin"]["config"])


def test_resource_name_comes_from_the_pools(clusters):
    (entry,) = plugin_config(spec_for(clusters))["configList"]
    assert entry == {
        "resourceName": "rdma_shared_device_a",
        "rdmaHcaMax": 63,
        "selectors": {"vendors": ["15b3"], "linkTypes": ["infiniband"]},
    }


def test_roce_selects_ethernet_links_and_config_overrides(clusters):
    config = network(rdmaSharedDevice={"ifNames": ["ens1f0np0"], "rdmaHcaMax": 128, "vendors": ["15b3"]})
    (entry,) = plugin_config(spec_for(clusters, "roce", config))["configList"]
    assert entry["selectors"] == {"vendors": ["15b3"], "linkTypes": ["ether"], "ifNames": ["ens1f0np0"]}
    assert entry["rdmaHcaMax"] == 128


def test_other_resource_prefix_is_passed_on(clusters):
    pool = clusters.pool("h100", "infiniband", rdma_resource="nvidia.com/hca_shared")
    (entry,) = plugin_config(spec_for(clusters, pools=[pool]))["configList"]
    assert (entry["resourcePrefix"], entry["resourceName"]) == ("nvidia.com", "hca_shared")


def test_pools_without_rdma_resource_are_refused(clusters):
    pool = clusters.pool("h100", "infiniband", rdma_resource=None)
    with pytest.raises(ValueError) as info:
        spec_for(clusters, pools=[pool])
    assert str(info.value) == (
        "the cluster's fabric is 'infiniband' but no GPU pool has an RDMA resource, so the RDMA "
        "shared device plugin would advertise nothing pods ask for: set the cluster's "
        "rdmaResourceName (pools then request rdma/<name>)"
    )


def test_pools_asking_for_different_resources_are_refused(clusters):
    pools = [clusters.pool("a", "roce"), clusters.pool("b", "roce", rdma_resource="rdma/other")]
    with pytest.raises(ValueError) as info:
        spec_for(clusters, "roce", pools=pools)
    assert str(info.value) == (
        "GPU pools request different RDMA resources (rdma/other, rdma/rdma_shared_device_a) but the "
        "NIC cluster policy advertises one: give every pool the same rdma_resource"
    )


@pytest.mark.parametrize("resource", ["rdma_shared_device_a", "rdma/bad name", "RDMA/x", "rdma/-x"])
def test_malformed_resource_is_refused(clusters, resource):
    pool = clusters.pool("h100", "infiniband", rdma_resource=resource)
    with pytest.raises(ValueError) as info:
        spec_for(clusters, pools=[pool])
    assert str(info.value) == (
        f"RDMA resource '{resource}' is not '<prefix>/<name>' with a DNS prefix and a name of letters, "
        "digits, '-', '_' or '.' (e.g. rdma/rdma_shared_device_a): fix rdmaResourceName"
    )


def test_daemonsets_tolerate_gpu_taints_and_stay_on_gpu_pools(clusters):
    pools = [clusters.pool("b200", "infiniband"), clusters.pool("a100", "infiniband")]
    spec = spec_for(clusters, pools=pools)
    assert spec["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    terms = spec["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [
        {"matchExpressions": [{"key": "disagg.dev/pool", "operator": "In", "values": ["a100"]}]},
        {"matchExpressions": [{"key": "disagg.dev/pool", "operator": "In", "values": ["b200"]}]},
    ]


def test_a_pool_selecting_every_node_drops_the_affinity(clusters):
    assert gpu_node_affinity({"all": clusters.pool("all", "roce", node_selector={})}) is None


def test_images_use_the_release_tag(clusters):
    spec = spec_for(clusters, config=network(secondaryNetwork={"enabled": True}, ofedDriver=True))
    assert spec["rdmaSharedDevicePlugin"]["version"] == "network-operator-v26.4.1"
    assert spec["secondaryNetwork"]["multus"] == {
        "image": "multus-cni", "repository": "nvcr.io/nvidia/mellanox", "version": "network-operator-v26.4.1",
    }
    assert spec["ofedDriver"]["version"] == "doca3.4.1-26.04-1.1.0.0-1"


def test_optional_parts_are_off_by_default(clusters):
    assert sorted(spec_for(clusters)) == ["nodeAffinity", "rdmaSharedDevicePlugin", "tolerations"]


@pytest.mark.parametrize(
    ("fabric", "ipam", "expected"),
    [
        ("infiniband", "nv-ipam", (["cniPlugins", "ipoib", "multus"], True)),
        ("roce", "nv-ipam", (["cniPlugins", "multus"], True)),
        ("roce", "whereabouts", (["cniPlugins", "multus"], False)),
    ],
)
def test_secondary_network(clusters, fabric, ipam, expected):
    spec = spec_for(clusters, fabric, network(secondaryNetwork={"enabled": True, "ipam": ipam}))
    assert (sorted(spec["secondaryNetwork"]), "nvIpam" in spec) == expected


def spec_matrix(clusters):
    for fabric, ofed, secondary, ipam in itertools.product(
        ("infiniband", "roce"), (False, True), (False, True), ("nv-ipam", "whereabouts")
    ):
        config = network(ofedDriver=ofed, secondaryNetwork={"enabled": secondary, "ipam": ipam})
        yield (fabric, ofed, secondary, ipam), spec_for(clusters, fabric, config)


def test_nic_cluster_policy_validates_against_the_crd(upstream, clusters):
    validator = jsonschema.Draft7Validator(upstream.strict(upstream.nic_cluster_policy_schema()))
    for case, spec in spec_matrix(clusters):
        document = {
            "apiVersion": "mellanox.com/v1alpha1",
            "kind": "NicClusterPolicy",
            "metadata": {"name": "nic-cluster-policy"},
            "spec": spec,
        }
        errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(document)]
        assert errors == [], case


def test_crd_check_catches_the_removed_ipam_plugin(upstream):
    validator = jsonschema.Draft7Validator(upstream.strict(upstream.nic_cluster_policy_schema()))
    spec = {"secondaryNetwork": {"ipamPlugin": {"image": "whereabouts"}}}
    (error,) = validator.iter_errors({"spec": spec})
    assert "'ipamPlugin' was unexpected" in error.message


def test_rdma_plugin_config_passes_the_operator_webhook_checks(upstream, clusters):
    schema = upstream.rdma_config_schema()
    for case, spec in spec_matrix(clusters):
        config = plugin_config(spec)
        jsonschema.validate(config, schema)
        for entry in config["configList"]:
            assert RESOURCE_NAME.match(entry["resourceName"]), case


def test_plugin_config_is_stable_json(clusters):
    cluster = clusters.handle("infiniband", "existing")
    data = rdma_shared_device_plugin_config(network(), "infiniband", cluster.gpu_pools)
    spec = spec_for(clusters)
    assert spec["rdmaSharedDevicePlugin"]["config"] == json.dumps(data, indent=2, sort_keys=True)


def test_chart_values_leave_nfd_to_the_gpu_operator(clusters):
    assert network_operator_values(clusters.system_pool) == {
        "nfd": {"enabled": False, "deployNodeFeatureRules": True},
        "operator": {"nodeSelector": {"disagg.dev/pool": "system"}},
    }
    assert "operator" not in network_operator_values(None)


def test_every_value_set_exists_in_the_upstream_chart(upstream, clusters):
    table = upstream.key_table("network-operator-26.4.1.values-keys.json")
    assert upstream.unknown_values(network_operator_values(clusters.system_pool), table) == []
