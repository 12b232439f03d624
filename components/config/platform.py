"""Platform operators: which are installed follows from the cluster's fabric; charts are pinned.

Chart versions are released versions (see tests/components/platform/data/SOURCES.md for where each was
confirmed): GPU Operator v26.7.0, Network Operator 26.4.1, aws-efa-k8s-device-plugin v0.5.30,
lws 0.10.0, prometheus-adapter 5.3.0, kube-prometheus-stack 88.5.3, metrics-server 3.13.0.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from components.config.base import ConfigModel, check_dns_label
from components.config.scheduling import Fabric
from components.config.security import SecurityConfig

RDMA_FABRICS: tuple[Fabric, ...] = ("infiniband", "roce")
"""Fabrics the NVIDIA Network Operator serves (and on which GPUDirect RDMA is possible)."""

LWS_NAMESPACE = "lws-system"
"""Namespace of the LeaderWorkerSet controller (the upstream default)."""

_EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$")


def check_prometheus_url(url: str) -> str:
    """``url`` without a trailing slash if it is an http(s) URL of a server, else ValueError."""
    parts = urlsplit(url)
    try:
        valid_port = parts.port is None or parts.port > 0
    except ValueError:
        valid_port = False
    if parts.username is not None or parts.password is not None:
        redacted = f"{parts.scheme}://…@{parts.netloc.rpartition('@')[2]}{parts.path}"
        raise ValueError(
            f"prometheusUrl '{redacted}' carries credentials (user:password@), which would be written "
            "in plain text into every ScaledObject and the adapter's arguments: remove them and let "
            "the scalers query an in-cluster Prometheus (NetworkPolicies restrict who reaches it)"
        )
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or not valid_port
        or parts.query
        or parts.fragment
    ):
        raise ValueError(
            f"prometheusUrl '{url}' is not an http(s) URL of a Prometheus server: use e.g. "
            "http://prometheus-operated.monitoring.svc:9090"
        )
    return url.rstrip("/")


class ChartConfig(ConfigModel):
    """A pinned Helm chart."""

    chart: str
    repository: str
    """Helm repository URL, or an ``oci://`` registry path (then ``chart`` is the last element)."""
    version: str

    @field_validator("version")
    @classmethod
    def _pinned(cls, version: str) -> str:
        if not _EXACT_VERSION.match(version):
            raise ValueError(
                f"chart version '{version}' is not pinned: use an exact released version "
                "such as 26.4.1 (ranges, 'latest' and wildcards are refused)"
            )
        return version

    @field_validator("repository")
    @classmethod
    def _repository(cls, repository: str) -> str:
        if repository.startswith("http://"):
            raise ValueError(
                f"chart repository '{repository}' is plain http: charts (and the cluster-admin code in "
                f"them) would be fetched unauthenticated and could be swapped in transit: use "
                f"https://{repository.removeprefix('http://')} or an oci:// registry"
            )
        if not repository.startswith(("https://", "oci://")):
            raise ValueError(
                f"chart repository '{repository}' is neither a Helm repository URL (https://…) "
                "nor an OCI registry path (oci://…): fix it"
            )
        return repository.rstrip("/")

    @property
    def is_oci(self) -> bool:
        return self.repository.startswith("oci://")

    def chart_ref(self) -> str:
        """What Helm's ``chart`` argument takes: the name, or the full ``oci://…/name``."""
        return f"{self.repository}/{self.chart}" if self.is_oci else self.chart

    def repository_url(self) -> str | None:
        """The Helm repository to add, or None for an OCI chart (the ref carries it)."""
        return None if self.is_oci else self.repository


class GpuOperatorConfig(ConfigModel):
    """NVIDIA GPU Operator (always installed)."""

    chart: ChartConfig = ChartConfig(
        chart="gpu-operator", repository="https://helm.ngc.nvidia.com/nvidia", version="v26.7.0"
    )
    driver: bool | None = None
    """Install the GPU driver; default: off on EKS (the AL2023 NVIDIA AMI ships it), on elsewhere."""
    toolkit: bool | None = None
    """Install the container toolkit; default: off on EKS (the AMI ships it), on elsewhere."""
    device_plugin: bool = True
    """NVIDIA device plugin: advertises ``nvidia.com/gpu`` (no AMI ships it)."""
    mig_strategy: Literal["none", "single", "mixed"] = "none"
    """How MIG devices are advertised; "none" also leaves the MIG manager out."""
    dcgm_exporter: bool = True
    service_monitor: bool | None = None
    """Create a Prometheus Operator ServiceMonitor for DCGM (needs its CRDs on the cluster);
    default: on when ``monitoring`` installs the Prometheus Operator."""
    gpudirect_rdma: bool | None = None
    """GPUDirect RDMA (nvidia-peermem via the driver container); default: on for InfiniBand/RoCE."""
    nfd: bool = True
    """Deploy Node Feature Discovery with the operator (off when the cluster already runs NFD)."""

    @model_validator(mode="after")
    def _service_monitor_needs_exporter(self) -> GpuOperatorConfig:
        if self.service_monitor and not self.dcgm_exporter:
            raise ValueError(
                "serviceMonitor is true but dcgmExporter is false (the ServiceMonitor scrapes "
                "the DCGM exporter): enable dcgmExporter or drop serviceMonitor"
            )
        return self

    def driver_enabled(self, provider: str) -> bool:
        return self.driver if self.driver is not None else provider != "eks"

    def toolkit_enabled(self, provider: str) -> bool:
        return self.toolkit if self.toolkit is not None else provider != "eks"

    def gpudirect_rdma_enabled(self, fabric: Fabric) -> bool:
        return self.gpudirect_rdma if self.gpudirect_rdma is not None else fabric in RDMA_FABRICS


class RdmaSharedDeviceConfig(ConfigModel):
    """Which NICs the RDMA shared device plugin exposes (its resource name comes from the cluster)."""

    vendors: list[str] = ["15b3"]
    """PCI vendor ids (15b3: Mellanox/NVIDIA)."""
    if_names: list[str] = []
    """Interface names (e.g. ibp1s0); empty: select by vendor and link type."""
    link_types: list[Literal["infiniband", "ether"]] = []
    """Default: infiniband for IB fabrics, ether for RoCE."""
    rdma_hca_max: int = Field(default=63, ge=1, le=1000)
    """Pods that may share one RDMA device."""

    @field_validator("vendors")
    @classmethod
    def _vendors(cls, vendors: list[str]) -> list[str]:
        for vendor in vendors:
            if not re.fullmatch(r"[0-9a-f]{4}", vendor):
                raise ValueError(
                    f"vendor '{vendor}' is not a PCI vendor id (4 lowercase hex digits, e.g. 15b3)"
                )
        return vendors

    def link_types_for(self, fabric: Fabric) -> list[str]:
        if self.link_types:
            return sorted(set(self.link_types))
        return ["ether"] if fabric == "roce" else ["infiniband"]


class SecondaryNetworkConfig(ConfigModel):
    """Multus + CNI plugins (+ IPoIB on InfiniBand) + IPAM for a secondary (RDMA) pod network."""

    enabled: bool = False
    ipam: Literal["nv-ipam", "whereabouts"] = "nv-ipam"
    """nv-ipam: deployed by the NicClusterPolicy. whereabouts: not deployed — Network Operator
    releases since 25.10 no longer carry it (NicClusterPolicy lost ``ipamPlugin``); install it
    yourself and reference it from your NetworkAttachmentDefinitions."""


class NetworkOperatorConfig(ConfigModel):
    """NVIDIA Network Operator + NicClusterPolicy (installed on InfiniBand/RoCE fabrics)."""

    chart: ChartConfig = ChartConfig(
        chart="network-operator", repository="https://helm.ngc.nvidia.com/nvidia", version="26.4.1"
    )
    image_repository: str = "nvcr.io/nvidia/mellanox"
    """Registry path of the NicClusterPolicy's component images."""
    component_version: str | None = None
    """Tag of the component images; default ``network-operator-v<chart version>`` (the tag the
    operator release ships its components under)."""
    ofed_driver: bool = False
    """Deploy the DOCA/MOFED driver container (off when hosts already have it)."""
    ofed_driver_version: str = "doca3.4.1-26.04-1.1.0.0-1"
    """doca-driver image tag; the default is the one Network Operator 26.4.1 was released with."""
    rdma_shared_device: RdmaSharedDeviceConfig = RdmaSharedDeviceConfig()
    secondary_network: SecondaryNetworkConfig = SecondaryNetworkConfig()

    def components_tag(self) -> str:
        return self.component_version or f"network-operator-v{self.chart.version.removeprefix('v')}"


class EfaDevicePluginConfig(ConfigModel):
    """AWS EFA Kubernetes device plugin (installed on EFA fabrics)."""

    chart: ChartConfig = ChartConfig(
        chart="aws-efa-k8s-device-plugin", repository="https://aws.github.io/eks-charts", version="v0.5.30"
    )


class LeaderWorkerSetConfig(ConfigModel):
    """LeaderWorkerSet controller (always installed: workers are LWS groups)."""

    chart: ChartConfig = ChartConfig(
        chart="lws", repository="oci://registry.k8s.io/lws/charts", version="0.10.0"
    )


class MetricsAdapterConfig(ConfigModel):
    """Prometheus Adapter serving the Triton/TRT-LLM custom metrics the tiers' HPAs scale on."""

    enabled: bool = False
    """Off by default: KEDA is the scaler of choice (both read the Prometheus of ``monitoring``)."""
    prometheus_url: str | None = None
    """Prometheus the adapter queries: scheme, host, optional port and path; default: the one
    ``monitoring`` installs."""
    chart: ChartConfig = ChartConfig(
        chart="prometheus-adapter",
        repository="https://prometheus-community.github.io/helm-charts",
        version="5.3.0",
    )

    @field_validator("prometheus_url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        return None if url is None else check_prometheus_url(url)


class KarpenterConfig(ConfigModel):
    """Karpenter (installed on EKS when a GPU pool has ``autoscaler: karpenter``), in kube-system
    as upstream installs it (its Pod Identity association names that service account)."""

    chart: ChartConfig = ChartConfig(
        chart="karpenter", repository="oci://public.ecr.aws/karpenter", version="1.14.1"
    )
    ami_alias: str = "al2023@v20260724"
    """EC2NodeClass ``amiSelectorTerms`` alias: the EKS-optimized AL2023 AMI (its NVIDIA variant
    on GPU instance types), pinned to a release: v20260724 is a tag of awslabs/amazon-eks-ami
    (``aws ssm get-parameters-by-path --path
    /aws/service/eks/optimized-ami/<k8s>/amazon-linux-2023/x86_64/nvidia``)."""
    consolidate_after: str = "10m"
    """How long a GPU node stays empty before Karpenter removes it."""

    @field_validator("ami_alias")
    @classmethod
    def _alias(cls, alias: str) -> str:
        if not re.fullmatch(r"al2023@v\d{8}", alias):
            raise ValueError(
                f"karpenter.amiAlias '{alias}' is not a pinned AL2023 alias: use al2023@v<YYYYMMDD> "
                "(latest would drift every node on each AMI release)"
            )
        return alias


class KedaConfig(ConfigModel):
    """KEDA: event-driven autoscaling of the serving tiers on Prometheus queries."""

    enabled: bool = False
    """Off by default: it needs a Prometheus that scrapes the serving pods (``monitoring``)."""
    prometheus_url: str | None = None
    """Prometheus the ScaledObjects' triggers query; default: the one ``monitoring`` installs."""
    chart: ChartConfig = ChartConfig(chart="keda", repository="https://kedacore.github.io/charts", version="2.20.2")
    namespace: str = "keda"

    @field_validator("prometheus_url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        return None if url is None else check_prometheus_url(url)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, namespace: str) -> str:
        return check_dns_label(namespace, "platform.keda.namespace")


class LoadBalancerControllerConfig(ConfigModel):
    """AWS Load Balancer Controller: reconciles the frontends' NLB Services on EKS (in kube-system,
    whose service account its IRSA role trusts)."""

    enabled: bool | None = None
    """None: installed on EKS (frontends of type LoadBalancer need it); false: the cluster has one."""
    chart: ChartConfig = ChartConfig(
        chart="aws-load-balancer-controller", repository="https://aws.github.io/eks-charts", version="3.5.0"
    )

class MonitoringConfig(ConfigModel):
    """The Prometheus the scalers query and the Grafana operators open: kube-prometheus-stack
    (Prometheus Operator, Prometheus, Grafana with its dashboard sidecar, kube-state-metrics,
    node exporter) in its own namespace. Why in-cluster rather than Amazon Managed Service for
    Prometheus: docs/monitoring.md."""

    enabled: bool = True
    """Off only when the cluster already runs a Prometheus Operator stack: then set
    ``keda.prometheusUrl`` (and its PodMonitors/ServiceMonitors must be selected by that Prometheus)."""
    chart: ChartConfig = ChartConfig(
        chart="kube-prometheus-stack",
        repository="https://prometheus-community.github.io/helm-charts",
        version="88.5.3",
    )
    namespace: str = "monitoring"
    """Namespace of Prometheus and Grafana; the serving NetworkPolicies admit scrapes from it."""
    retention: str = "15d"
    """How long Prometheus keeps samples (``prometheusSpec.retention``)."""
    grafana: bool = True
    """Grafana with the dashboards of every deployment (ConfigMaps labelled ``grafana_dashboard``)."""

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, namespace: str) -> str:
        return check_dns_label(namespace, "platform.monitoring.namespace")

    @field_validator("retention")
    @classmethod
    def _retention(cls, retention: str) -> str:
        if not re.fullmatch(r"[1-9][0-9]*(ms|s|m|h|d|w|y)", retention):
            raise ValueError(
                f"platform.monitoring.retention '{retention}' is not a Prometheus duration: use e.g. 15d"
            )
        return retention

    def prometheus_url(self) -> str:
        """The Prometheus Operator's governing Service of the Prometheus it runs in ``namespace``
        (``prometheus-operated``, port 9090: ``governingServiceName`` in prometheus-operator
        pkg/prometheus/server/statefulset.go @v0.93.0)."""
        return f"http://prometheus-operated.{self.namespace}.svc:9090"


class MetricsServerConfig(ConfigModel):
    """metrics-server: the resource metrics API (``kubectl top``, CPU triggers and HPAs)."""

    enabled: bool = True
    """Off when the cluster already runs one (a second registration of v1beta1.metrics.k8s.io fails)."""
    chart: ChartConfig = ChartConfig(
        chart="metrics-server", repository="https://kubernetes-sigs.github.io/metrics-server", version="3.13.0"
    )


class PlatformConfig(ConfigModel):
    """Operators installed on the cluster; the defaults are right for every supported fabric."""

    gpu_operator: GpuOperatorConfig = GpuOperatorConfig()
    network_operator: NetworkOperatorConfig = NetworkOperatorConfig()
    efa_device_plugin: EfaDevicePluginConfig = EfaDevicePluginConfig()
    leader_worker_set: LeaderWorkerSetConfig = LeaderWorkerSetConfig()
    metrics_adapter: MetricsAdapterConfig = MetricsAdapterConfig()
    karpenter: KarpenterConfig = KarpenterConfig()
    keda: KedaConfig = KedaConfig()
    load_balancer_controller: LoadBalancerControllerConfig = LoadBalancerControllerConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    metrics_server: MetricsServerConfig = MetricsServerConfig()
    namespace: str = "gpu-platform"
    """Namespace of the operators (LWS keeps its own, lws-system)."""
    security: SecurityConfig = SecurityConfig()
    """Stack-wide security policy: image pinning, public frontends, Triton's restricted APIs."""

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, namespace: str) -> str:
        check_dns_label(namespace, "platform.namespace")
        if namespace == LWS_NAMESPACE:
            raise ValueError(
                f"platform.namespace '{namespace}' is the LeaderWorkerSet controller's own "
                "namespace: choose another (e.g. gpu-platform)"
            )
        return namespace

    def keda_prometheus_url(self) -> str | None:
        """What KEDA's triggers query: ``keda.prometheusUrl``, else the Prometheus of ``monitoring``
        (None when neither is there: validation refuses KEDA then)."""
        if self.keda.prometheus_url is not None:
            return self.keda.prometheus_url
        return self.monitoring.prometheus_url() if self.monitoring.enabled else None

    def adapter_prometheus_url(self) -> str | None:
        """What Prometheus Adapter queries: ``metricsAdapter.prometheusUrl``, else ``monitoring``'s."""
        if self.metrics_adapter.prometheus_url is not None:
            return self.metrics_adapter.prometheus_url
        return self.monitoring.prometheus_url() if self.monitoring.enabled else None

    def dcgm_service_monitor(self) -> bool:
        """Whether the GPU Operator creates the DCGM exporter's ServiceMonitor."""
        gpu = self.gpu_operator
        if gpu.service_monitor is not None:
            return gpu.service_monitor
        return gpu.dcgm_exporter and self.monitoring.enabled

    def components_for(self, fabric: Fabric) -> list[str]:
        """Names of the operators installed on a cluster with ``fabric``, in install order."""
        names = []
        if self.monitoring.enabled:
            names.append("monitoring")
        if self.metrics_server.enabled:
            names.append("metrics-server")
        names.append("gpu-operator")
        if fabric in RDMA_FABRICS:
            names.append("network-operator")
        if fabric == "efa":
            names.append("efa-device-plugin")
        names.append("leader-worker-set")
        if self.metrics_adapter.enabled:
            names.append("metrics-adapter")
        return names

    def check_against(self, fabric: Fabric, provider: str) -> list[str]:
        """Settings that contradict the cluster (one message each)."""
        problems: list[str] = []
        gpu = self.gpu_operator
        if self.keda.enabled and self.keda_prometheus_url() is None:
            problems.append(
                "keda.enabled is true but no Prometheus is there to query (monitoring.enabled is false "
                "and keda.prometheusUrl is unset): enable monitoring or set keda.prometheusUrl"
            )
        if self.metrics_adapter.enabled and self.adapter_prometheus_url() is None:
            problems.append(
                "metricsAdapter.enabled is true but no Prometheus is there to query (monitoring.enabled "
                "is false and metricsAdapter.prometheusUrl is unset): enable monitoring or set the URL"
            )
        if gpu.service_monitor and not self.monitoring.enabled:
            problems.append(
                "gpuOperator.serviceMonitor is true but monitoring.enabled is false: the ServiceMonitor "
                "CRD may not exist; drop serviceMonitor or keep monitoring (its chart brings the CRDs)"
            )
        if self.monitoring.enabled and self.monitoring.namespace in (self.namespace, LWS_NAMESPACE):
            problems.append(
                f"monitoring.namespace '{self.monitoring.namespace}' is shared with another platform "
                "component: use a namespace of its own, e.g. monitoring"
            )
        if gpu.gpudirect_rdma and fabric not in RDMA_FABRICS:
            problems.append(
                f"gpuOperator.gpudirectRdma is true but the cluster's fabric is '{fabric}' "
                "(GPUDirect RDMA via nvidia-peermem needs InfiniBand/RoCE): remove the setting"
            )
        if provider == "eks" and gpu.driver:
            problems.append(
                "gpuOperator.driver is true on EKS, whose AL2023 NVIDIA AMI already ships the "
                "driver: remove the setting"
            )
        if provider == "eks" and gpu.toolkit:
            problems.append(
                "gpuOperator.toolkit is true on EKS, whose AL2023 NVIDIA AMI already ships the "
                "NVIDIA container toolkit: remove the setting"
            )
        if fabric not in RDMA_FABRICS and self.network_operator.model_fields_set:
            problems.append(
                f"networkOperator is configured but the cluster's fabric is '{fabric}' (the "
                "Network Operator is installed only on InfiniBand/RoCE): remove the "
                "networkOperator section"
            )
        if fabric != "efa" and self.efa_device_plugin.model_fields_set:
            problems.append(
                f"efaDevicePlugin is configured but the cluster's fabric is '{fabric}' (the EFA "
                "device plugin is installed only on EFA clusters): remove the efaDevicePlugin section"
            )
        link_types = set(self.network_operator.rdma_shared_device.link_types)
        expected = {"infiniband": "infiniband", "roce": "ether"}.get(fabric)
        if expected and link_types and link_types != {expected}:
            problems.append(
                f"networkOperator.rdmaSharedDevice.linkTypes {sorted(link_types)} do not match the "
                f"'{fabric}' fabric: use [{expected}] or leave it empty"
            )
        return problems
