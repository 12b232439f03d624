"""efa_device_plugin_values: GPU-taint tolerations, EFA instance types, upstream chart keys."""

from __future__ import annotations

from components.config.scheduling import Toleration
from components.platform.efa_device_plugin import efa_device_plugin_values


def test_tolerates_the_gpu_taint(clusters):
    values = efa_device_plugin_values(clusters.handle("efa").gpu_pools)
    assert values["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_scheduled_on_the_efa_pools_instance_types(clusters):
    pools = {
        "p5": clusters.pool("p5", "efa"),
        "p4d": clusters.pool("p4d", "efa", instance_type="p4d.24xlarge"),
        "g6": clusters.pool("g6", "none", instance_type="g6.12xlarge"),
        "p5b": clusters.pool("p5b", "efa"),
    }
    assert efa_device_plugin_values(pools)["supportedInstanceLabels"] == {
        "keys": ["node.kubernetes.io/instance-type"],
        "values": ["p4d.24xlarge", "p5.48xlarge"],
    }


def test_without_known_instance_types_the_chart_list_stays(clusters):
    pools = {"x": clusters.pool("x", "efa", instance_type=None)}
    assert "supportedInstanceLabels" not in efa_device_plugin_values(pools)


def test_extra_pool_taints_are_tolerated(clusters):
    pool = clusters.pool("p5", "efa", tolerations=(Toleration(key="nvidia.com/gpu"), Toleration(key="capacity-block")))
    keys = [t["key"] for t in efa_device_plugin_values({"p5": pool})["tolerations"]]
    assert keys == ["capacity-block", "nvidia.com/gpu"]


def test_every_value_set_exists_in_the_upstream_chart(upstream, clusters):
    table = upstream.key_table("aws-efa-k8s-device-plugin-v0.5.30.values-keys.json")
    values = efa_device_plugin_values(clusters.handle("efa").gpu_pools)
    assert upstream.unknown_values(values, table) == []
