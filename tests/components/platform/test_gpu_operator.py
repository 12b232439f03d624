"""gpu_operator_values: platform/fabric toggles, GPU-node scheduling, and upstream's values and CRD."""

from __future__ import annotations

import itertools

import jsonschema
import pytest

from components.config.platform import PlatformConfig
from components.config.scheduling import Toleration
from components.platform.gpu_operator import gpu_node_tolerations, gpu_operator_values

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
CLUSTER_POLICY_SECTIONS = (
    "daemonsets", "driver", "toolkit", "devicePlugin", "dcgmExporter", "mig", "migManager",
)
"""Values sections the chart's clusterpolicy.yaml template copies into ClusterPolicy.spec
(checked in deployments/gpu-operator/templates/clusterpolicy.yaml at v26.7.0)."""

ALL_ON = PlatformConfig.model_validate({
    "gpuOperator": {
        "migStrategy": "mixed", "serviceMonitor": True, "gpudirectRdma": True, "nfd": False,
    },
    "networkOperator": {"ofedDriver": True},
})


def values_for(fabric, provider, config=None, clusters=None, **handle):
    pools = clusters.handle(fabric, provider, **handle) if clusters else None
    return gpu_operator_values(
        config or PlatformConfig(),
        fabric,
        provider,
        pools.gpu_pools if pools else None,
        pools.system_pool if pools else None,
    )


@pytest.mark.parametrize(("provider", "installed"), [("eks", False), ("existing", True)])
def test_driver_and_toolkit_follow_the_platform(provider, installed):
    values = values_for("none", provider)
    assert values["driver"]["enabled"] is installed
    assert values["toolkit"]["enabled"] is installed


def test_explicit_driver_setting_wins():
    config = PlatformConfig.model_validate({"gpuOperator": {"driver": False, "toolkit": False}})
    values = values_for("infiniband", "existing", config)
    assert (values["driver"]["enabled"], values["toolkit"]["enabled"]) == (False, False)


@pytest.mark.parametrize(
    ("fabric", "rdma"), [("infiniband", True), ("roce", True), ("efa", False), ("none", False)]
)
def test_gpudirect_rdma_only_on_infiniband_and_roce(fabric, rdma):
    provider = "existing" if rdma else "eks"
    assert values_for(fabric, provider)["driver"]["rdma"]["enabled"] is rdma


def test_host_mofed_unless_the_network_operator_deploys_the_driver():
    assert values_for("infiniband", "existing")["driver"]["rdma"]["useHostMofed"] is True
    config = PlatformConfig.model_validate({"networkOperator": {"ofedDriver": True}})
    assert values_for("infiniband", "existing", config)["driver"]["rdma"]["useHostMofed"] is False


def test_dcgm_service_monitor_follows_monitoring_and_keeps_the_gpu_pods_labels():
    """The DCGM exporter labels each GPU's series with the namespace and pod using it; honorLabels
    keeps those (instead of the exporter pod's) so per-tier GPU queries select on them."""
    values = values_for("efa", "eks")
    assert values["devicePlugin"] == {"enabled": True}
    assert values["dcgmExporter"] == {"enabled": True, "serviceMonitor": {"enabled": True, "honorLabels": True}}
    without = PlatformConfig.model_validate({"monitoring": {"enabled": False}})
    assert values_for("efa", "eks", without)["dcgmExporter"]["serviceMonitor"]["enabled"] is False


def test_service_monitor_and_mig_strategy_from_config():
    config = PlatformConfig.model_validate({"gpuOperator": {"serviceMonitor": False, "migStrategy": "single"}})
    values = values_for("efa", "eks", config)
    assert values["dcgmExporter"]["serviceMonitor"] == {"enabled": False, "honorLabels": True}
    assert values["mig"] == {"strategy": "single"}
    assert values["migManager"] == {"enabled": True}
    assert values_for("efa", "eks")["migManager"] == {"enabled": False}


def test_daemonsets_tolerate_every_gpu_pool_taint(clusters):
    dedicated = Toleration(key="dedicated", operator="Equal", value="llm")
    pools = [
        clusters.pool("a", "infiniband"),
        clusters.pool("b", "infiniband", tolerations=(Toleration(key="nvidia.com/gpu"), dedicated)),
    ]
    values = values_for("infiniband", "existing", clusters=clusters, pools=pools)
    expected = [
        {"key": "dedicated", "operator": "Equal", "effect": "NoSchedule", "value": "llm"},
        GPU_TOLERATION,
    ]
    assert values["daemonsets"]["tolerations"] == expected
    assert values["node-feature-discovery"]["worker"]["tolerations"] == [
        {"key": "node-role.kubernetes.io/control-plane", "operator": "Equal", "value": "", "effect": "NoSchedule"},
        *expected,
    ]


def test_gpu_taint_is_tolerated_even_without_pools():
    assert gpu_node_tolerations({}) == [GPU_TOLERATION]


def test_operator_and_nfd_control_plane_run_on_the_system_pool(clusters):
    values = values_for("efa", "eks", clusters=clusters)
    selector = {"disagg.dev/pool": "system"}
    assert values["operator"] == {"nodeSelector": selector}
    nfd = values["node-feature-discovery"]
    assert (nfd["master"], nfd["gc"]) == ({"nodeSelector": selector}, {"nodeSelector": selector})


def test_nfd_toggle():
    assert values_for("efa", "eks")["nfd"] == {"enabled": True}
    assert values_for("efa", "eks", ALL_ON)["nfd"] == {"enabled": False}


def value_matrix(clusters):
    for fabric, provider, config in itertools.product(
        ("efa", "infiniband", "roce", "none"), ("eks", "existing"), (PlatformConfig(), ALL_ON)
    ):
        yield (fabric, provider), values_for(fabric, provider, config, clusters=clusters)


def test_every_value_set_exists_in_the_upstream_chart(upstream, clusters):
    table = upstream.gpu_operator_key_table()
    for case, values in value_matrix(clusters):
        assert upstream.unknown_values(values, table) == [], case


def test_key_check_catches_a_misspelt_value(upstream):
    table = upstream.gpu_operator_key_table()
    assert upstream.unknown_values({"driver": {"rdma": {"enable": True}}, "mig": "single"}, table) == [
        "driver.rdma.enable: not in the upstream values",
        "mig: upstream default is a map, set to str",
    ]


def test_cluster_policy_sections_validate_against_the_crd(upstream, clusters):
    schema = upstream.strict(upstream.cluster_policy_spec_schema())
    schema.pop("required")  # the chart template fills the sections we leave at their defaults
    for case, values in value_matrix(clusters):
        spec = {section: values[section] for section in CLUSTER_POLICY_SECTIONS}
        for error in jsonschema.Draft7Validator(schema).iter_errors(spec):
            pytest.fail(f"{case}: {error.json_path}: {error.message}")


def test_crd_check_catches_an_unknown_field(upstream):
    schema = upstream.strict(upstream.cluster_policy_spec_schema())
    schema.pop("required")
    with pytest.raises(jsonschema.ValidationError, match="'peermem' was unexpected"):
        jsonschema.validate({"driver": {"rdma": {"enabled": True, "peermem": True}}}, schema)
    with pytest.raises(jsonschema.ValidationError, match="'dual' is not one of"):
        jsonschema.validate({"mig": {"strategy": "dual"}}, schema)
