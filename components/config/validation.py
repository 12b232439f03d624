"""Checks of a validated StackConfig against real limits, Kubernetes rules and the security policy.

They run in :func:`components.config.loader.load_stack_config`, after the models have accepted
each section and before any resource is declared, so that nothing fails at apply time that could
have been refused here. Each returns one message per problem, naming the key.
"""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal

from components.config import limits
from components.config.base import OFFLINE_SECRET
from components.config.cluster import (
    CNI_ENFORCES_NETWORK_POLICY,
    EksConfig,
    ExistingClusterConfig,
    node_label_problem,
    vpc_cni_version_problem,
)
from components.config.kubeconfig import check_context, is_kubeconfig_text, read_kubeconfig
from components.config.security import (
    DEPLOYER_CIDR_PLACEHOLDER,
    mpi_ssh_secret_name,
    public_cidr_problem,
    secret_name_problem,
)
from components.config.stack import NAMESPACE, StackConfig
from components.config.subnets import plan_subnets

RESERVED_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "default", "lws-system")
"""Namespaces the serving namespace may not be: Kubernetes' own, the default one (no isolation)
and the LeaderWorkerSet controller's."""

_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

# -- Kubernetes quantities -------------------------------------------------------------------------

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$"
)
_MULTIPLIERS = {
    "": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}


def parse_quantity(text: str) -> Decimal | None:
    """The value of a Kubernetes quantity (``500m``, ``16Gi``, ``1e3``), or None if it is not one.

    Grammar of k8s.io/apimachinery/pkg/api/resource (quantity.go): signed decimal number, then a
    binary-SI, decimal-SI or decimal-exponent suffix.
    """
    match = _QUANTITY.match(text.strip()) if len(text) <= 64 else None
    if match is None:
        return None
    suffix = match["suffix"] or ""
    try:
        number = Decimal(match["number"])
        if suffix not in _MULTIPLIERS:  # a decimal exponent (e3, E-3); "E" alone and "Ei" are multipliers
            return number * Decimal(10) ** int(suffix[1:])
        return number * _MULTIPLIERS[suffix]
    except ArithmeticError:
        return None  # decimal.Overflow: an exponent such as 1e99999999999 does not fit a Decimal


def quantity_problem(key: str, text: str, kind: str) -> str | None:
    """Why ``text`` is no valid ``kind`` ('cpu' or 'memory') request, or None."""
    value = parse_quantity(text)
    example = "8 or 500m" if kind == "cpu" else "16Gi"
    if value is None:
        return f"{key}: '{text}' is not a Kubernetes quantity (e.g. {example}): fix it"
    if value <= 0:
        return f"{key}: '{text}' must be more than zero: fix it"
    if kind == "cpu" and value > limits.MAX_CPU_CORES:
        return f"{key}: '{text}' is more CPU than any node has ({limits.MAX_CPU_CORES} vCPUs): lower it"
    if kind == "cpu" and value < Decimal("0.001"):
        return f"{key}: '{text}' is below Kubernetes' CPU resolution of 1m: raise it"
    if kind == "memory":
        if value > limits.MAX_MEMORY_BYTES:
            return f"{key}: '{text}' is more memory than any node has (32Ti): lower it"
        if value < 2**20:
            return f"{key}: '{text}' is less than 1Mi (a lowercase 'm' means thousandths of a byte): use Mi or Gi"
    return None


# -- image references ----------------------------------------------------------------------------------

_IMAGE = re.compile(
    r"^(?P<name>(?:[a-zA-Z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[^@]*))?(?:@(?P<digest>.*))?$"
)
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$")
MUTABLE_TAGS = frozenset(
    {"latest", "main", "master", "dev", "develop", "edge", "nightly", "stable", "head", "trunk", "canary", "next"}
)
"""Tags that name a branch or a channel, not a release: the image under them changes."""


def image_problem(key: str, image: str, allow_mutable: bool) -> str | None:
    """Why ``image`` is not a pinned image reference, or None. Grammar: distribution/reference
    (reference.go: name, ``:tag`` of at most 128 word characters, ``@algorithm:hex``)."""
    match = _IMAGE.match(image)
    if match is None:
        return (
            f"{key}: '{image}' is not an image reference (registry/repository:tag or @sha256:…, "
            "lowercase repository): fix it"
        )
    tag, digest = match["tag"], match["digest"]
    if digest is not None and not _DIGEST.match(digest):
        return f"{key}: '{image}' has a malformed digest (sha256: and 64 lowercase hex digits): copy it again"
    if tag is not None and not _TAG.match(tag):
        what = "an empty tag" if tag == "" else "a malformed tag"
        return f"{key}: '{image}' has {what} (letters, digits, '_', '.', '-', at most 128): fix it"
    if digest is None and tag is None:
        return f"{key}: '{image}' is not pinned: add a release tag or an @sha256 digest"
    if digest is None and tag is not None and tag.lower() in MUTABLE_TAGS and not allow_mutable:
        return (
            f"{key}: tag '{tag}' of '{image}' moves (a branch or channel, not a release): pin a "
            f"release tag or @sha256 digest, or set {NAMESPACE}:platform.security.allowMutableImageTags: true"
        )
    return None


# -- the checks ------------------------------------------------------------------------------------------


def check_stack(config: StackConfig, secret_keys: frozenset[str] = frozenset()) -> list[str]:
    """Every problem of ``config`` against limits, names and policy (empty: none)."""
    problems: list[str] = []
    problems += _names(config)
    problems += _quantities(config)
    problems += _images(config)
    problems += _secrets(config, secret_keys)
    problems += _capacity(config)
    problems += _exposure(config)
    if config.cluster.eks is not None:
        problems += _eks(config.cluster.eks)
        problems += _stack_storage(config.cluster.eks)
    if config.cluster.existing is not None:
        problems += _existing(config.cluster.existing)
    problems += _shm_fits_node(config)
    problems += _node_labels(config)
    if config.cluster.eks is not None:
        problems += _nodes_reach_the_api(config.cluster.eks)
    problems += _network_policy(config)
    return problems


def _network_policy(config: StackConfig) -> list[str]:
    """A cluster whose CNI cannot enforce the stack's NetworkPolicies (they would do nothing)."""
    eks, existing = config.cluster.eks, config.cluster.existing
    if eks is not None:
        problem = vpc_cni_version_problem(eks.addon_versions.get("vpc-cni"), eks.network_policy)
        return [f"{NAMESPACE}:{problem}"] if problem else []
    if existing is not None and CNI_ENFORCES_NETWORK_POLICY[existing.cni] is False:
        return [
            f"{NAMESPACE}:cluster.existing.cni: '{existing.cni}' does not enforce NetworkPolicies, so the "
            "stack's tier isolation would do nothing: enable policy enforcement in the CNI (e.g. "
            "vpc-cni-network-policy, Calico, Cilium) and declare it"
        ]
    return []


def _names(config: StackConfig) -> list[str]:
    problems: list[str] = []
    reserved = (*RESERVED_NAMESPACES, config.platform.namespace)
    if config.namespace in reserved:
        problems.append(
            f"{NAMESPACE}:namespace: '{config.namespace}' is reserved (Kubernetes' own namespaces, "
            f"'default', lws-system and {NAMESPACE}:platform.namespace '{config.platform.namespace}'): "
            "serve models in a namespace of their own, e.g. llm-serving"
        )
    for index, deployment in enumerate(config.deployments):
        if not _DNS_1035.match(deployment.name):
            problems.append(
                f"{NAMESPACE}:deployments[{index}].name: '{deployment.name}' names Services, which must "
                "start with a letter (DNS-1035 label): rename it, e.g. m-" + deployment.name
            )
    return problems


def _quantities(config: StackConfig) -> list[str]:
    problems: list[str] = []
    for index, deployment in enumerate(config.deployments):
        where = f"{NAMESPACE}:deployments[{index}]"
        for tier in ("frontend", "orchestrator"):
            resources = getattr(deployment, tier).resources
            for kind in ("cpu", "memory"):
                problem = quantity_problem(f"{where}.{tier}.resources.{kind}", getattr(resources, kind), kind)
                if problem:
                    problems.append(problem)
        for role, group in deployment.worker_groups().items():
            problem = quantity_problem(f"{where}.{role}.shmSize", group.shm_size, "memory")
            if problem:
                problems.append(problem)
    return problems


def _images(config: StackConfig) -> list[str]:
    allow = config.platform.security.allow_mutable_image_tags
    problems = []
    images = config.images
    for key, image in (("trtllm", images.trtllm), ("tritonTrtllm", images.triton_trtllm), ("frontend", images.frontend), ("tiers", images.tiers)):
        if image is not None:
            problem = image_problem(f"{NAMESPACE}:images.{key}", image, allow)
            if problem:
                problems.append(problem)
    return problems


def _secrets(config: StackConfig, secret_keys: frozenset[str]) -> list[str]:
    problems: list[str] = []
    if config.hf_token_secret is not None:
        problem = secret_name_problem(config.hf_token_secret, f"{NAMESPACE}:hfTokenSecret")
        if problem:
            problems.append(
                problem.replace(
                    "store it with kubectl create secret generic <name> --from-literal=…",
                    f"create the Secret: kubectl -n {config.namespace} create secret generic hf-token "
                    "--from-literal=HF_TOKEN=<token>",
                ).replace("put <name> here", "set hfTokenSecret: hf-token")
            )
    for key, value in (("hfToken", config.hf_token), ("tritonAdminKey", config.triton_admin_key),
                       ("apiKeys", config.api_keys or None)):
        if value is not None and f"{NAMESPACE}:{key}" not in secret_keys:
            problems.append(
                f"{NAMESPACE}:{key}: the value is in the stack file in plain text (value hidden): remove "
                f"it, rotate the credential, and store it encrypted: pulumi config set --secret "
                + (f"--path '{key}.<deployment>' <key>" if key == "apiKeys" else f"{key} <value>")
            )
    if config.hf_token is not None and config.hf_token_secret is None:
        problems.append(
            f"{NAMESPACE}:hfToken is set but hfTokenSecret is null (no Secret to create): set "
            "hfTokenSecret: hf-token or drop hfToken"
        )
    public = config.platform.security.public_frontends
    for deployment in sorted(config.api_keys):
        if deployment not in public:
            problems.append(
                f"{NAMESPACE}:apiKeys.{deployment}: '{deployment}' has no publicFrontends entry (its "
                "auth.key names the Secret to create): add the entry or drop the key"
            )
    if config.triton_admin_key is not None and not config.platform.security.triton_restricted_apis.enabled:
        problems.append(
            f"{NAMESPACE}:tritonAdminKey is set but platform.security.tritonRestrictedApis.enabled is "
            "false (nothing reads it): drop tritonAdminKey or enable the restriction"
        )
    problems += _created_secret_names(config)
    existing = config.cluster.existing
    if existing is not None and is_kubeconfig_text(existing.kubeconfig) and f"{NAMESPACE}:cluster" not in secret_keys:
        problems.append(
            f"{NAMESPACE}:cluster.existing.kubeconfig: the kubeconfig is in the stack file in plain text "
            "(value hidden): remove it, rotate its credentials, and store it encrypted: pulumi config "
            "set --secret --path 'cluster.existing.kubeconfig' \"$(cat kubeconfig)\""
        )
    return problems


def _created_secret_names(config: StackConfig) -> list[str]:
    """Two settings that would make the stack create the same Secret (one line per name)."""
    created: dict[str, list[str]] = {}
    if config.hf_token is not None and config.hf_token_secret is not None:
        created.setdefault(config.hf_token_secret, []).append("hfToken")
    public = config.platform.security.public_frontends
    for deployment in sorted(set(config.api_keys) & set(public)):
        created.setdefault(public[deployment].auth.key.secret_name, []).append(f"apiKeys.{deployment}")
    restricted = config.platform.security.triton_restricted_apis
    if config.triton_admin_key is not None and restricted.enabled:
        created.setdefault(restricted.key.secret_name, []).append("tritonAdminKey")
    if config.mpi_ssh_keys == "generate":
        for served in config.deployments:
            if any(g.pods_per_group > 1 for g in served.worker_groups().values()):
                created.setdefault(mpi_ssh_secret_name(served.name), []).append(f"mpiSshKeys ({served.name})")
    return [
        f"{NAMESPACE}:{' and '.join(sources)}: both would create the Secret '{name}': give each its own "
        "secretName"
        for name, sources in sorted(created.items())
        if len(sources) > 1
    ]


def _pool_capacity(config: StackConfig) -> dict[str, tuple[int, int]]:
    """GPU pool -> (max nodes, GPUs per node), for pools whose size the stack controls (EKS)."""
    if config.cluster.eks is None:
        return {}
    return {pool.name: (pool.max_size, pool.instance.gpus) for pool in config.cluster.eks.gpu_node_pools}


def _capacity(config: StackConfig) -> list[str]:
    """Worker groups fit their pool at their largest; frontends fit the cluster."""
    problems: list[str] = []
    capacity = _pool_capacity(config)
    demand: dict[str, list[tuple[str, int]]] = {}
    for index, deployment in enumerate(config.deployments):
        where = f"{NAMESPACE}:deployments[{index}]"
        max_replicas = deployment.frontend.max_replicas
        system_nodes = config.cluster.eks.system_node_group.max_size if config.cluster.eks else None
        if system_nodes is not None and max_replicas > system_nodes * limits.KUBERNETES_MAX_PODS_PER_NODE:
            problems.append(
                f"{where}.frontend.maxReplicas: {max_replicas} frontends cannot fit the system node group "
                f"(maxSize {system_nodes} × {limits.KUBERNETES_MAX_PODS_PER_NODE} pods per "
                "node): lower maxReplicas or raise systemNodeGroup.maxSize"
            )
        elif max_replicas > limits.KUBERNETES_MAX_PODS:
            problems.append(
                f"{where}.frontend.maxReplicas: {max_replicas} is more pods than a Kubernetes cluster "
                f"holds ({limits.KUBERNETES_MAX_PODS}): lower it"
            )
        for role, group in deployment.worker_groups().items():
            largest = max(group.groups, group.max_groups or 0)
            if group.pool not in capacity:
                if largest * group.pods_per_group > limits.KUBERNETES_MAX_NODES:
                    problems.append(
                        f"{where}.{role}: {largest} groups × {group.pods_per_group} pods need more nodes "
                        f"than a Kubernetes cluster holds ({limits.KUBERNETES_MAX_NODES}): lower groups/maxGroups"
                    )
                continue
            nodes, gpus = capacity[group.pool]
            per_node = max(1, gpus // (group.gpus_per_pod or gpus))  # a pod larger than a node: one node each
            demand.setdefault(group.pool, []).append((f"{where}.{role}", -(-largest * group.pods_per_group // per_node)))
    for pool, users in sorted(demand.items()):
        nodes = capacity[pool][0]
        needed = sum(n for _, n in users)
        if needed > nodes:
            keys = ", ".join(k for k, _ in users)
            problems.append(
                f"{keys}: at their largest (groups or maxGroups) the worker groups on pool '{pool}' "
                f"need {needed} nodes, but its maxSize is {nodes}: lower groups/maxGroups or raise "
                f"the pool's maxSize (at most {limits.EKS_NODES_PER_MANAGED_NODE_GROUP})"
            )
    return problems


def _exposure(config: StackConfig) -> list[str]:
    """Internet-facing frontends only where platform.security.publicFrontends opts in."""
    problems: list[str] = []
    public = config.platform.security.public_frontends
    names = {d.name for d in config.deployments}
    for index, deployment in enumerate(config.deployments):
        frontend = deployment.frontend
        exposed = frontend.service_type == "LoadBalancer" and not frontend.internal_load_balancer
        if exposed and deployment.name not in public:
            problems.append(
                f"{NAMESPACE}:deployments[{index}].frontend.internalLoadBalancer: false makes the frontend "
                "internet-facing, which needs an explicit opt-in: add "
                f"{NAMESPACE}:platform.security.publicFrontends.{deployment.name} with sourceRanges and "
                "auth, or keep internalLoadBalancer: true"
            )
    for name in sorted(public):
        if name not in names:
            problems.append(
                f"{NAMESPACE}:platform.security.publicFrontends.{name}: no deployment is named "
                f"'{name}' (deployments: {', '.join(sorted(names)) or 'none'}): fix the name or remove it"
            )
        else:
            deployment = next(d for d in config.deployments if d.name == name)
            if deployment.frontend.internal_load_balancer or deployment.frontend.service_type != "LoadBalancer":
                problems.append(
                    f"{NAMESPACE}:platform.security.publicFrontends.{name}: the frontend of '{name}' is "
                    "not internet-facing (set its frontend serviceType: LoadBalancer and "
                    "internalLoadBalancer: false), so this opt-in does nothing: remove it or expose it"
                )
    return problems


def _eks(eks: EksConfig) -> list[str]:
    problems: list[str] = []
    where = f"{NAMESPACE}:cluster.eks"
    region = limits.region_problem(eks.region)
    if region:
        problems.append(f"{where}.region: {region}")
    else:
        for index, zone in enumerate(eks.availability_zones):
            problem = limits.zone_problem(zone, eks.region)
            if problem:
                problems.append(f"{where}.availabilityZones[{index}]: {problem}")
    if eks.kubernetes_version not in limits.EKS_KUBERNETES_VERSIONS:
        problems.append(
            f"{where}.kubernetesVersion: '{eks.kubernetes_version}' is not a Kubernetes version EKS "
            f"offers ({', '.join(limits.EKS_KUBERNETES_VERSIONS)}): pick one of them"
        )
    problems += _vpc(eks)
    if eks.endpoint_public_access:
        if len(eks.public_access_cidrs) > limits.EKS_PUBLIC_ACCESS_CIDRS:
            problems.append(
                f"{where}.publicAccessCidrs: {len(eks.public_access_cidrs)} CIDRs, EKS accepts at most "
                f"{limits.EKS_PUBLIC_ACCESS_CIDRS}: merge ranges"
            )
        for index, cidr in enumerate(eks.public_access_cidrs):
            problem = None if cidr == DEPLOYER_CIDR_PLACEHOLDER else public_cidr_problem(cidr)
            if problem:
                problems.append(f"{where}.publicAccessCidrs[{index}]: {problem}")
    zones = eks.availability_zones
    for zone in sorted({z for z in zones if zones.count(z) > 1}):
        problems.append(f"{where}.availabilityZones: '{zone}' is listed twice (each zone gets its own subnets): remove the duplicate")
    groups = 1 + len(eks.gpu_node_pools)
    if groups > limits.EKS_MANAGED_NODE_GROUPS_PER_CLUSTER:
        problems.append(
            f"{where}.gpuNodePools: {len(eks.gpu_node_pools)} pools + the system group exceed EKS's "
            f"{limits.EKS_MANAGED_NODE_GROUPS_PER_CLUSTER} managed node groups per cluster: merge pools"
        )
    system = eks.system_node_group
    problems += _node_count(f"{where}.systemNodeGroup.maxSize", system.max_size)
    family, _, size = system.instance_type.partition(".")
    if family not in limits.SYSTEM_INSTANCE_FAMILIES or size not in limits.INSTANCE_SIZES:
        problems.append(
            f"{where}.systemNodeGroup.instanceType: '{system.instance_type}' is not an x86_64 general "
            "purpose, compute or memory instance type this project knows (the system group runs "
            "AL2023_x86_64_STANDARD): use e.g. m7i.2xlarge"
        )
    if system.disk_size_gib > limits.EBS_GP3_MAX_GIB:
        problems.append(
            f"{where}.systemNodeGroup.diskSizeGib: {system.disk_size_gib} exceeds the largest EBS volume "
            f"({limits.EBS_GP3_MAX_GIB} GiB): lower it"
        )
    total = system.max_size
    for index, pool in enumerate(eks.gpu_node_pools):
        problems += _node_count(f"{where}.gpuNodePools[{index}].maxSize", pool.max_size)
        total += pool.max_size
        if pool.disk_size_gib > limits.EBS_GP3_MAX_GIB:
            problems.append(
                f"{where}.gpuNodePools[{index}].diskSizeGib: {pool.disk_size_gib} exceeds the largest EBS "
                f"volume ({limits.EBS_GP3_MAX_GIB} GiB): lower it"
            )
    if total > limits.KUBERNETES_MAX_NODES and not any("nodes per managed node group" in p for p in problems):
        problems.append(
            f"{where}: node groups reach {total} nodes at maxSize, more than a Kubernetes cluster holds "
            f"({limits.KUBERNETES_MAX_NODES}): lower the maxSizes"
        )
    storage = eks.storage
    if storage.kind == "fsx-lustre" and storage.size_gib > limits.FSX_LUSTRE_MAX_GIB:
        problems.append(
            f"{where}.storage.sizeGib: {storage.size_gib} GiB exceeds the FSx for Lustre storage quota "
            f"({limits.FSX_LUSTRE_MAX_GIB} GiB): lower it"
        )
    return problems


def _stack_storage(eks: EksConfig) -> list[str]:
    """This project's stacks mount the shared store (a cluster built by a consumer may not need one)."""
    if eks.storage.kind != "none":
        return []
    return [
        f"{NAMESPACE}:cluster.eks.storage.kind: 'none' leaves engines and weights without the ReadWriteMany "
        "volume every stack mounts: use fsx-lustre or s3-mountpoint"
    ]


def _node_count(key: str, count: int) -> list[str]:
    if count > limits.EKS_NODES_PER_MANAGED_NODE_GROUP:
        return [
            f"{key}: {count} nodes exceed EKS's {limits.EKS_NODES_PER_MANAGED_NODE_GROUP} nodes per managed "
            "node group: lower it, or split the pool"
        ]
    return []


IPS_PER_GPU_NODE_BESIDES_GPUS = 9
"""Addresses a GPU node takes besides one per worker pod (at most one per GPU): its own primary
address and daemon-set pods with pod IPs (device plugins, DCGM exporter, NFD, CSI node drivers)."""
AWS_RESERVED_PER_SUBNET = 5
"""AWS reserves the first four and the last address of every subnet (VPC User Guide, "Subnet CIDR blocks")."""


def _vpc(eks: EksConfig) -> list[str]:
    where = f"{NAMESPACE}:cluster.eks.vpcCidr"
    network = ipaddress.ip_network(eks.vpc_cidr, strict=False)
    if not network.is_private or network.is_loopback or network.is_link_local:
        return [
            f"{where}: '{eks.vpc_cidr}' is a public range (its hosts would shadow real internet "
            "addresses): use a private range (RFC 1918: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)"
        ]
    if len(set(eks.availability_zones)) != len(eks.availability_zones):
        return []  # reported as a duplicate zone; the layout needs distinct zones
    subnets = plan_subnets(eks.vpc_cidr, list(eks.availability_zones))
    problems: list[str] = []
    for zone, planned in subnets.items():
        pools = [p for p in eks.gpu_node_pools if p.availability_zone == zone]
        needed = sum(p.max_size * (p.instance.gpus + IPS_PER_GPU_NODE_BESIDES_GPUS) for p in pools)
        usable = ipaddress.ip_network(planned.gpu).num_addresses - AWS_RESERVED_PER_SUBNET
        if needed > usable:
            fix = (
                "use a larger VPC (e.g. a /16) or lower the pools' maxSize"
                if network.prefixlen > 16
                else "a /16 is the largest VPC this layout takes: lower the pools' maxSize, or move "
                "pools to another availability zone (each zone has its own GPU subnet)"
            )
            problems.append(
                f"{where}: '{eks.vpc_cidr}' is too small: the GPU subnet of {zone} ({planned.gpu}, "
                f"{usable} usable addresses) cannot hold the {needed} addresses its pools need at "
                f"maxSize: {fix}"
            )
    return problems


def _existing(existing: ExistingClusterConfig) -> list[str]:
    problems: list[str] = []
    where = f"{NAMESPACE}:cluster.existing"
    if existing.storage_size_gib > limits.EXISTING_STORAGE_MAX_GIB:
        problems.append(
            f"{where}.storageSizeGib: {existing.storage_size_gib} GiB is more than 1 PiB: lower it"
        )
    for index, pool in enumerate(existing.gpu_pools):
        if pool.gpu_memory_gib > limits.MAX_GPU_MEMORY_GIB:
            problems.append(
                f"{where}.gpuPools[{index}].gpuMemoryGib: {pool.gpu_memory_gib} GiB is more than any GPU "
                f"has ({limits.MAX_GPU_MEMORY_GIB}): give the memory of one GPU"
            )
    if not is_kubeconfig_text(existing.kubeconfig) and existing.kubeconfig != OFFLINE_SECRET:
        try:  # a path: read now (as the component will), so a bad path or context fails up front
            check_context(read_kubeconfig(existing.kubeconfig), existing.context)
        except ValueError as err:
            problems.append(str(err))
    if not _SUBDOMAIN.match(existing.storage_class) or len(existing.storage_class) > 253:
        problems.append(
            f"{where}.storageClass: '{existing.storage_class}' is not a StorageClass name (lowercase "
            "letters, digits, '-' and '.'): use the name kubectl get storageclass shows"
        )
    return problems


def _node_labels(config: StackConfig) -> list[str]:
    return _eks_node_labels(config.cluster.eks) if config.cluster.eks is not None else []


def _eks_node_labels(eks: EksConfig) -> list[str]:
    """Extra node labels of EKS pools are label syntax and stay out of Kubernetes' namespaces."""
    return [
        f"{NAMESPACE}:cluster.eks.gpuNodePools[{index}].labels.{key[:80]}: {problem}"
        for index, pool in enumerate(eks.gpu_node_pools)
        for key, value in pool.labels.items()
        if (problem := node_label_problem(key, value))
    ]


def check_eks(eks: EksConfig) -> list[str]:
    """The loader's checks of a cluster section on its own (regions, zones, versions, quotas, the
    VPC's room, node labels, how nodes reach the API): what ``AwsGpuCluster`` runs on the
    EksConfig a consumer builds."""
    return _eks(eks) + _eks_node_labels(eks) + _nodes_reach_the_api(eks)


def _nodes_reach_the_api(eks: EksConfig) -> list[str]:
    """Without the private endpoint, nodes (in private subnets) reach the API server through the
    NAT gateways, from Elastic IPs this stack allocates at apply time, so no publicAccessCidrs
    written beforehand holds them (and 0.0.0.0/0 is refused): the nodes would never join."""
    if eks.endpoint_private_access or not eks.endpoint_public_access:
        return []
    return [
        f"{NAMESPACE}:cluster.eks.endpointPrivateAccess: false leaves the nodes only the public endpoint, "
        f"which they reach from the NAT gateways' Elastic IPs (allocated by this stack, so not in "
        f"publicAccessCidrs {', '.join(eks.public_access_cidrs)}): the nodes could not join: set "
        "endpointPrivateAccess: true"
    ]


def check_provider_region(config: StackConfig, aws_region: str | None) -> list[str]:
    """``aws:region`` (the default AWS provider's) and ``cluster.eks.region`` name the same region."""
    eks = config.cluster.eks
    if eks is None or aws_region is None or aws_region == eks.region or eks.region not in limits.EKS_REGIONS:
        return []
    return [
        f"aws:region: '{aws_region}' differs from {NAMESPACE}:cluster.eks.region '{eks.region}' (the cluster "
        f"is built in eks.region, anything on the default provider would land in aws:region): set "
        f"aws:region: {eks.region}"
    ]


def stack_warnings(config: StackConfig) -> list[str]:
    """Settings that deploy but are likely not what was meant (one line each, key, value, fix)."""
    warnings: list[str] = []
    # KEDA without prometheusUrl queries the Prometheus the platform installs (platform.monitoring),
    # and is refused when there is none (platform checks): nothing to warn about here
    eks = config.cluster.eks
    if eks is not None and eks.gpu_node_pools:
        network = ipaddress.ip_network(eks.vpc_cidr, strict=False)
        gpu_prefix = network.prefixlen + 6  # plan_subnets: an eighth of the VPC, split in eight
        if gpu_prefix > GPU_SUBNET_WARN_PREFIX:
            usable = 2 ** (32 - gpu_prefix) - AWS_RESERVED_PER_SUBNET
            warnings.append(
                f"{NAMESPACE}:cluster.eks.vpcCidr: '{eks.vpc_cidr}' leaves each zone a /{gpu_prefix} GPU subnet "
                f"({usable} addresses), while the VPC CNI keeps a spare network interface's addresses "
                "warm on every node (WARM_ENI_TARGET=1, up to 50 on p4d/p5), so a few GPU nodes exhaust "
                "it and pods stay Pending: use a /16 (or a /18 at most)"
            )
    return warnings


GPU_SUBNET_WARN_PREFIX = 24
"""GPU subnets smaller than a /24 (a VPC smaller than a /18) are warned about: amazon-vpc-cni-k8s
docs/eni-and-ip-target.md (WARM_ENI_TARGET defaults to 1: a whole spare interface's addresses per
node) and the EC2 User Guide's "IP addresses per network interface" (50 on p4d.24xlarge/p5.48xlarge)."""


def _shm_fits_node(config: StackConfig) -> list[str]:
    """/dev/shm of a worker pod is host memory: it cannot exceed the node's (EKS pools, whose
    instance type is known)."""
    problems: list[str] = []
    if config.cluster.eks is None:
        return problems
    pools = {pool.name: pool.instance for pool in config.cluster.eks.gpu_node_pools}
    for index, deployment in enumerate(config.deployments):
        for role, group in deployment.worker_groups().items():
            instance = pools.get(group.pool)
            size = parse_quantity(group.shm_size)
            if instance is None or size is None:
                continue
            if size > instance.memory_gib * 2**30:
                problems.append(
                    f"{NAMESPACE}:deployments[{index}].{role}.shmSize: '{group.shm_size}' is more than the "
                    f"{instance.memory_gib} GiB of memory of a {instance.name} node: lower it (the default "
                    "64Gi suits trtllm-serve)"
                )
    return problems
