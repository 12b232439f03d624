"""AwsGpuCluster: an EKS cluster for GPU inference — VPC, control plane, CPU and EFA GPU pools, storage.

What it declares, in dependency order:

* the network (:class:`~components.cluster.aws_network.AwsNetwork`): private subnets across the zones,
  public subnets for NAT gateways and load balancers, one dedicated subnet per zone a GPU pool
  is pinned to;
* IAM (:mod:`components.cluster.aws_iam`): a control-plane role, a node role, and IRSA roles for the
  VPC CNI and the storage CSI driver, through the cluster's OIDC provider;
* the EKS control plane, its Kubernetes version pinned from the config, private and/or public
  endpoint (public only from ``publicAccessCidrs``), authentication through access entries only
  (``API``): the identity running ``pulumi up`` is admin, and every ``adminPrincipalArns`` entry
  gets ``AmazonEKSClusterAdminPolicy``;
* the core add-ons, managed by EKS (``bootstrapSelfManagedAddons`` is off, so nothing is
  installed twice): vpc-cni (NetworkPolicy enforcement on: :mod:`~components.cluster.aws_addons`),
  kube-proxy and eks-pod-identity-agent before any node, coredns and the storage CSI driver once
  the system nodes exist;
* the CPU system node group (label ``disagg.dev/pool=system``) and one
  :class:`~components.cluster.aws_node_pool.AwsGpuNodePool` per GPU pool; the EFA interfaces of all
  GPU nodes share one security group that allows all traffic to and from itself (EFA requires it);
* shared storage: FSx for Lustre provisioned by the FSx CSI driver through a StorageClass, or an
  S3 bucket mounted by Mountpoint for S3 through a static PersistentVolume;
* node autoscaling and load balancing on the AWS side: Karpenter's controller role and
  interruption queue (:class:`~components.cluster.aws_karpenter.KarpenterAws`, when a pool has
  ``autoscaler: karpenter``) and the AWS Load Balancer Controller's IRSA role; the controllers
  themselves are installed by the platform layer from ``handle.aws``.

Its ``handle`` (:class:`~components.cluster.contract.ClusterHandle`) is all the layers above use.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import cast

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.cluster import aws_iam
from components.cluster.aws_addons import vpc_cni_configuration
from components.cluster.aws_karpenter import KarpenterAws, KarpenterAwsArgs
from components.cluster.aws_network import AwsNetwork, AwsNetworkArgs
from components.cluster.aws_node_pool import AwsGpuNodePool, AwsGpuNodePoolArgs, StrInput, placement_group_for
from components.cluster.contract import AwsClusterInfo, ClusterHandle, SharedStorage
from components.config import capacity
from components.config.cluster import POOL_LABEL, EksConfig, StorageConfig
from components.config.errors import ConfigError
from components.config.scheduling import NodePool
from components.config.validation import check_eks

TYPE_TOKEN = "disagg:cluster:AwsGpuCluster"
SYSTEM_AMI_TYPE = "AL2023_x86_64_STANDARD"
LOG_TYPES = ("api", "audit", "authenticator")

FSX_STORAGE_CLASS = "fsx-lustre"
FSX_PROVISIONER = "fsx.csi.aws.com"
FSX_LUSTRE_VERSION = "2.15"
LUSTRE_PORTS = ((988, 988), (1018, 1023))
"""TCP ports Lustre clients and servers use (FSx for Lustre security group requirements)."""
S3_STORAGE_CLASS = "s3-models"
"""Class name of the static Mountpoint PV; the PV has the same name (see ModelStore)."""
S3_CSI_DRIVER = "s3.csi.aws.com"

EARLY_ADDONS = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
"""Installed before any node joins (node networking and pod credentials)."""
STORAGE_ADDONS = {"fsx-lustre": "aws-fsx-csi-driver", "s3-mountpoint": "aws-mountpoint-s3-csi-driver"}


def eks_kubeconfig(cluster_name: str, endpoint: str, certificate_authority_data: str, region: str) -> str:
    """A kubeconfig (JSON) for an EKS cluster that gets tokens from ``aws eks get-token``.

    No credentials are embedded: the token comes from the caller's AWS identity at each use.
    """
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["--region", region, "eks", "get-token", "--cluster-name", cluster_name, "--output", "json"],
            "interactiveMode": "Never",
        }
    }
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {"server": endpoint, "certificate-authority-data": certificate_authority_data},
            }
        ],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
        "users": [{"name": cluster_name, "user": user}],
        "preferences": {},
    }
    return json.dumps(document, indent=2, sort_keys=True)


def node_metadata_options() -> aws.ec2.LaunchTemplateMetadataOptionsArgs:
    """IMDSv2 required, hop limit 1 (pods cannot reach the node's credentials), on every node."""
    return aws.ec2.LaunchTemplateMetadataOptionsArgs(
        http_endpoint="enabled",
        http_tokens="required",
        http_put_response_hop_limit=aws_iam.MAX_METADATA_HOPS,
        instance_metadata_tags="disabled",
    )


def system_root_volume(size_gib: int) -> aws.ec2.LaunchTemplateBlockDeviceMappingArgs:
    """Encrypted gp3 root volume of a system node (the AL2023 AMI's root device)."""
    return aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
        device_name="/dev/xvda",
        ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
            volume_size=size_gib, volume_type="gp3", encrypted="true", delete_on_termination="true"
        ),
    )


def admin_entry_names(principal_arns: list[str]) -> dict[str, str]:
    """A short, stable resource-name suffix per admin principal ARN (its role/user name).

    The account id is added when two principals share a name, so names stay unique.
    """
    def short(arn: str) -> str:
        return arn.rsplit("/", 1)[-1].lower()

    names: dict[str, str] = {}
    for arn in principal_arns:
        name = short(arn)
        if sum(short(other) == name for other in principal_arns) > 1:
            name = f"{arn.split(':')[4]}-{name}"
        names[arn] = name
    return names


def gpu_zones(args: EksConfig) -> list[str]:
    """Zones that need a dedicated GPU subnet (those GPU pools are pinned to), in config order."""
    pinned = {pool.availability_zone for pool in args.gpu_node_pools}
    return [zone for zone in args.availability_zones if zone in pinned]


def storage_zone(args: EksConfig) -> str:
    """Zone of the FSx file system: storage.availabilityZone, else that of the first pinned GPU pool
    (next to the GPUs), else the first zone (:func:`components.config.capacity.storage_zone`)."""
    return capacity.storage_zone(args)


def fsx_storage_class_parameters(
    storage: StorageConfig, subnet_id: str, security_group_id: str
) -> dict[str, str]:
    """Parameters of the FSx CSI StorageClass (all strings, as the driver reads them)."""
    return {
        "subnetId": subnet_id,
        "securityGroupIds": security_group_id,
        "deploymentType": "PERSISTENT_2",
        "perUnitStorageThroughput": str(storage.throughput_per_unit),
        "fileSystemTypeVersion": FSX_LUSTRE_VERSION,
    }


class AwsGpuCluster(pulumi.ComponentResource):
    """A new EKS cluster with EFA GPU node pools; the caller passes the AWS provider in ``opts``."""

    handle: ClusterHandle
    cluster_name: pulumi.Output[str]
    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    oidc_provider_arn: pulumi.Output[str]
    node_security_group_id: pulumi.Output[str]
    """The EKS cluster security group, on every node (and on every EFA interface)."""
    efa_security_group_id: pulumi.Output[str] | None
    """The self-referencing security group of the EFA interfaces (None without EFA pools)."""
    gpu_node_pools: dict[str, AwsGpuNodePool]
    kubeconfig: pulumi.Output[str]

    def __init__(self, name: str, args: EksConfig, opts: pulumi.ResourceOptions | None = None):
        problems = check_eks(args)  # what the stack loader checks, for a consumer's EksConfig too
        if problems:
            raise ConfigError(problems)
        super().__init__(TYPE_TOKEN, name, None, opts)
        self._name = name
        self._args = args
        self._partition = aws_iam.aws_partition(args.region)
        child = pulumi.ResourceOptions(parent=self)

        network = AwsNetwork(
            f"{name}-network",
            AwsNetworkArgs(
                cluster_name=name,
                vpc_cidr=args.vpc_cidr,
                availability_zones=args.availability_zones,
                gpu_zones=gpu_zones(args),
            ),
            opts=child,
        )
        private_subnets: list[StrInput] = [
            network.private_subnet_ids[zone] for zone in args.availability_zones
        ]

        cluster_role, cluster_policies = self._service_role(
            "cluster-role", "eks.amazonaws.com", aws_iam.CLUSTER_POLICIES
        )
        node_role, node_policies = self._service_role(
            "node-role",
            "ec2.amazonaws.com",
            (*aws_iam.NODE_POLICIES, *([aws_iam.NODE_SSM_POLICY] if args.node_ssm_access else [])),
        )

        cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=name,
            version=args.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=private_subnets,
                endpoint_private_access=args.endpoint_private_access,
                endpoint_public_access=args.endpoint_public_access,
                public_access_cidrs=list(args.public_access_cidrs) if args.endpoint_public_access else None,
            ),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API", bootstrap_cluster_creator_admin_permissions=True
            ),
            bootstrap_self_managed_addons=False,
            enabled_cluster_log_types=list(LOG_TYPES),
            tags={"Name": name},
            opts=pulumi.ResourceOptions(parent=self, depends_on=cluster_policies),
        )
        self._cluster = cluster
        issuer = cluster.identities.apply(
            lambda ids: cast("Sequence[aws.eks.outputs.ClusterIdentityOidc]", ids[0].oidcs)[0].issuer
        )
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc-provider",
            url=issuer,
            client_id_lists=["sts.amazonaws.com"],
            tags={"Name": name},
            opts=child,
        )
        self._oidc_arn, self._issuer = oidc.arn, issuer
        cluster_security_group = cluster.vpc_config.cluster_security_group_id

        for principal, suffix in admin_entry_names(list(args.admin_principal_arns)).items():
            entry = aws.eks.AccessEntry(
                f"{name}-admin-{suffix}", cluster_name=cluster.name, principal_arn=principal, type="STANDARD", opts=child
            )
            aws.eks.AccessPolicyAssociation(
                f"{name}-admin-{suffix}-policy",
                cluster_name=cluster.name,
                principal_arn=principal,
                policy_arn=aws_iam.access_policy_arn(aws_iam.CLUSTER_ADMIN_ACCESS_POLICY, self._partition),
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[entry]),
            )

        cni_role = self._irsa_role("vpc-cni-role", aws_iam.CNI_SERVICE_ACCOUNT, [aws_iam.CNI_POLICY])
        early = [
            self._addon(addon, role_arn=cni_role.arn if addon == "vpc-cni" else None) for addon in EARLY_ADDONS
        ]
        # Nodes join once the CNI, kube-proxy and the node role's policies are there: carried
        # as dependencies of the cluster name and role ARN the node groups are given.
        cluster_name_for_nodes = _after(cluster.name, [a.id for a in early])
        node_role_arn = _after(node_role.arn, [p.id for p in node_policies])

        system = args.system_node_group
        system_template = aws.ec2.LaunchTemplate(
            f"{name}-system-launch-template",
            description=f"System node group of EKS cluster {name}: IMDSv2 only, encrypted root volume",
            block_device_mappings=[system_root_volume(system.disk_size_gib)],
            metadata_options=node_metadata_options(),
            update_default_version=True,
            tags={"Name": f"{name}-system"},
            opts=child,
        )
        system_group = aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=cluster_name_for_nodes,
            version=cluster.version,
            node_role_arn=node_role_arn,
            subnet_ids=private_subnets,
            instance_types=[system.instance_type],
            ami_type=SYSTEM_AMI_TYPE,
            capacity_type="ON_DEMAND",
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=system_template.id, version=system_template.latest_version.apply(str)
            ),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=system.min_size, desired_size=system.desired_size, max_size=system.max_size
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            labels={POOL_LABEL: "system"},
            tags={"Name": f"{name}-system"},
            opts=child,
        )
        coredns = self._addon("coredns", depends_on=[system_group])

        self.efa_security_group_id = None
        if any(pool.efa for pool in args.gpu_node_pools):
            self.efa_security_group_id = self._efa_security_group(network.vpc_id)
        self.gpu_node_pools = {}
        pool_subnets: dict[str, pulumi.Output[str]] = {}
        pool_groups: dict[str, list[StrInput]] = {}
        for pool in args.gpu_node_pools:
            subnets: list[StrInput] = (
                [network.gpu_subnet_ids[pool.availability_zone]]
                if pool.availability_zone is not None
                else private_subnets
            )
            groups: list[StrInput] = [
                cluster_security_group,
                *([self.efa_security_group_id] if pool.efa and self.efa_security_group_id else []),
            ]
            pool_subnets[pool.name] = pulumi.Output.from_input(subnets[0])
            pool_groups[pool.name] = groups
            self.gpu_node_pools[pool.name] = AwsGpuNodePool(
                f"{name}-{pool.name}",
                AwsGpuNodePoolArgs(
                    pool=pool,
                    cluster_name=name,
                    eks_cluster_name=cluster_name_for_nodes,
                    kubernetes_version=cluster.version,
                    node_role_arn=node_role_arn,
                    subnet_ids=subnets,
                    security_group_ids=groups,
                ),
                opts=child,
            )
        karpenter_pools = tuple(pool for pool in args.gpu_node_pools if pool.autoscaler == "karpenter")
        self.karpenter: KarpenterAws | None = None
        karpenter_system = args.system_node_group if args.system_node_group.autoscaler == "karpenter" else None
        if karpenter_pools or karpenter_system is not None:
            self.karpenter = KarpenterAws(
                f"{name}-karpenter",
                KarpenterAwsArgs(
                    cluster_name=name,
                    eks_cluster_name=cluster_name_for_nodes,
                    region=args.region,
                    partition=self._partition,
                    node_role_arn=node_role_arn,
                ),
                opts=child,
            )
        lb_role = self._irsa_role("lb-controller-role", aws_iam.LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT, [])
        aws.iam.RolePolicy(
            f"{name}-lb-controller-role-policy",
            role=lb_role.name,
            policy=aws_iam.load_balancer_controller_policy(),
            opts=child,
        )

        self.kubeconfig = pulumi.Output.all(
            cluster.name, cluster.endpoint, cluster.certificate_authority.apply(lambda ca: ca.data)
        ).apply(lambda v: eks_kubeconfig(v[0], v[1], v[2], args.region))
        # The storage CSI driver comes before the provider, so that on destroy every claim is
        # deleted (and its file system with it) while the driver still runs.
        storage_addon = None
        if args.storage.kind == "fsx-lustre":
            storage_addon, fsx_parameters = self._fsx_backend(network, cluster_security_group, system_group)
        elif args.storage.kind == "s3-mountpoint":
            storage_addon, bucket_name = self._s3_backend(system_group)
        provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[system_group, coredns, *early, *([storage_addon] if storage_addon else [])],
            ),
        )
        storage: SharedStorage | None = None
        if args.storage.kind == "fsx-lustre":
            storage = self._fsx_storage_class(provider, fsx_parameters)
        elif args.storage.kind == "s3-mountpoint":
            storage = self._s3_volume(provider, bucket_name)

        self.cluster_name = cluster.name
        self.vpc_id = network.vpc_id
        self.private_subnet_ids = pulumi.Output.all(*private_subnets).apply(list)
        self.oidc_provider_arn = oidc.arn
        self.node_security_group_id = cluster_security_group
        pools = {pool.name: pool.node_pool() for pool in args.gpu_node_pools}
        self.handle = ClusterHandle(
            name=name,
            provider=provider,
            kubeconfig=self.kubeconfig,
            fabric="efa" if any(p.fabric == "efa" for p in pools.values()) else "none",
            system_pool=NodePool(name="system", gpus_per_node=0, gpu_memory_gib=0, node_selector={POOL_LABEL: "system"}),
            gpu_pools=pools,
            storage=storage,
            platform="eks",
            aws=AwsClusterInfo(
                region=args.region,
                cluster_name=cluster.name,
                vpc_id=network.vpc_id,
                node_role_name=node_role.name,
                pool_subnet_ids=pool_subnets,
                pool_security_group_ids=pool_groups,
                placement_groups={
                    pool.name: group
                    for pool in args.gpu_node_pools
                    if (group := placement_group_for(name, pool)) is not None
                },
                karpenter_pools=karpenter_pools,
                karpenter_system=karpenter_system,
                system_subnet_ids=list(private_subnets),
                system_security_group_ids=[cluster_security_group],
                karpenter_interruption_queue=self.karpenter.queue_name if self.karpenter else None,
                karpenter_dependencies=tuple(self.karpenter.dependencies) if self.karpenter else (),
                load_balancer_controller_role_arn=lb_role.arn,
            ),
        )
        self.register_outputs(
            {
                "clusterName": self.cluster_name,
                "vpcId": self.vpc_id,
                "privateSubnetIds": self.private_subnet_ids,
                "oidcProviderArn": self.oidc_provider_arn,
                "nodeSecurityGroupId": self.node_security_group_id,
                "kubeconfig": pulumi.Output.secret(self.kubeconfig),
            }
        )

    # -- IAM ---------------------------------------------------------------------------------

    def _service_role(
        self, role: str, service: str, policies: tuple[str, ...]
    ) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
        resource = aws.iam.Role(
            f"{self._name}-{role}",
            assume_role_policy=aws_iam.service_trust_policy(service),
            description=f"EKS cluster {self._name}: {role}",
            opts=pulumi.ResourceOptions(parent=self),
        )
        return resource, self._attach(role, resource, policies)

    def _irsa_role(self, role: str, service_account: tuple[str, str], policies: list[str]) -> aws.iam.Role:
        namespace, account = service_account
        trust = pulumi.Output.all(self._oidc_arn, self._issuer).apply(
            lambda v: aws_iam.irsa_trust_policy(v[0], v[1], namespace, account)
        )
        resource = aws.iam.Role(
            f"{self._name}-{role}",
            assume_role_policy=trust,
            description=f"EKS cluster {self._name}: service account {namespace}/{account}",
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._attach(role, resource, tuple(policies))
        return resource

    def _attach(self, role: str, resource: aws.iam.Role, policies: tuple[str, ...]) -> list[aws.iam.RolePolicyAttachment]:
        return [
            aws.iam.RolePolicyAttachment(
                f"{self._name}-{role}-{policy}",
                role=resource.name,
                policy_arn=aws_iam.managed_policy_arn(policy, self._partition),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for policy in policies
        ]

    # -- add-ons and security groups ---------------------------------------------------------

    def _addon(
        self, addon: str, role_arn: pulumi.Output[str] | None = None, depends_on: list[pulumi.Resource] | None = None
    ) -> aws.eks.Addon:
        configuration = vpc_cni_configuration(self._args.network_policy) if addon == "vpc-cni" else {}
        return aws.eks.Addon(
            f"{self._name}-{addon}",
            cluster_name=self._cluster.name,
            addon_name=addon,
            addon_version=self._args.addon_versions.get(addon),
            configuration_values=json.dumps(configuration, sort_keys=True) if configuration else None,
            service_account_role_arn=role_arn,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="PRESERVE",
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on or []),
        )

    def _efa_security_group(self, vpc_id: pulumi.Output[str]) -> pulumi.Output[str]:
        group = aws.ec2.SecurityGroup(
            f"{self._name}-efa-sg",
            vpc_id=vpc_id,
            description=f"EFA interfaces of {self._name} GPU nodes: all traffic to and from this group",
            tags={"Name": f"{self._name}-efa"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-efa-sg-ingress-self",
            security_group_id=group.id,
            referenced_security_group_id=group.id,
            ip_protocol="-1",
            description="EFA: all traffic from the EFA interfaces",
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{self._name}-efa-sg-egress-self",
            security_group_id=group.id,
            referenced_security_group_id=group.id,
            ip_protocol="-1",
            description="EFA: all traffic to the EFA interfaces",
            opts=pulumi.ResourceOptions(parent=self),
        )
        return group.id

    # -- storage -----------------------------------------------------------------------------

    def _fsx_backend(
        self, network: AwsNetwork, cluster_security_group: pulumi.Output[str], system_group: aws.eks.NodeGroup
    ) -> tuple[aws.eks.Addon, pulumi.Output[dict[str, str]]]:
        """FSx CSI driver (with its IRSA role) and security group; the StorageClass parameters."""
        name, storage = self._name, self._args.storage
        child = pulumi.ResourceOptions(parent=self)
        role = self._irsa_role("fsx-csi-role", aws_iam.FSX_CSI_SERVICE_ACCOUNT, [])
        aws.iam.RolePolicy(
            f"{name}-fsx-csi-role-file-systems",
            role=role.name,
            policy=aws_iam.fsx_csi_policy(self._partition),
            opts=child,
        )
        addon = self._addon(STORAGE_ADDONS["fsx-lustre"], role_arn=role.arn, depends_on=[system_group])
        group = aws.ec2.SecurityGroup(
            f"{name}-fsx-sg",
            vpc_id=network.vpc_id,
            description=f"FSx for Lustre file systems of {name}: Lustre from the nodes and between servers",
            tags={"Name": f"{name}-fsx"},
            opts=child,
        )
        for low, high in LUSTRE_PORTS:
            for source, peer in (("nodes", cluster_security_group), ("self", group.id)):
                aws.vpc.SecurityGroupIngressRule(
                    f"{name}-fsx-sg-ingress-{low}-{high}-{source}",
                    security_group_id=group.id,
                    referenced_security_group_id=peer,
                    ip_protocol="tcp",
                    from_port=low,
                    to_port=high,
                    description=f"Lustre {low}-{high} from {source}",
                    opts=child,
                )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-fsx-sg-egress",
            security_group_id=group.id,
            cidr_ipv4="0.0.0.0/0",
            ip_protocol="-1",
            description="Lustre replies and server traffic",
            opts=child,
        )
        zone = storage_zone(self._args)
        subnet = network.gpu_subnet_ids.get(zone, network.private_subnet_ids[zone])
        parameters = pulumi.Output.all(subnet, group.id).apply(
            lambda v: fsx_storage_class_parameters(storage, v[0], v[1])
        )
        return addon, parameters

    def _fsx_storage_class(
        self, provider: k8s.Provider, parameters: pulumi.Output[dict[str, str]]
    ) -> SharedStorage:
        storage = self._args.storage
        k8s.storage.v1.StorageClass(
            f"{self._name}-fsx-storage-class",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=FSX_STORAGE_CLASS),
            provisioner=FSX_PROVISIONER,
            parameters=parameters,
            mount_options=["flock"],
            reclaim_policy=storage.reclaim_policy,
            volume_binding_mode="Immediate",
            allow_volume_expansion=True,
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        return SharedStorage(storage_class=FSX_STORAGE_CLASS, size_gib=storage.size_gib, kind="fsx-lustre")

    def _s3_backend(self, system_group: aws.eks.NodeGroup) -> tuple[aws.eks.Addon, pulumi.Output[str]]:
        """The bucket (created unless named), Mountpoint CSI driver and its bucket-scoped role."""
        name, storage = self._name, self._args.storage
        child = pulumi.ResourceOptions(parent=self)
        if storage.bucket_name is not None:
            bucket_name: pulumi.Output[str] = pulumi.Output.from_input(storage.bucket_name)
        else:
            account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
            bucket = aws.s3.Bucket(
                f"{name}-models",
                bucket=account.apply(lambda a: f"{name}-models-{a}"),
                force_destroy=False,
                tags={"Name": f"{name}-models"},
                opts=child,
            )
            aws.s3.BucketPublicAccessBlock(
                f"{name}-models-public-access",
                bucket=bucket.id,
                block_public_acls=True,
                block_public_policy=True,
                ignore_public_acls=True,
                restrict_public_buckets=True,
                opts=child,
            )
            bucket_name = bucket.bucket
        partition = self._partition
        role = self._irsa_role("s3-csi-role", aws_iam.S3_CSI_SERVICE_ACCOUNT, [])
        aws.iam.RolePolicy(
            f"{name}-s3-csi-role-bucket",
            role=role.name,
            policy=bucket_name.apply(lambda b: aws_iam.s3_mountpoint_policy(f"arn:{partition}:s3:::{b}")),
            opts=child,
        )
        addon = self._addon(STORAGE_ADDONS["s3-mountpoint"], role_arn=role.arn, depends_on=[system_group])
        return addon, bucket_name

    def _s3_volume(self, provider: k8s.Provider, bucket_name: pulumi.Output[str]) -> SharedStorage:
        """The static PersistentVolume on the bucket, named like its class (ModelStore binds it by name)."""
        name, storage = self._name, self._args.storage
        k8s.core.v1.PersistentVolume(
            f"{name}-s3-volume",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=S3_STORAGE_CLASS),
            spec=k8s.core.v1.PersistentVolumeSpecArgs(
                capacity={"storage": f"{storage.size_gib}Gi"},
                access_modes=["ReadWriteMany"],
                storage_class_name=S3_STORAGE_CLASS,
                persistent_volume_reclaim_policy="Retain",
                mount_options=["allow-delete", "allow-overwrite", f"region {self._args.region}"],
                csi=k8s.core.v1.CSIPersistentVolumeSourceArgs(
                    driver=S3_CSI_DRIVER,
                    volume_handle=f"{name}-{S3_STORAGE_CLASS}",
                    volume_attributes=bucket_name.apply(lambda b: {"bucketName": b}),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        return SharedStorage(storage_class=S3_STORAGE_CLASS, size_gib=storage.size_gib, kind="s3-mountpoint")


def _after(value: pulumi.Output[str], dependencies: list[pulumi.Output[str]]) -> pulumi.Output[str]:
    """``value``, carrying dependencies on the resources behind ``dependencies``."""

    def first(values: list[str]) -> str:
        return values[0]

    return pulumi.Output.all(value, *dependencies).apply(first)
