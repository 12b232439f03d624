"""PlatformConfig: pinned charts, operators chosen by fabric, contradictions with the cluster."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from components.config.platform import ChartConfig, GpuOperatorConfig, MetricsAdapterConfig, PlatformConfig


def error_message(info: pytest.ExceptionInfo[ValidationError]) -> str:
    (error,) = info.value.errors()
    return error["msg"]


def test_charts_are_pinned_to_released_versions():
    config = PlatformConfig()
    charts = {
        name: (chart.repository, chart.chart, chart.version)
        for name, chart in [
            ("gpu", config.gpu_operator.chart),
            ("network", config.network_operator.chart),
            ("efa", config.efa_device_plugin.chart),
            ("lws", config.leader_worker_set.chart),
            ("adapter", config.metrics_adapter.chart),
        ]
    }
    assert charts == {
        "gpu": ("https://helm.ngc.nvidia.com/nvidia", "gpu-operator", "v26.7.0"),
        "network": ("https://helm.ngc.nvidia.com/nvidia", "network-operator", "26.4.1"),
        "efa": ("https://aws.github.io/eks-charts", "aws-efa-k8s-device-plugin", "v0.5.30"),
        "lws": ("oci://registry.k8s.io/lws/charts", "lws", "0.10.0"),
        "adapter": ("https://prometheus-community.github.io/helm-charts", "prometheus-adapter", "5.3.0"),
    }


def test_network_operator_components_follow_the_chart_version():
    config = PlatformConfig.model_validate({"networkOperator": {"chart": {
        "chart": "network-operator", "repository": "https://helm.ngc.nvidia.com/nvidia", "version": "26.1.2",
    }}})
    assert config.network_operator.components_tag() == "network-operator-v26.1.2"
    assert PlatformConfig().network_operator.components_tag() == "network-operator-v26.4.1"


def test_oci_chart_reference_carries_the_registry():
    lws = PlatformConfig().leader_worker_set.chart
    assert lws.chart_ref() == "oci://registry.k8s.io/lws/charts/lws"
    assert lws.repository_url() is None
    gpu = PlatformConfig().gpu_operator.chart
    assert (gpu.chart_ref(), gpu.repository_url()) == ("gpu-operator", "https://helm.ngc.nvidia.com/nvidia")


@pytest.mark.parametrize("version", ["latest", "^26.4.0", "26.x", "26.4", "~1.2.3", ">=1.0.0", ""])
def test_unpinned_chart_version_is_refused(version):
    with pytest.raises(ValidationError) as info:
        ChartConfig(chart="lws", repository="oci://registry.k8s.io/lws/charts", version=version)
    assert error_message(info) == (
        f"Value error, chart version '{version}' is not pinned: use an exact released version "
        "such as 26.4.1 (ranges, 'latest' and wildcards are refused)"
    )


def test_chart_repository_must_be_a_url():
    with pytest.raises(ValidationError) as info:
        ChartConfig(chart="lws", repository="registry.k8s.io/lws/charts", version="0.10.0")
    assert error_message(info) == (
        "Value error, chart repository 'registry.k8s.io/lws/charts' is neither a Helm repository "
        "URL (https://…) nor an OCI registry path (oci://…): fix it"
    )


@pytest.mark.parametrize(
    ("fabric", "expected"),
    [
        ("efa", ["monitoring", "metrics-server", "gpu-operator", "efa-device-plugin", "leader-worker-set"]),
        ("infiniband", ["monitoring", "metrics-server", "gpu-operator", "network-operator", "leader-worker-set"]),
        ("roce", ["monitoring", "metrics-server", "gpu-operator", "network-operator", "leader-worker-set"]),
        ("none", ["monitoring", "metrics-server", "gpu-operator", "leader-worker-set"]),
    ],
)
def test_components_follow_the_fabric(fabric, expected):
    assert PlatformConfig().components_for(fabric) == expected


def test_metrics_adapter_is_off_by_default_and_last_when_enabled():
    config = PlatformConfig.model_validate({"metricsAdapter": {"enabled": True}})
    assert config.components_for("none") == [
        "monitoring", "metrics-server", "gpu-operator", "leader-worker-set", "metrics-adapter",
    ]  # fmt: skip
    assert "metrics-adapter" not in PlatformConfig().components_for("efa")


def test_metrics_adapter_section_reads_camel_case():
    config = PlatformConfig.model_validate(
        {"metricsAdapter": {"enabled": True, "prometheusUrl": "https://prom.example.internal:9443/api/"}}
    )
    assert config.metrics_adapter.prometheus_url == "https://prom.example.internal:9443/api"


@pytest.mark.parametrize("url", ["prometheus:9090", "ftp://prom", "http://", "http://prom:0", "http://prom?x=1"])
def test_metrics_adapter_url_must_be_http(url):
    with pytest.raises(ValidationError) as info:
        MetricsAdapterConfig(prometheus_url=url)
    assert error_message(info) == (
        f"Value error, prometheusUrl '{url}' is not an http(s) URL of a Prometheus server: use e.g. "
        "http://prometheus-operated.monitoring.svc:9090"
    )


def test_service_monitor_needs_the_dcgm_exporter():
    with pytest.raises(ValidationError) as info:
        GpuOperatorConfig(dcgm_exporter=False, service_monitor=True)
    assert error_message(info) == (
        "Value error, serviceMonitor is true but dcgmExporter is false (the ServiceMonitor scrapes "
        "the DCGM exporter): enable dcgmExporter or drop serviceMonitor"
    )


def test_namespace_may_not_be_lws_system():
    with pytest.raises(ValidationError) as info:
        PlatformConfig(namespace="lws-system")
    assert error_message(info) == (
        "Value error, platform.namespace 'lws-system' is the LeaderWorkerSet controller's own "
        "namespace: choose another (e.g. gpu-platform)"
    )


def test_rdma_vendor_must_be_a_pci_id():
    with pytest.raises(ValidationError) as info:
        PlatformConfig.model_validate({"networkOperator": {"rdmaSharedDevice": {"vendors": ["Mellanox"]}}})
    assert error_message(info) == (
        "Value error, vendor 'Mellanox' is not a PCI vendor id (4 lowercase hex digits, e.g. 15b3)"
    )


def test_defaults_agree_with_every_cluster():
    for fabric in ("efa", "infiniband", "roce", "none"):
        for provider in ("eks", "existing"):
            assert PlatformConfig().check_against(fabric, provider) == []


def test_gpudirect_rdma_needs_an_rdma_fabric():
    config = PlatformConfig.model_validate({"gpuOperator": {"gpudirectRdma": True}})
    assert config.check_against("efa", "eks") == [
        "gpuOperator.gpudirectRdma is true but the cluster's fabric is 'efa' (GPUDirect RDMA via "
        "nvidia-peermem needs InfiniBand/RoCE): remove the setting"
    ]
    assert config.check_against("roce", "existing") == []


def test_driver_and_toolkit_are_refused_on_eks():
    config = PlatformConfig.model_validate({"gpuOperator": {"driver": True, "toolkit": True}})
    assert config.check_against("efa", "eks") == [
        "gpuOperator.driver is true on EKS, whose AL2023 NVIDIA AMI already ships the driver: "
        "remove the setting",
        "gpuOperator.toolkit is true on EKS, whose AL2023 NVIDIA AMI already ships the NVIDIA "
        "container toolkit: remove the setting",
    ]
    assert config.check_against("infiniband", "existing") == []


def test_network_operator_settings_without_an_rdma_fabric_are_refused():
    config = PlatformConfig.model_validate({"networkOperator": {"ofedDriver": True}})
    assert config.check_against("efa", "eks") == [
        "networkOperator is configured but the cluster's fabric is 'efa' (the Network Operator is "
        "installed only on InfiniBand/RoCE): remove the networkOperator section"
    ]


def test_efa_settings_without_efa_are_refused():
    config = PlatformConfig.model_validate({"efaDevicePlugin": {"chart": {
        "chart": "aws-efa-k8s-device-plugin", "repository": "https://aws.github.io/eks-charts", "version": "v0.5.29",
    }}})
    assert config.check_against("infiniband", "existing") == [
        "efaDevicePlugin is configured but the cluster's fabric is 'infiniband' (the EFA device "
        "plugin is installed only on EFA clusters): remove the efaDevicePlugin section"
    ]


def test_link_types_must_match_the_fabric():
    config = PlatformConfig.model_validate({"networkOperator": {"rdmaSharedDevice": {"linkTypes": ["ether"]}}})
    assert config.check_against("infiniband", "existing") == [
        "networkOperator.rdmaSharedDevice.linkTypes ['ether'] do not match the 'infiniband' fabric: "
        "use [infiniband] or leave it empty"
    ]
    assert config.check_against("roce", "existing") == []
