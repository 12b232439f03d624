"""PlatformOperators under Pulumi mocks: which releases exist per fabric, with what, on which provider."""

from __future__ import annotations

import json

import pytest

from components.config.platform import PlatformConfig
from components.platform import PlatformOperators
from disaggctl.synth.program import SynthResult, write_synth

RELEASES = "kubernetes:helm.sh/v3:Release"
NIC_POLICY = "kubernetes:mellanox.com/v1alpha1:NicClusterPolicy"
ALWAYS = {"kube-prometheus-stack", "metrics-server", "gpu-operator", "lws"}
"""Releases of every cluster (monitoring and metrics-server are on by default)."""


def deploy(mocks, clusters, fabric, platform=None, config=None, name="llm-platform"):
    def program():
        handle = clusters.handle(fabric, platform, provider=mocks.provider())
        return PlatformOperators(name, handle, config or PlatformConfig())

    return mocks.run(program)


@pytest.mark.parametrize(
    ("fabric", "releases"),
    [
        ("efa", {*ALWAYS, "aws-efa-k8s-device-plugin"}),
        ("infiniband", {*ALWAYS, "network-operator"}),
        ("roce", {*ALWAYS, "network-operator"}),
        ("none", ALWAYS),
    ],
)
def test_releases_follow_the_fabric(mocks, clusters, fabric, releases):
    out = deploy(mocks, clusters, fabric)
    assert set(out.releases()) == releases
    assert len(out.of_type(NIC_POLICY)) == (1 if fabric in ("infiniband", "roce") else 0)
    assert out.result.installed == PlatformConfig().components_for(fabric)


def test_installed_and_releases_in_install_order(mocks, clusters):
    config = PlatformConfig.model_validate({"metricsAdapter": {"enabled": True}})
    out = deploy(mocks, clusters, "infiniband", config=config)
    platform = out.result
    assert platform.installed == [
        "monitoring", "metrics-server", "gpu-operator", "network-operator", "leader-worker-set", "metrics-adapter",
    ]  # fmt: skip
    assert [r._name for r in platform.releases] == [
        "llm-platform-monitoring-release",
        "llm-platform-metrics-server-release",
        "llm-platform-gpu-operator-release",
        "llm-platform-network-operator-release",
        "llm-platform-network-operator-nic-cluster-policy",
        "llm-platform-leader-worker-set-release",
        "llm-platform-metrics-adapter-release",
    ]


def test_metrics_adapter_off_by_default_and_uses_the_shared_rules(mocks, clusters):
    assert "prometheus-adapter" not in deploy(mocks, clusters, "efa").releases()
    config = PlatformConfig.model_validate({"metricsAdapter": {"enabled": True}})
    adapter = deploy(mocks, clusters, "efa", config=config).releases()["prometheus-adapter"]
    assert adapter.inputs["chart"] == "prometheus-adapter"
    assert adapter.inputs["repositoryOpts"] == {"repo": "https://prometheus-community.github.io/helm-charts"}
    names = [rule["name"]["as"] for rule in adapter.inputs["values"]["rules"]["custom"]]
    assert names == [
        "triton_queue_time_ms", "trtllm_kv_cache_utilization", "trtllm_waiting_requests",
        "llmapi_kv_cache_utilization", "llmapi_requests_waiting",
    ]  # fmt: skip


@pytest.mark.parametrize(("platform", "installed"), [("eks", False), ("existing", True)])
def test_driver_off_on_eks_on_for_existing(mocks, clusters, platform, installed):
    values = deploy(mocks, clusters, "none", platform).releases()["gpu-operator"].inputs["values"]
    assert values["driver"]["enabled"] is installed
    assert values["toolkit"]["enabled"] is installed


@pytest.mark.parametrize(
    ("fabric", "rdma"), [("infiniband", True), ("roce", True), ("efa", False), ("none", False)]
)
def test_gpudirect_rdma_only_where_the_fabric_has_it(mocks, clusters, fabric, rdma):
    values = deploy(mocks, clusters, fabric).releases()["gpu-operator"].inputs["values"]
    assert values["driver"]["rdma"]["enabled"] is rdma


def test_chart_versions_are_pinned_from_config(mocks, clusters):
    config = PlatformConfig.model_validate({
        "gpuOperator": {"chart": {"chart": "gpu-operator", "repository": "https://helm.ngc.nvidia.com/nvidia", "version": "v26.3.3"}},
        "leaderWorkerSet": {"chart": {"chart": "lws", "repository": "oci://registry.k8s.io/lws/charts", "version": "0.9.0"}},
    })
    releases = deploy(mocks, clusters, "efa", config=config).releases()
    versions = {name: (r.inputs["chart"], r.inputs["version"]) for name, r in releases.items()}
    assert versions == {
        "kube-prometheus-stack": ("kube-prometheus-stack", "88.5.3"),
        "metrics-server": ("metrics-server", "3.13.0"),
        "gpu-operator": ("gpu-operator", "v26.3.3"),
        "aws-efa-k8s-device-plugin": ("aws-efa-k8s-device-plugin", "v0.5.30"),
        "lws": ("oci://registry.k8s.io/lws/charts/lws", "0.9.0"),
    }
    assert "repositoryOpts" not in releases["lws"].inputs
    assert releases["gpu-operator"].inputs["repositoryOpts"] == {"repo": "https://helm.ngc.nvidia.com/nvidia"}


def test_default_versions_for_an_infiniband_cluster(mocks, clusters):
    releases = deploy(mocks, clusters, "infiniband").releases()
    assert {name: r.inputs["version"] for name, r in releases.items()} == {
        "kube-prometheus-stack": "88.5.3", "metrics-server": "3.13.0",
        "gpu-operator": "v26.7.0", "network-operator": "26.4.1", "lws": "0.10.0",
    }


def test_every_kubernetes_resource_uses_the_cluster_provider(mocks, clusters):
    config = PlatformConfig.model_validate({"metricsAdapter": {"enabled": True}})
    for fabric in ("efa", "roce"):
        out = deploy(mocks, clusters, fabric, config=config)
        kubernetes = [r for r in out.resources if r.custom and r.type.startswith("kubernetes:")]
        assert len(kubernetes) >= 6
        for resource in kubernetes:
            assert resource.provider.split("::")[-2] == "k8s", resource.name


def test_namespaces(mocks, clusters):
    out = deploy(mocks, clusters, "efa")
    namespaces = {r.name: r.inputs["metadata"] for r in out.of_type("kubernetes:core/v1:Namespace")}
    assert namespaces == {
        "llm-platform-namespace": {
            "name": "gpu-platform",
            "labels": {
                "app.kubernetes.io/part-of": "disagg-inference",
                "pod-security.kubernetes.io/enforce": "privileged",
            },
        },
        "llm-platform-leader-worker-set-namespace": {
            "name": "lws-system",
            "labels": {"app.kubernetes.io/part-of": "disagg-inference"},
        },
        "llm-platform-monitoring-namespace": {
            "name": "monitoring",
            "labels": {
                "app.kubernetes.io/part-of": "disagg-inference",
                "pod-security.kubernetes.io/enforce": "privileged",
            },
        },
    }
    releases = out.releases()
    assert {n: r.inputs["namespace"] for n, r in releases.items()} == {
        "kube-prometheus-stack": "monitoring", "metrics-server": "kube-system",
        "gpu-operator": "gpu-platform", "aws-efa-k8s-device-plugin": "gpu-platform", "lws": "lws-system",
    }
    # the DCGM ServiceMonitor needs the monitoring.coreos.com CRDs the stack's chart brings
    assert releases["gpu-operator"].dependencies == sorted(
        [out.named("llm-platform-namespace").urn, releases["kube-prometheus-stack"].urn]
    )
    assert releases["lws"].dependencies == [out.named("llm-platform-leader-worker-set-namespace").urn]


def test_nic_cluster_policy_comes_after_the_network_operator(mocks, clusters):
    out = deploy(mocks, clusters, "roce")
    (policy,) = out.of_type(NIC_POLICY)
    network = out.named("llm-platform-network-operator-release")
    gpu = out.named("llm-platform-gpu-operator-release")
    assert policy.dependencies == [network.urn]
    assert gpu.urn in network.dependencies
    assert policy.inputs["metadata"] == {"name": "nic-cluster-policy"}
    config = json.loads(policy.inputs["spec"]["rdmaSharedDevicePlugin"]["config"])
    assert config["configList"][0]["resourceName"] == "rdma_shared_device_a"
    assert config["configList"][0]["selectors"]["linkTypes"] == ["ether"]


def test_component_tree_names_and_types(mocks, clusters):
    out = deploy(mocks, clusters, "infiniband")
    tree = {(r.type, r.name, r.parent_name) for r in out.resources if r.type != "pulumi:providers:kubernetes"}
    assert tree == {
        ("disagg:platform:PlatformOperators", "llm-platform", "disagg-test"),
        ("kubernetes:core/v1:Namespace", "llm-platform-namespace", "llm-platform"),
        ("disagg:platform:Monitoring", "llm-platform-monitoring", "llm-platform"),
        ("kubernetes:core/v1:Namespace", "llm-platform-monitoring-namespace", "llm-platform-monitoring"),
        (RELEASES, "llm-platform-monitoring-release", "llm-platform-monitoring"),
        ("disagg:platform:MetricsServer", "llm-platform-metrics-server", "llm-platform"),
        (RELEASES, "llm-platform-metrics-server-release", "llm-platform-metrics-server"),
        ("disagg:platform:GpuOperator", "llm-platform-gpu-operator", "llm-platform"),
        (RELEASES, "llm-platform-gpu-operator-release", "llm-platform-gpu-operator"),
        ("disagg:platform:NetworkOperator", "llm-platform-network-operator", "llm-platform"),
        (RELEASES, "llm-platform-network-operator-release", "llm-platform-network-operator"),
        (NIC_POLICY, "llm-platform-network-operator-nic-cluster-policy", "llm-platform-network-operator"),
        ("disagg:platform:LeaderWorkerSet", "llm-platform-leader-worker-set", "llm-platform"),
        ("kubernetes:core/v1:Namespace", "llm-platform-leader-worker-set-namespace", "llm-platform-leader-worker-set"),
        (RELEASES, "llm-platform-leader-worker-set-release", "llm-platform-leader-worker-set"),
    }


def test_contradicting_config_is_refused(mocks, clusters):
    config = PlatformConfig.model_validate({"gpuOperator": {"driver": True}})
    with pytest.raises(ValueError) as info:
        deploy(mocks, clusters, "efa", config=config)
    assert str(info.value) == (
        "platform configuration contradicts cluster 'test-cluster':\n"
        "  - gpuOperator.driver is true on EKS, whose AL2023 NVIDIA AMI already ships the driver: "
        "remove the setting"
    )


def test_synth_output_is_byte_identical_across_runs(mocks, clusters, tmp_path):
    config = PlatformConfig.model_validate({"metricsAdapter": {"enabled": True}})
    outputs = []
    for run in ("a", "b"):
        for fabric in ("efa", "infiniband"):
            out = deploy(mocks, clusters, fabric, config=config, name=f"{fabric}-platform")
            target = tmp_path / run / fabric
            write_synth(SynthResult(out.resources, {}), target)
            outputs.append({str(p.relative_to(target)): p.read_bytes() for p in sorted(target.rglob("*")) if p.is_file()})
    assert outputs[0] == outputs[2] and outputs[1] == outputs[3]
    manifest = outputs[1]["manifests/_cluster/nicclusterpolicy-infiniband-platform-network-operator-nic-cluster-policy.yaml"]
    assert b"kind: NicClusterPolicy" in manifest
    helm = outputs[0]["manifests/gpu-platform/helmrelease-efa-platform-gpu-operator-release.yaml"]
    assert b"version: v26.7.0" in helm and b"repository: https://helm.ngc.nvidia.com/nvidia" in helm


def test_network_operator_alone_refuses_a_fabric_without_rdma(mocks, clusters):
    from components.platform.network_operator import NetworkOperator

    with pytest.raises(ValueError) as info:
        mocks.run(lambda: NetworkOperator("net", clusters.handle("efa", provider=mocks.provider()), PlatformConfig()))
    assert str(info.value) == (
        "NetworkOperator on a cluster whose fabric is 'efa': it serves only InfiniBand/RoCE "
        "clusters (PlatformOperators installs it only there)"
    )
