"""Cluster configuration: a new EKS cluster with EFA GPU pools, or an existing IB/RoCE cluster."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timedelta, timezone
from typing import Literal

from pydantic import Field, field_validator, model_validator

from components.config.base import ConfigModel, check_dns_label
from components.config.instance_types import GpuArch, InstanceType, lookup_instance_type
from components.config.limits import EKS_DEFAULT_KUBERNETES_VERSION, EKS_REGIONS
from components.config.scheduling import Fabric, NodePool, Toleration

GPU_TAINT = Toleration(key="nvidia.com/gpu", effect="NoSchedule")
"""Taint on every GPU node (and toleration on every GPU pod): CPU pods stay off GPU nodes."""

_IAM_PRINCIPAL = re.compile(r"arn:aws(-[a-z]+)*:iam::\d{12}:(role|user)(/[\w+=,.@-]+)+")

POOL_LABEL = "disagg.dev/pool"
"""Node label naming the pool a node belongs to; GPU pods select on it."""


EC2_CAPACITY_BLOCK_TERMINATION_LEAD = timedelta(minutes=30)
"""EC2 User Guide, "Capacity Blocks for ML": with 30 minutes left (instance types) EC2 begins
terminating the block's instances."""


class CapacityBlockConfig(ConfigModel):
    """An EC2 Capacity Block for ML: when it is active and how many instances it holds."""

    start: datetime
    """Start of the block, ISO-8601 with a zone (e.g. 2026-12-01T11:30:00Z)."""
    end: datetime
    """End of the block, ISO-8601 with a zone."""
    instance_count: int = Field(ge=1)
    """Instances reserved in the block (the pool's nodes can never exceed it)."""
    drain_margin_minutes: int = Field(default=30, ge=0, le=24 * 60)
    """Managed node groups: scale to zero this long before EC2 starts terminating the instances
    (30 minutes before the end), so in-flight requests finish."""

    @field_validator("start", "end")
    @classmethod
    def _zoned(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError(
                f"'{value.isoformat()}' has no time zone: write it in UTC with a Z, e.g. "
                "2026-12-01T11:30:00Z (the time EC2 shows for the block)"
            )
        return value.astimezone(timezone.utc)

    @model_validator(mode="after")
    def _ordered(self) -> CapacityBlockConfig:
        if self.end <= self.start:
            raise ValueError(
                f"capacityBlock end {self.end.isoformat()} is not after its start "
                f"{self.start.isoformat()}: copy both from the Capacity Block in the EC2 console"
            )
        if self.scale_in_at() <= self.start:
            raise ValueError(
                f"capacityBlock drainMarginMinutes {self.drain_margin_minutes} leaves no time in the "
                "block (the pool would scale in before it scales out): lower drainMarginMinutes"
            )
        return self

    def termination_at(self) -> datetime:
        """When EC2 begins terminating the block's instances."""
        return self.end - EC2_CAPACITY_BLOCK_TERMINATION_LEAD

    def scale_in_at(self) -> datetime:
        """When a managed node group on the block is scaled to zero."""
        return self.termination_at() - timedelta(minutes=self.drain_margin_minutes)


def _check_sizes(min_size: int, desired: int, max_size: int) -> None:
    if not min_size <= desired <= max_size:
        raise ValueError(
            f"sizes must satisfy minSize ({min_size}) ≤ desiredSize ({desired}) ≤ maxSize "
            f"({max_size}): adjust them"
        )


class SystemNodeGroupConfig(ConfigModel):
    """CPU node group: controllers, operators, frontends."""

    instance_type: str = "m7i.2xlarge"
    min_size: int = Field(default=2, ge=1)
    desired_size: int = Field(default=2, ge=1)
    max_size: int = Field(default=4, ge=1)
    disk_size_gib: int = Field(default=100, ge=20)
    autoscaler: Literal["karpenter", "none"] = "none"
    """``karpenter``: the managed node group keeps desiredSize nodes (Karpenter and the other
    controllers run there) and a Karpenter NodePool of the same instance type adds up to
    maxSize − desiredSize more for the CPU tiers' scalers; ``none``: fixed at desiredSize."""

    @model_validator(mode="after")
    def _sizes(self) -> SystemNodeGroupConfig:
        _check_sizes(self.min_size, self.desired_size, self.max_size)
        return self

    @property
    def vcpus(self) -> int | None:
        """vCPUs of the instance type (standard EC2 sizes; None when the size is not one)."""
        return cpu_instance_vcpus(self.instance_type)


_SIZE_VCPUS = {"large": 2, "xlarge": 4}


def cpu_instance_vcpus(instance_type: str) -> int | None:
    """vCPUs of an EC2 general-purpose/compute/memory size (``m7i.4xlarge`` → 16), or None.

    EC2 User Guide, "Amazon EC2 instance type specifications": large 2, xlarge 4, Nxlarge 4·N.
    """
    size = instance_type.partition(".")[2]
    if size in _SIZE_VCPUS:
        return _SIZE_VCPUS[size]
    match = re.fullmatch(r"(\d+)xlarge", size)
    return 4 * int(match.group(1)) if match else None


_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
RESERVED_LABEL_DOMAINS = ("kubernetes.io", "k8s.io")
"""Label namespaces Kubernetes itself sets (``kubernetes.io/hostname``, ``node-role.kubernetes.io/…``,
``topology.kubernetes.io/zone``): overriding them misplaces pods, and the kubelet's NodeRestriction
refuses most of them (Kubernetes docs, "Well-Known Labels, Annotations and Taints" and the kubelet's
``--node-labels``)."""


def node_label_problem(key: str, value: str) -> str | None:
    """Why ``key: value`` cannot be an extra node label of a pool, or None."""
    prefix, _, name = key.rpartition("/")
    if not _LABEL_NAME.match(name) or len(name) > 63 or (prefix and (not _LABEL_PREFIX.match(prefix) or len(prefix) > 253)):
        return (
            f"'{key[:80]}' is not a label key ([prefix/]name, name at most 63 letters, digits, "
            "'-', '_', '.'): fix it"
        )
    if value and (not _LABEL_NAME.match(value) or len(value) > 63):
        return f"label {key}: value '{value[:80]}' is not a label value (at most 63 letters, digits, '-', '_', '.'): fix it"
    if any(prefix == domain or prefix.endswith("." + domain) for domain in RESERVED_LABEL_DOMAINS):
        return (
            f"'{key}' is in the {'.'.join(prefix.split('.')[-2:])} namespace, which Kubernetes sets itself "
            "(overriding it misplaces pods or keeps the node from registering): use a prefix of your "
            "own, e.g. example.com/team"
        )
    if prefix == POOL_LABEL.partition("/")[0]:
        return f"'{key}' is in the {prefix} namespace, which this stack sets ({POOL_LABEL}): use a prefix of your own"
    return None


class GpuNodePoolConfig(ConfigModel):
    """One EKS GPU node group, launched from a launch template."""

    name: str
    instance_type: str
    availability_zone: str | None = None
    """AZ of the pool's subnet; required with placementGroup (a cluster placement group is single-AZ)."""
    min_size: int = Field(default=0, ge=0)
    desired_size: int = Field(default=1, ge=0)
    max_size: int = Field(default=2, ge=1)
    efa: bool = True
    """Attach every EFA interface the instance type takes (EFA-capable types only)."""
    placement_group: bool = True
    """Launch the nodes in a cluster placement group (lowest latency between them).

    Defaults to false for capacity-block pools: a Capacity Block is already co-located and
    cannot be launched into a placement group of ours. An on-demand reservation used with a
    placement group must have been created in that group (``<cluster>-<pool>``).
    """
    capacity_type: Literal["on-demand", "spot", "capacity-block"] = "on-demand"
    capacity_reservation_id: str | None = None
    """On-demand capacity reservation or EC2 Capacity Block (cr-…) the nodes launch into;
    it must be in availabilityZone."""
    disk_size_gib: int = Field(default=500, ge=100)
    labels: dict[str, str] = {}
    """Extra Kubernetes node labels."""
    autoscaler: Literal["karpenter", "none"] = "none"
    """Who adds and removes the pool's nodes. ``karpenter``: a Karpenter NodePool + EC2NodeClass
    (no managed node group), nodes launched for pending pods up to maxSize (minSize and
    desiredSize are not used); ``none``: an EKS managed node group of fixed size desiredSize
    (scheduled actions move it on Capacity Blocks), so worker autoscaling cannot go beyond it."""
    capacity_block: CapacityBlockConfig | None = None
    """Start, end and size of the Capacity Block (capacityType capacity-block): the pool is
    rendered so that nothing launches before the start and everything drains before the end."""
    placement_group_name: str | None = None
    """An existing cluster placement group to launch into instead of creating one: the group the
    capacity reservation was created in (a reservation serves a placement group only then)."""
    topology_domains: int | None = Field(default=None, ge=1)
    """How many ``topology.k8s.aws/network-node-layer-3`` domains the pool's nodes span (``aws ec2
    describe-instance-topology``); multi-node groups take one domain each. None: unknown."""

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return check_dns_label(name, "pool name", max_length=20)

    @field_validator("instance_type")
    @classmethod
    def _known_type(cls, instance_type: str) -> str:
        lookup_instance_type(instance_type)  # ValueError with the closest known type
        return instance_type

    @field_validator("placement_group_name")
    @classmethod
    def _placement_group_name(cls, name: str | None) -> str | None:
        if name is not None and not re.fullmatch(r"[\w+=,.@-]{1,255}", name):
            raise ValueError(
                f"placementGroupName '{name[:60]}' is not a placement group name (letters, digits "
                "and +=,.@-_, at most 255): copy it from the reservation in the EC2 console"
            )
        return name

    @model_validator(mode="before")
    @classmethod
    def _no_placement_group_for_capacity_blocks(cls, data: object) -> object:
        if (
            isinstance(data, dict)
            and "placementGroup" not in data
            and "placement_group" not in data
            and (
                data.get("capacityType", data.get("capacity_type")) == "capacity-block"
                or data.get("placementGroupName", data.get("placement_group_name")) is not None
            )
        ):
            return {**data, "placement_group": False}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> GpuNodePoolConfig:
        instance = lookup_instance_type(self.instance_type)
        _check_sizes(self.min_size, self.desired_size, self.max_size)
        if self.efa and not instance.supports_efa:
            raise ValueError(
                f"instance type '{self.instance_type}' has no EFA interfaces, but efa is true: "
                "set efa: false or use an EFA-capable type (e.g. p4d.24xlarge, p5.48xlarge)"
            )
        if self.placement_group and self.availability_zone is None:
            raise ValueError(
                "placementGroup needs availabilityZone (a cluster placement group lives in one "
                "AZ): set availabilityZone or placementGroup: false"
            )
        if self.efa and self.availability_zone is None:
            raise ValueError(
                "efa needs availabilityZone (EFA traffic does not cross subnets, and each zone "
                "has its own subnet): set availabilityZone or efa: false"
            )
        if self.capacity_type == "capacity-block" and self.placement_group:
            raise ValueError(
                "capacityType 'capacity-block' cannot use placementGroup (a Capacity Block is "
                "already co-located, and EC2 refuses to launch it into another placement group): "
                "set placementGroup: false"
            )
        if self.capacity_type == "capacity-block" and self.placement_group_name is not None:
            raise ValueError(
                "capacityType 'capacity-block' cannot use placementGroupName (a Capacity Block is "
                "already co-located and is launched into no placement group): remove placementGroupName"
            )
        if self.capacity_type == "capacity-block" and self.capacity_reservation_id is None:
            raise ValueError(
                "capacityType 'capacity-block' needs capacityReservationId (the cr-… id of the "
                "Capacity Block): add it"
            )
        if self.capacity_type == "spot" and self.capacity_reservation_id is not None:
            raise ValueError(
                "capacityReservationId cannot be used with capacityType 'spot': "
                "use on-demand or capacity-block, or remove the reservation"
            )
        if self.capacity_block is not None and self.capacity_type != "capacity-block":
            raise ValueError(
                f"capacityBlock is set but capacityType is '{self.capacity_type}': set capacityType: "
                "capacity-block, or remove capacityBlock"
            )
        if self.placement_group_name is not None and self.placement_group:
            raise ValueError(
                f"placementGroupName '{self.placement_group_name}' names an existing group, but "
                "placementGroup: true asks the stack to create one: set placementGroup: false"
            )
        if self.capacity_reservation_id is not None and not re.fullmatch(
            r"cr-[0-9a-f]{8,17}", self.capacity_reservation_id
        ):
            raise ValueError(
                f"capacityReservationId '{self.capacity_reservation_id}' is not a reservation id "
                "(cr- followed by hex digits): copy it from the EC2 console"
            )
        return self

    @property
    def instance(self) -> InstanceType:
        return lookup_instance_type(self.instance_type)

    def node_labels(self) -> dict[str, str]:
        return {**self.labels, POOL_LABEL: self.name}

    def node_pool(self) -> NodePool:
        instance = self.instance
        return NodePool(
            name=self.name,
            gpus_per_node=instance.gpus,
            gpu_memory_gib=instance.gpu_memory_gib,
            gpu_arch=instance.gpu_arch,
            node_selector={POOL_LABEL: self.name},
            tolerations=(GPU_TAINT,),
            fabric="efa" if self.efa else "none",
            efa_interfaces=instance.max_efa_interfaces if self.efa else 0,
            instance_type=self.instance_type,
            max_nodes=self.max_size,
        )


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def bucket_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name an S3 general purpose bucket, or None. Rules: S3 User Guide,
    "General purpose bucket naming rules" (3-63 lowercase letters, digits, '.', '-'; letter or digit
    at both ends; no '..'; not an IP address; reserved prefixes and suffixes)."""
    fix = "use 3-63 lowercase letters, digits and '-', starting and ending with a letter or digit"
    if not _BUCKET.match(name) or ".." in name:
        return f"bucketName '{name[:80]}' is not an S3 bucket name: {fix}"
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name):
        return f"bucketName '{name}' is formatted as an IP address, which S3 refuses: {fix}"
    if name.startswith(("xn--", "sthree-", "amzn-s3-demo-")) or name.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3")):
        return f"bucketName '{name}' uses a prefix or suffix S3 reserves: {fix}"
    return None


class StorageConfig(ConfigModel):
    """Shared ReadWriteMany storage for weights and engines."""

    kind: Literal["fsx-lustre", "s3-mountpoint", "none"] = "fsx-lustre"
    size_gib: int = Field(default=1200, ge=1200)
    """FSx for Lustre capacity: 1200, 2400, or a multiple of 2400 GiB."""
    throughput_per_unit: Literal[125, 250, 500, 1000] = 250
    """FSx PERSISTENT_2 throughput, MB/s per TiB."""
    bucket_name: str | None = None
    """S3 bucket for s3-mountpoint (created when omitted)."""
    availability_zone: str | None = None
    """Zone of the FSx for Lustre file system (single-AZ); default: the first pinned GPU pool's.
    Put it where the GPU pools that load weights are."""
    reclaim_policy: Literal["Retain", "Delete"] = "Retain"
    """What happens to the FSx file system when its claim is deleted: Retain keeps the weights and
    engines (delete the file system by hand), Delete removes it with the claim (dev stacks)."""

    @field_validator("bucket_name")
    @classmethod
    def _bucket(cls, name: str | None) -> str | None:
        if name is not None:
            problem = bucket_name_problem(name)
            if problem:
                raise ValueError(problem)
        return name

    @model_validator(mode="after")
    def _size(self) -> StorageConfig:
        if self.kind == "fsx-lustre" and self.size_gib != 1200 and self.size_gib % 2400:
            raise ValueError(
                f"sizeGib {self.size_gib} is not a valid FSx for Lustre capacity: use 1200, 2400 "
                "or a multiple of 2400"
            )
        return self


EKS_ADDONS = (
    "vpc-cni",
    "kube-proxy",
    "eks-pod-identity-agent",
    "coredns",
    "aws-fsx-csi-driver",
    "aws-mountpoint-s3-csi-driver",
)
"""EKS managed add-ons a cluster of this project may install (the CSI driver follows the storage)."""
_ADDON_VERSION = re.compile(r"v\d+\.\d+\.\d+-eksbuild\.\d+")


class EksConfig(ConfigModel):
    """A new EKS cluster: VPC, control plane, system node group, GPU node pools, storage."""

    region: str
    kubernetes_version: str = EKS_DEFAULT_KUBERNETES_VERSION
    """Kubernetes minor version (quoted): pick one in EKS standard support (``limits.EKS_VERSION_SUPPORT``;
    a warning when it is within 60 days of extended support or in it)."""
    vpc_cidr: str = "10.0.0.0/16"
    availability_zones: list[str] = Field(min_length=2, max_length=6)
    endpoint_private_access: bool = True
    endpoint_public_access: bool = True
    """The program running ``pulumi up`` reaches the API server it creates through this endpoint
    (see ``deployerAccess``); it is open only to ``publicAccessCidrs``."""
    public_access_cidrs: list[str] = []
    """CIDRs allowed to reach a public endpoint (required when it is public): the egress CIDRs of
    the machines running ``pulumi up`` and kubectl, e.g. ``"$(curl -s https://checkip.amazonaws.com)/32"``."""
    deployer_access: Literal["public-endpoint", "in-vpc"] = "public-endpoint"
    """How the program running ``pulumi up`` reaches the cluster's API server. ``public-endpoint``:
    through the public endpoint, from ``publicAccessCidrs`` (the only way on a first run: the VPC
    is created by this stack, so nothing runs inside it yet). ``in-vpc``: from inside the VPC (a
    runner in it, or VPN/peering/Transit Gateway into it), which allows a private-only endpoint
    once the cluster exists (README, "Deploying for real")."""
    admin_principal_arns: list[str] = []
    """IAM roles/users given cluster-admin through EKS access entries (the identity running
    ``pulumi up`` is admin already: do not list it again)."""
    node_ssm_access: bool = True
    """Attach AmazonSSMManagedInstanceCore to the node role: a Session Manager shell on nodes,
    no SSH keys or open ports."""
    system_node_group: SystemNodeGroupConfig = SystemNodeGroupConfig()
    gpu_node_pools: list[GpuNodePoolConfig] = []
    storage: StorageConfig = StorageConfig()
    network_policy: bool = True
    """Enforce the stack's NetworkPolicies (vpc-cni ``enableNetworkPolicy``); false leaves them
    declared but inert (a warning)."""
    addon_versions: dict[str, str] = {}
    """EKS add-on name -> pinned version (``aws eks describe-addon-versions``); an add-on not
    listed gets EKS's default for the Kubernetes version when it is created."""

    @field_validator("addon_versions")
    @classmethod
    def _addon_versions(cls, versions: dict[str, str]) -> dict[str, str]:
        for addon, version in versions.items():
            if addon not in EKS_ADDONS:
                raise ValueError(f"addonVersions: unknown add-on '{addon}': use one of {', '.join(EKS_ADDONS)}")
            if not _ADDON_VERSION.fullmatch(version):
                raise ValueError(
                    f"addonVersions.{addon}: '{version}' is not an EKS add-on version: use the "
                    "form v1.19.2-eksbuild.1 (aws eks describe-addon-versions --addon-name "
                    f"{addon})"
                )
        return versions

    @field_validator("kubernetes_version")
    @classmethod
    def _version(cls, version: str) -> str:
        if not re.fullmatch(r"1\.\d{2}", version):
            raise ValueError(
                f"kubernetesVersion '{version}' must be a pinned minor version such as \"1.35\" "
                "(quoted in YAML)"
            )
        return version

    @field_validator("admin_principal_arns")
    @classmethod
    def _principals(cls, arns: list[str]) -> list[str]:
        for arn in arns:
            if not _IAM_PRINCIPAL.fullmatch(arn):
                raise ValueError(
                    f"adminPrincipalArns entry '{arn}' is not an IAM role or user ARN "
                    "(arn:aws:iam::<account>:role/<name> or :user/<name>): copy it from the IAM "
                    "console (an assumed-role sts ARN will not do)"
                )
        if len(set(arns)) != len(arns):
            raise ValueError("adminPrincipalArns lists a principal twice: remove the duplicate")
        return arns

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr(cls, cidr: str) -> str:
        try:
            network = ipaddress.ip_network(cidr)
        except ValueError:
            raise ValueError(f"vpcCidr '{cidr}' is not an IPv4 network (e.g. 10.0.0.0/16)") from None
        if network.version != 4 or not 16 <= network.prefixlen <= 20:
            raise ValueError(
                f"vpcCidr '{cidr}' must be an IPv4 network between /16 and /20 "
                "(room for a /20 private subnet per AZ)"
            )
        return cidr

    @model_validator(mode="after")
    def _consistent(self) -> EksConfig:
        for zone in self.availability_zones:
            # a zone of another real region; malformed or mistyped names: validation._eks (did-you-mean)
            if self.region in EKS_REGIONS and zone[:-1] in EKS_REGIONS and not zone.startswith(self.region):
                raise ValueError(
                    f"availability zone '{zone}' is not in region '{self.region}': "
                    f"use zones such as {self.region}a"
                )
        names = [pool.name for pool in self.gpu_node_pools]
        for pool in self.gpu_node_pools:
            if names.count(pool.name) > 1:
                raise ValueError(f"GPU pool name '{pool.name}' is used twice: rename one")
            if pool.availability_zone and pool.availability_zone not in self.availability_zones:
                raise ValueError(
                    f"pool '{pool.name}' availabilityZone '{pool.availability_zone}' is not one of "
                    f"availabilityZones ({', '.join(self.availability_zones)}): add it there or "
                    "pick one of them"
                )
        if self.storage.availability_zone and self.storage.availability_zone not in self.availability_zones:
            raise ValueError(
                f"storage.availabilityZone '{self.storage.availability_zone}' is not one of "
                f"availabilityZones ({', '.join(self.availability_zones)}): pick one of them"
            )
        if not self.endpoint_private_access and not self.endpoint_public_access:
            raise ValueError(
                "the API endpoint is neither private nor public: enable endpointPrivateAccess "
                "or endpointPublicAccess"
            )
        if self.deployer_access == "public-endpoint" and not self.endpoint_public_access:
            raise ValueError(
                "endpointPublicAccess is false, but deployerAccess is public-endpoint: pulumi up could "
                "not reach the API server it creates (the VPC is new; nothing runs inside it): set "
                "endpointPublicAccess: true with publicAccessCidrs: [<your egress CIDR>], or "
                "deployerAccess: in-vpc when pulumi up runs inside the VPC"
            )
        if self.deployer_access == "in-vpc" and not self.endpoint_private_access:
            raise ValueError(
                "deployerAccess is in-vpc, but endpointPrivateAccess is false: pulumi up inside the VPC "
                "reaches the API server only through the private endpoint: set endpointPrivateAccess: true"
            )
        if self.endpoint_public_access and not self.public_access_cidrs:
            raise ValueError(
                "endpointPublicAccess needs publicAccessCidrs (the API would be open to the "
                "internet): list the egress CIDRs of the machines running pulumi up and kubectl"
            )
        return self


VPC_CNI_MIN_NETWORK_POLICY = (1, 14, 0)
"""First VPC CNI release with the network policy agent (amazon-vpc-cni-k8s v1.14.0,
docs/network-policy-faq.md; configuration: components/cluster/aws_addons.py)."""


def vpc_cni_version_problem(version: str | None, network_policy: bool) -> str | None:
    """Why a pinned vpc-cni add-on version cannot enforce NetworkPolicies, or None."""
    if not network_policy or version is None:
        return None  # EKS's default for every supported Kubernetes version is newer than v1.14
    match = re.match(r"v(\d+)\.(\d+)\.(\d+)", version)
    if match and tuple(int(g) for g in match.groups()) < VPC_CNI_MIN_NETWORK_POLICY:
        return (
            f"cluster.eks.addonVersions.vpc-cni: '{version}' predates network policy support "
            "(v1.14.0): pin v1.14.0-eksbuild.1 or later, or remove the pin"
        )
    return None


Cni = Literal[
    "calico", "cilium", "antrea", "kube-router", "weave", "vpc-cni-network-policy", "vpc-cni", "flannel", "unknown"
]
CNI_ENFORCES_NETWORK_POLICY: dict[str, bool | None] = {
    "calico": True,
    "cilium": True,
    "antrea": True,
    "kube-router": True,
    "weave": True,
    "vpc-cni-network-policy": True,  # Amazon VPC CNI >= v1.14 with enableNetworkPolicy "true"
    "vpc-cni": False,  # its default: enableNetworkPolicy "false"
    "flannel": False,  # no policy engine (flannel-io/flannel README: pair it with Calico, i.e. Canal)
    "unknown": None,
}
"""Whether each CNI enforces Kubernetes NetworkPolicies (None: not known)."""


class ExistingPoolConfig(ConfigModel):
    """GPU nodes of an existing cluster, described by how pods reach them."""

    name: str
    gpus_per_node: int = Field(ge=1, le=16)
    gpu_memory_gib: int = Field(ge=8)
    gpu_arch: GpuArch
    node_selector: dict[str, str] = Field(min_length=1)
    tolerations: list[str] = ["nvidia.com/gpu"]
    """Taint keys (effect NoSchedule) the GPU pods tolerate."""
    max_nodes: int | None = Field(default=None, ge=1)
    """The most nodes the pool will ever have (its own autoscaler's maximum, or its size); the
    capacity check compares the worker groups' maxima with it. None: unknown (a warning)."""

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return check_dns_label(name, "pool name", max_length=20)


class ExistingClusterConfig(ConfigModel):
    """A cluster that already exists (on-prem InfiniBand/RoCE, or any Kubernetes)."""

    kubeconfig: str
    """Kubeconfig text, or a path to it; keep it secret (``pulumi config set --secret``)."""
    context: str | None = None
    fabric: Fabric = "infiniband"
    rdma_resource_name: str = "rdma_shared_device_a"
    """Resource the Network Operator's RDMA shared device plugin advertises (``rdma/<name>``)."""
    system_node_selector: dict[str, str] = {}
    """Where CPU pods (frontends, controllers) go; empty: anywhere."""
    storage_class: str
    """An existing ReadWriteMany StorageClass (NFS, Lustre, Weka, …) for weights and engines."""
    storage_size_gib: int = Field(default=2000, ge=100)
    gpu_pools: list[ExistingPoolConfig] = Field(min_length=1)
    cni: Cni = "unknown"
    """The cluster's CNI plugin: whether the stack's NetworkPolicies are enforced follows from it
    (:data:`CNI_ENFORCES_NETWORK_POLICY`); a CNI that does not enforce them is refused, unknown
    is a warning."""
    load_balancer_services: bool | None = None
    """Whether the cluster implements Services of type LoadBalancer (a cloud controller, MetalLB,
    …); this stack installs none there. None: unknown (a warning when a frontend asks for one)."""

    @field_validator("rdma_resource_name")
    @classmethod
    def _resource(cls, name: str) -> str:
        if not re.fullmatch(r"[a-z0-9_]+", name):
            raise ValueError(
                f"rdmaResourceName '{name}' must be lowercase letters, digits and '_' "
                "(the Network Operator's resourceName)"
            )
        return name

    @model_validator(mode="after")
    def _unique(self) -> ExistingClusterConfig:
        names = [pool.name for pool in self.gpu_pools]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"GPU pool name '{name}' is used twice: rename one")
        return self

    def node_pools(self) -> dict[str, NodePool]:
        rdma = f"rdma/{self.rdma_resource_name}" if self.fabric in ("infiniband", "roce") else None
        return {
            pool.name: NodePool(
                name=pool.name,
                gpus_per_node=pool.gpus_per_node,
                gpu_memory_gib=pool.gpu_memory_gib,
                gpu_arch=pool.gpu_arch,
                node_selector=dict(pool.node_selector),
                tolerations=tuple(Toleration(key=key) for key in pool.tolerations),
                fabric=self.fabric,
                rdma_resource=rdma,
                max_nodes=pool.max_nodes,
            )
            for pool in self.gpu_pools
        }


class ClusterConfig(ConfigModel):
    """Which cluster the stack runs on; exactly one of ``eks`` / ``existing``."""

    name: str
    provider: Literal["eks", "existing"] = "eks"
    eks: EksConfig | None = None
    existing: ExistingClusterConfig | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return check_dns_label(name, "cluster name", max_length=40)

    @model_validator(mode="after")
    def _section_matches_provider(self) -> ClusterConfig:
        wanted, other = ("eks", "existing") if self.provider == "eks" else ("existing", "eks")
        if getattr(self, wanted) is None:
            raise ValueError(f"provider '{self.provider}' needs a '{wanted}' section: add it")
        if getattr(self, other) is not None:
            raise ValueError(
                f"provider '{self.provider}' does not use the '{other}' section: remove it "
                f"or set provider: {other}"
            )
        return self

    def node_pools(self) -> dict[str, NodePool]:
        """GPU node pools by name, in scheduling terms."""
        if self.eks is not None:
            return {pool.name: pool.node_pool() for pool in self.eks.gpu_node_pools}
        assert self.existing is not None
        return self.existing.node_pools()

    def system_pool(self) -> NodePool:
        """Where CPU pods (frontends, operators) are scheduled."""
        if self.eks is not None:
            selector = {POOL_LABEL: "system"}
        else:
            assert self.existing is not None
            selector = dict(self.existing.system_node_selector)
        return NodePool(name="system", gpus_per_node=0, gpu_memory_gib=0, node_selector=selector)


def network_policy_warnings(cluster: ClusterConfig) -> list[str]:
    """NetworkPolicies that may not be enforced (one line each; declared, not refused)."""
    eks, existing = cluster.eks, cluster.existing
    if eks is not None and not eks.network_policy:
        return [
            "disagg:cluster.eks.networkPolicy is false: the stack's NetworkPolicies are declared "
            "but the VPC CNI does not enforce them (every pod can reach every other)"
        ]
    if existing is not None and CNI_ENFORCES_NETWORK_POLICY[existing.cni] is None:
        return [
            "disagg:cluster.existing.cni is unknown: the stack's NetworkPolicies are enforced only "
            "if the cluster's CNI enforces them: declare it (calico, cilium, antrea, "
            "vpc-cni-network-policy, …)"
        ]
    return []
