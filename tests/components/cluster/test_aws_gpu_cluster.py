"""AwsGpuCluster under Pulumi mocks: the resource inputs AWS and Kubernetes would receive."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pytest

from components.cluster.aws import AwsGpuCluster
from components.config.cluster import EksConfig
from components.config.scheduling import EFA_RESOURCE, Toleration
from components.config.subnets import plan_subnets

LT = "aws:ec2/launchTemplate:LaunchTemplate"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
PLACEMENT_GROUP = "aws:ec2/placementGroup:PlacementGroup"
SUBNET = "aws:ec2/subnet:Subnet"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
ADDON = "aws:eks/addon:Addon"
CR = "cr-0a1b2c3d4e5f60718"


@pytest.fixture
def build(declare):
    """``build(config, name)``: declare an AwsGpuCluster with an explicit AWS provider."""

    def run(config: EksConfig, name: str = "llm-test"):
        def program() -> AwsGpuCluster:
            provider = aws.Provider("aws", region=config.region)
            return AwsGpuCluster(name, config, pulumi.ResourceOptions(providers={"aws": provider}))

        return declare(program)

    return run


@pytest.fixture
def p5(build, make_eks, make_pool):
    return build(make_eks(gpuNodePools=[make_pool(minSize=2, desiredSize=2, maxSize=4, labels={"team": "llm"})]))


# -- (1) p5.48xlarge: 32 EFA interfaces, EFA security group, placement group, subnet ---------


def test_p5_launch_template_attaches_32_efa_interfaces(p5) -> None:
    cluster, declared = p5
    interfaces = gpu_template(declared).inputs["networkInterfaces"]
    assert len(interfaces) == 32
    assert [i["networkCardIndex"] for i in interfaces] == list(range(32))
    assert [i["deviceIndex"] for i in interfaces] == [0] + [1] * 31
    assert [i["interfaceType"] for i in interfaces] == ["efa"] + ["efa-only"] * 31
    assert {i["deleteOnTermination"] for i in interfaces} == {"true"}
    assert "subnetId" not in interfaces[0]  # EKS managed node groups refuse a subnet in the template


def test_every_efa_interface_has_the_cluster_and_efa_security_groups(p5) -> None:
    cluster, declared = p5
    groups = [
        declared.resolve(cluster.node_security_group_id),
        declared.resolve(cluster.efa_security_group_id),
    ]
    assert groups[0].startswith("sg-llm-test-eks-")
    assert groups[1].startswith("llm-test-efa-sg-")
    assert all(i["securityGroups"] == groups for i in gpu_template(declared).inputs["networkInterfaces"])
    assert "vpcSecurityGroupIds" not in gpu_template(declared).inputs


def test_efa_security_group_allows_all_traffic_to_and_from_itself(p5) -> None:
    cluster, declared = p5
    group = declared.resolve(cluster.efa_security_group_id)
    ingress = declared.one("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "llm-test-efa-sg-ingress-self")
    egress = declared.one("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", "llm-test-efa-sg-egress-self")
    for rule in (ingress, egress):
        assert rule.inputs["securityGroupId"] == group
        assert rule.inputs["referencedSecurityGroupId"] == group
        assert rule.inputs["ipProtocol"] == "-1"
        assert "cidrIpv4" not in rule.inputs
    assert declared.one("aws:ec2/securityGroup:SecurityGroup", "llm-test-efa-sg").inputs["vpcId"].startswith(
        "llm-test-network-vpc-"
    )


def test_placement_group_is_cluster_strategy_and_in_the_launch_template(p5) -> None:
    _, declared = p5
    group = declared.one(PLACEMENT_GROUP)
    assert group.name == "llm-test-h100-placement-group"
    assert group.inputs["strategy"] == "cluster"
    assert group.inputs["name"] == "llm-test-h100"
    assert gpu_template(declared).inputs["placement"] == {"groupName": "llm-test-h100"}


def test_pool_nodes_are_in_the_dedicated_subnet_of_its_zone(p5) -> None:
    _, declared = p5
    subnet = declared.one(SUBNET, "llm-test-network-gpu-us-east-2a")
    assert subnet.inputs["availabilityZone"] == "us-east-2a"
    assert subnet.inputs["cidrBlock"] == plan_subnets("10.60.0.0/16", ["us-east-2a", "us-east-2b", "us-east-2c"])["us-east-2a"].gpu
    (subnet_id,) = declared.one(NODE_GROUP, "llm-test-h100-node-group").inputs["subnetIds"]
    assert subnet_id.startswith("llm-test-network-gpu-us-east-2a-")
    assert [s.name for s in declared.of_type(SUBNET) if "-gpu-" in s.name] == ["llm-test-network-gpu-us-east-2a"]


def test_gpu_node_group_uses_the_template_the_nvidia_ami_labels_and_taint(p5) -> None:
    _, declared = p5
    template = gpu_template(declared)
    group = declared.one(NODE_GROUP, "llm-test-h100-node-group")
    assert template.inputs["instanceType"] == "p5.48xlarge"
    assert "instanceTypes" not in group.inputs  # set in the template only
    assert "imageId" not in template.inputs and "userData" not in template.inputs
    assert group.inputs["amiType"] == "AL2023_x86_64_NVIDIA"
    assert group.inputs["launchTemplate"]["id"].startswith("llm-test-h100-launch-template-")
    assert group.inputs["launchTemplate"]["version"] == "1"
    assert group.inputs["labels"] == {"team": "llm", "disagg.dev/pool": "h100"}
    assert group.inputs["taints"] == [{"key": "nvidia.com/gpu", "effect": "NO_SCHEDULE"}]
    assert group.inputs["scalingConfig"] == {"minSize": 2, "desiredSize": 2, "maxSize": 4}
    assert group.inputs["capacityType"] == "ON_DEMAND"
    assert group.inputs["version"] == "1.35"
    assert group.parent_name == "llm-test-h100"


def gpu_template(declared):
    """The one GPU pool launch template (the system node group has its own)."""
    (template,) = [t for t in declared.of_type(LT) if not t.name.endswith("-system-launch-template")]
    return template


def test_root_volume_and_metadata_options(p5) -> None:
    _, declared = p5
    template = gpu_template(declared).inputs
    (root,) = template["blockDeviceMappings"]
    assert root["deviceName"] == "/dev/xvda"
    assert root["ebs"]["volumeSize"] == 500
    assert (root["ebs"]["volumeType"], root["ebs"]["encrypted"]) == ("gp3", "true")
    assert template["metadataOptions"]["httpTokens"] == "required"
    # pods are one hop further than the node: with a hop limit of 1 they cannot reach IMDS
    assert template["metadataOptions"]["httpPutResponseHopLimit"] == 1


def test_system_nodes_have_imdsv2_hop_limit_1_and_an_encrypted_root(build, make_eks) -> None:
    _, declared = build(make_eks(storage={"kind": "none"}))
    template = declared.one(LT, "llm-test-system-launch-template").inputs
    assert template["metadataOptions"] == {
        "httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1,
        "instanceMetadataTags": "disabled",
    }  # fmt: skip
    (root,) = template["blockDeviceMappings"]
    assert (root["ebs"]["volumeSize"], root["ebs"]["encrypted"], root["ebs"]["volumeType"]) == (100, "true", "gp3")
    group = declared.one(NODE_GROUP, "llm-test-system").inputs
    assert "diskSize" not in group and group["launchTemplate"]["id"].startswith("llm-test-system-launch-template")


def test_handle_describes_the_p5_pool(p5) -> None:
    cluster, _ = p5
    handle = cluster.handle
    assert handle.platform == "eks" and handle.fabric == "efa" and handle.name == "llm-test"
    pool = handle.gpu_pools["h100"]
    assert pool.node_selector == {"disagg.dev/pool": "h100"}
    assert pool.tolerations == (Toleration(key="nvidia.com/gpu", effect="NoSchedule"),)
    assert (pool.gpus_per_node, pool.gpu_memory_gib, pool.efa_interfaces) == (8, 80, 32)
    assert pool.fabric_resources() == {EFA_RESOURCE: "32"}
    assert handle.system_pool.node_selector == {"disagg.dev/pool": "system"}


# -- (2) the dev stack: p4d with 4 EFA interfaces -------------------------------------------


def test_dev_p4d_pool_has_4_efa_interfaces(build, dev_eks) -> None:
    cluster, declared = build(dev_eks, "llm-dev")
    interfaces = gpu_template(declared).inputs["networkInterfaces"]
    assert [(i["networkCardIndex"], i["deviceIndex"], i["interfaceType"]) for i in interfaces] == [
        (0, 0, "efa"),
        (1, 1, "efa-only"),
        (2, 1, "efa-only"),
        (3, 1, "efa-only"),
    ]
    assert gpu_template(declared).inputs["instanceType"] == "p4d.24xlarge"
    assert gpu_template(declared).inputs["placement"] == {"groupName": "llm-dev-a100"}
    assert declared.one(NODE_GROUP, "llm-dev-a100-node-group").inputs["subnetIds"][0].startswith(
        "llm-dev-network-gpu-us-west-2b-"
    )
    assert cluster.handle.gpu_pools["a100"].efa_interfaces == 4


def test_dev_cluster_endpoint_and_version(build, dev_eks) -> None:
    _, declared = build(dev_eks, "llm-dev")
    cluster = declared.one("aws:eks/cluster:Cluster").inputs
    assert cluster["name"] == "llm-dev"
    assert cluster["version"] == "1.35"
    assert cluster["vpcConfig"]["endpointPrivateAccess"] is True
    assert cluster["vpcConfig"]["endpointPublicAccess"] is True
    assert cluster["vpcConfig"]["publicAccessCidrs"] == ["DEPLOYER-CIDR"]  # the offline render of the placeholder
    assert [s.rsplit("-", 1)[0] for s in cluster["vpcConfig"]["subnetIds"]] == [
        f"llm-dev-network-private-us-west-2{z}" for z in "abc"
    ]
    assert cluster["bootstrapSelfManagedAddons"] is False


def test_private_endpoint_sends_no_cidrs(build, make_eks) -> None:
    _, declared = build(make_eks(endpointPublicAccess=False, deployerAccess="in-vpc"))
    vpc = declared.one("aws:eks/cluster:Cluster").inputs["vpcConfig"]
    assert (vpc["endpointPrivateAccess"], vpc["endpointPublicAccess"]) == (True, False)
    assert "publicAccessCidrs" not in vpc


def test_subnets_are_tagged_for_load_balancers(build, dev_eks) -> None:
    _, declared = build(dev_eks, "llm-dev")
    public = declared.one(SUBNET, "llm-dev-network-public-us-west-2a").inputs["tags"]
    private = declared.one(SUBNET, "llm-dev-network-private-us-west-2a").inputs["tags"]
    gpu = declared.one(SUBNET, "llm-dev-network-gpu-us-west-2b").inputs["tags"]
    assert public["kubernetes.io/role/elb"] == "1" and "kubernetes.io/role/internal-elb" not in public
    assert private["kubernetes.io/role/internal-elb"] == "1" and "kubernetes.io/role/elb" not in private
    assert "kubernetes.io/role/elb" not in gpu and "kubernetes.io/role/internal-elb" not in gpu
    assert all(t["kubernetes.io/cluster/llm-dev"] == "shared" for t in (public, private, gpu))


def test_one_nat_gateway_per_zone_in_its_public_subnet(build, dev_eks) -> None:
    _, declared = build(dev_eks, "llm-dev")
    nats = declared.of_type("aws:ec2/natGateway:NatGateway")
    assert [n.name for n in nats] == [f"llm-dev-network-nat-us-west-2{z}" for z in "abc"]
    assert all(n.inputs["subnetId"].startswith(f"llm-dev-network-public-us-west-2{z}-") for n, z in zip(nats, "abc", strict=True))
    routes = {r.name: r.inputs for r in declared.of_type("aws:ec2/route:Route")}
    assert routes["llm-dev-network-private-us-west-2b-default-route"]["natGatewayId"].startswith(
        "llm-dev-network-nat-us-west-2b-"
    )
    assert routes["llm-dev-network-public-default-route"]["gatewayId"].startswith("llm-dev-network-igw-")
    associations = {r.name: r.inputs for r in declared.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")}
    assert associations["llm-dev-network-gpu-us-west-2b-rta"]["routeTableId"].startswith(
        "llm-dev-network-private-us-west-2b-rt-"
    )


# -- (3) a CPU-only cluster ------------------------------------------------------------------


def test_cpu_only_cluster_has_the_system_node_group_only(build, make_eks) -> None:
    cluster, declared = build(make_eks(storage={"kind": "none"}))
    types = declared.types()
    assert [t.name for t in declared.of_type(LT)] == ["llm-test-system-launch-template"]
    assert PLACEMENT_GROUP not in types
    assert "aws:ec2/securityGroup:SecurityGroup" not in types  # neither EFA nor FSx
    (group,) = declared.of_type(NODE_GROUP)
    assert group.name == "llm-test-system"
    assert group.inputs["labels"] == {"disagg.dev/pool": "system"}
    assert group.inputs["instanceTypes"] == ["m7i.2xlarge"]
    assert group.inputs["amiType"] == "AL2023_x86_64_STANDARD"
    assert group.inputs["scalingConfig"] == {"minSize": 2, "desiredSize": 2, "maxSize": 4}
    assert "taints" not in group.inputs  # its launch template only sets IMDS and the root volume
    assert [s.name for s in declared.of_type(SUBNET) if "-gpu-" in s.name] == []
    assert cluster.handle.gpu_pools == {} and cluster.handle.fabric == "none"
    assert cluster.efa_security_group_id is None and cluster.handle.storage is None


def test_pool_without_efa_uses_the_cluster_security_group_only(build, make_eks, make_pool) -> None:
    config = make_eks(gpuNodePools=[make_pool(name="l4", instanceType="g6.xlarge", efa=False, placementGroup=False)])
    cluster, declared = build(config)
    template = gpu_template(declared).inputs
    assert "networkInterfaces" not in template and "placement" not in template
    assert template["vpcSecurityGroupIds"] == [declared.resolve(cluster.node_security_group_id)]
    assert PLACEMENT_GROUP not in declared.types()
    assert cluster.handle.fabric == "none" and cluster.handle.gpu_pools["l4"].fabric == "none"


# -- (4) capacity blocks and reservations ----------------------------------------------------


def test_capacity_block_targets_the_block(build, make_eks, make_pool) -> None:
    _, declared = build(make_eks(gpuNodePools=[make_pool(capacityType="capacity-block", capacityReservationId=CR)]))
    template = gpu_template(declared).inputs
    assert template["instanceMarketOptions"] == {"marketType": "capacity-block"}
    assert template["capacityReservationSpecification"] == {"capacityReservationTarget": {"capacityReservationId": CR}}
    assert declared.one(NODE_GROUP, "llm-test-h100-node-group").inputs["capacityType"] == "CAPACITY_BLOCK"
    assert PLACEMENT_GROUP not in declared.types() and "placement" not in template
    assert len(template["networkInterfaces"]) == 32


def test_on_demand_reservation_is_targeted_without_market_options(build, make_eks, make_pool) -> None:
    _, declared = build(make_eks(gpuNodePools=[make_pool(capacityReservationId=CR)]))
    template = gpu_template(declared).inputs
    assert template["capacityReservationSpecification"] == {"capacityReservationTarget": {"capacityReservationId": CR}}
    assert "instanceMarketOptions" not in template
    assert declared.one(NODE_GROUP, "llm-test-h100-node-group").inputs["capacityType"] == "ON_DEMAND"


def test_spot_pool_has_no_reservation(build, make_eks, make_pool) -> None:
    _, declared = build(make_eks(gpuNodePools=[make_pool(capacityType="spot", placementGroup=False)]))
    template = gpu_template(declared).inputs
    assert "capacityReservationSpecification" not in template and "instanceMarketOptions" not in template
    assert declared.one(NODE_GROUP, "llm-test-h100-node-group").inputs["capacityType"] == "SPOT"


# -- (5) IAM ---------------------------------------------------------------------------------


def attached(declared, role: str) -> list[str]:
    return sorted(a.inputs["policyArn"] for a in declared.of_type(ATTACHMENT) if a.inputs["role"] == role)


def test_roles_get_exactly_their_managed_policies(build, dev_eks) -> None:
    _, declared = build(dev_eks, "llm-dev")
    assert attached(declared, "llm-dev-cluster-role") == ["arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"]
    assert attached(declared, "llm-dev-node-role") == [
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
    ]
    assert attached(declared, "llm-dev-vpc-cni-role") == ["arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"]
    assert attached(declared, "llm-dev-fsx-csi-role") == []
    assert len(declared.of_type(ATTACHMENT)) == 5


def test_fsx_csi_role_has_only_the_actions_the_driver_calls(build, dev_eks) -> None:
    _, declared = build(dev_eks, "llm-dev")
    policy = declared.one("aws:iam/rolePolicy:RolePolicy", "llm-dev-fsx-csi-role-file-systems").inputs
    statements = {s["Sid"]: s for s in json.loads(policy["policy"])["Statement"]}
    assert statements["ManageFileSystems"]["Action"] == [
        "fsx:CreateFileSystem", "fsx:DeleteFileSystem", "fsx:DescribeFileSystems", "fsx:TagResource",
        "fsx:UpdateFileSystem",
    ]  # fmt: skip
    assert statements["FsxServiceLinkedRole"]["Action"] == ["iam:CreateServiceLinkedRole"]
    assert statements["FsxServiceLinkedRole"]["Condition"] == {
        "StringLike": {"iam:AWSServiceName": ["fsx.amazonaws.com"]}
    }
    assert not any(a.endswith("*") for s in statements.values() for a in s["Action"])


def test_the_model_storage_class_retains_by_default_and_deletes_on_request(build, make_eks) -> None:
    _, declared = build(make_eks())
    assert declared.one("kubernetes:storage.k8s.io/v1:StorageClass").inputs["reclaimPolicy"] == "Retain"
    _, declared = build(make_eks(storage={"kind": "fsx-lustre", "reclaimPolicy": "Delete"}))
    assert declared.one("kubernetes:storage.k8s.io/v1:StorageClass").inputs["reclaimPolicy"] == "Delete"


def test_ssm_can_be_left_off_the_node_role(build, make_eks) -> None:
    _, declared = build(make_eks(nodeSsmAccess=False, storage={"kind": "none"}))
    assert attached(declared, "llm-test-node-role") == [
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    ]


def test_govcloud_uses_its_partition(build, make_eks) -> None:
    config = make_eks(region="us-gov-west-1", availabilityZones=["us-gov-west-1a", "us-gov-west-1b"], storage={"kind": "none"})
    _, declared = build(config)
    assert attached(declared, "llm-test-cluster-role") == ["arn:aws-us-gov:iam::aws:policy/AmazonEKSClusterPolicy"]


def test_trust_policies(build, dev_eks) -> None:
    cluster, declared = build(dev_eks, "llm-dev")
    roles = {r.name: json.loads(r.inputs["assumeRolePolicy"]) for r in declared.of_type("aws:iam/role:Role")}
    assert roles["llm-dev-cluster-role"]["Statement"][0]["Principal"] == {"Service": "eks.amazonaws.com"}
    assert roles["llm-dev-node-role"]["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    (cni,) = roles["llm-dev-vpc-cni-role"]["Statement"]
    assert cni["Principal"] == {"Federated": declared.resolve(cluster.oidc_provider_arn)}
    (sub,) = [v for k, v in cni["Condition"]["StringEquals"].items() if k.endswith(":sub")]
    assert sub == "system:serviceaccount:kube-system:aws-node"
    (fsx,) = roles["llm-dev-fsx-csi-role"]["Statement"]
    assert "system:serviceaccount:kube-system:fsx-csi-controller-sa" in fsx["Condition"]["StringEquals"].values()
    oidc = declared.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider").inputs
    assert oidc["clientIdLists"] == ["sts.amazonaws.com"]
    assert oidc["url"].startswith("https://oidc.eks.us-west-2.amazonaws.com/id/")


def test_nodes_join_after_the_cni_and_their_policies(build, dev_eks) -> None:
    _, declared = build(dev_eks, "llm-dev")
    for group in declared.of_type(NODE_GROUP):
        names = {urn.rsplit("::", 1)[-1] for urn in group.dependencies}
        assert {"llm-dev-vpc-cni", "llm-dev-kube-proxy", "llm-dev-node-role-AmazonEKSWorkerNodePolicy"} <= names
    coredns = declared.one(ADDON, "llm-dev-coredns")
    assert any(urn.endswith("::llm-dev-system") for urn in coredns.dependencies)


def test_kubernetes_waits_for_system_nodes_core_addons_and_storage_driver(build, dev_eks) -> None:
    _, declared = build(dev_eks, "llm-dev")
    provider = declared.one("pulumi:providers:kubernetes")
    names = {urn.rsplit("::", 1)[-1] for urn in provider.dependencies}
    assert {"llm-dev-system", "llm-dev-coredns", "llm-dev-vpc-cni", "llm-dev-aws-fsx-csi-driver"} <= names
    assert "llm-dev-a100-node-group" not in names  # GPU capacity may come later


def test_addons(build, dev_eks) -> None:
    _, declared = build(dev_eks, "llm-dev")
    addons = {a.inputs["addonName"]: a.inputs for a in declared.of_type(ADDON)}
    assert set(addons) == {"vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent", "aws-fsx-csi-driver"}
    assert addons["vpc-cni"]["serviceAccountRoleArn"].endswith("/llm-dev-vpc-cni-role")
    assert addons["aws-fsx-csi-driver"]["serviceAccountRoleArn"].endswith("/llm-dev-fsx-csi-role")
    assert {a["clusterName"] for a in addons.values()} == {"llm-dev"}
    assert not any("addonVersion" in a for a in addons.values())


def test_addon_versions_are_pinned_where_configured(build, make_eks) -> None:
    eks = make_eks(addonVersions={"vpc-cni": "v1.20.4-eksbuild.2", "coredns": "v1.12.3-eksbuild.1"})
    _, declared = build(eks, "pinned")
    versions = {a.inputs["addonName"]: a.inputs.get("addonVersion") for a in declared.of_type(ADDON)}
    assert versions["vpc-cni"] == "v1.20.4-eksbuild.2"
    assert versions["coredns"] == "v1.12.3-eksbuild.1"
    assert versions["kube-proxy"] is None


# -- (6) access entries ----------------------------------------------------------------------


ADMINS = ["arn:aws:iam::123456789012:role/platform-admins", "arn:aws:iam::123456789012:user/alice"]


def test_admin_principals_get_cluster_admin_through_access_entries(build, make_eks) -> None:
    _, declared = build(make_eks(adminPrincipalArns=ADMINS, storage={"kind": "none"}))
    entries = declared.of_type("aws:eks/accessEntry:AccessEntry")
    assert [(e.name, e.inputs["principalArn"], e.inputs["type"]) for e in entries] == [
        ("llm-test-admin-alice", ADMINS[1], "STANDARD"),
        ("llm-test-admin-platform-admins", ADMINS[0], "STANDARD"),
    ]
    associations = declared.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert sorted(a.inputs["principalArn"] for a in associations) == sorted(ADMINS)
    for association in associations:
        assert association.inputs["policyArn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
        assert association.inputs["accessScope"] == {"type": "cluster"}
        assert association.inputs["clusterName"] == "llm-test"
        assert any(urn.endswith(f"::{association.name.removesuffix('-policy')}") for urn in association.dependencies)
    access = declared.one("aws:eks/cluster:Cluster").inputs["accessConfig"]
    assert access == {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": True}


def test_no_access_entries_without_admins(build, make_eks) -> None:
    _, declared = build(make_eks(storage={"kind": "none"}))
    assert "aws:eks/accessEntry:AccessEntry" not in declared.types()


# -- (7) storage -----------------------------------------------------------------------------


def test_fsx_storage_class(build, dev_eks) -> None:
    cluster, declared = build(dev_eks, "llm-dev")
    (storage_class,) = declared.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    inputs = storage_class.inputs
    assert inputs["metadata"]["name"] == "fsx-lustre"
    assert inputs["provisioner"] == "fsx.csi.aws.com"
    parameters = inputs["parameters"]
    assert parameters["subnetId"].startswith("llm-dev-network-gpu-us-west-2b-")  # next to the GPUs
    assert parameters["securityGroupIds"].startswith("llm-dev-fsx-sg-")
    assert (parameters["deploymentType"], parameters["perUnitStorageThroughput"]) == ("PERSISTENT_2", "250")
    assert inputs["volumeBindingMode"] == "Immediate"
    assert "pulumi:providers:kubernetes::llm-dev-k8s::" in storage_class.provider
    provider = declared.one("pulumi:providers:kubernetes")
    assert any(urn.endswith("::llm-dev-aws-fsx-csi-driver") for urn in provider.dependencies)
    storage = cluster.handle.storage
    assert storage is not None
    assert (storage.storage_class, storage.size_gib, storage.kind) == ("fsx-lustre", 1200, "fsx-lustre")


def test_fsx_security_group_opens_lustre_ports_to_nodes(build, dev_eks) -> None:
    cluster, declared = build(dev_eks, "llm-dev")
    nodes = declared.resolve(cluster.node_security_group_id)
    rules = [
        r.inputs
        for r in declared.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.name.startswith("llm-dev-fsx-sg-")
    ]
    from_nodes = sorted((r["fromPort"], r["toPort"]) for r in rules if r["referencedSecurityGroupId"] == nodes)
    assert from_nodes == [(988, 988), (1018, 1023)]
    assert {r["ipProtocol"] for r in rules} == {"tcp"} and len(rules) == 4


def test_s3_storage_is_a_bucket_and_a_static_volume(build, make_eks) -> None:
    cluster, declared = build(make_eks(storage={"kind": "s3-mountpoint"}))
    bucket = declared.one("aws:s3/bucket:Bucket").inputs
    assert bucket["bucket"] == "llm-test-models-123456789012"
    (volume,) = declared.of_type("kubernetes:core/v1:PersistentVolume")
    spec = volume.inputs["spec"]
    assert volume.inputs["metadata"]["name"] == "s3-models"
    assert spec["storageClassName"] == "s3-models"
    assert spec["accessModes"] == ["ReadWriteMany"]
    assert spec["csi"]["driver"] == "s3.csi.aws.com"
    assert spec["csi"]["volumeAttributes"] == {"bucketName": "llm-test-models-123456789012"}
    assert "region us-east-2" in spec["mountOptions"]
    policy = json.loads(declared.one("aws:iam/rolePolicy:RolePolicy", "llm-test-s3-csi-role-bucket").inputs["policy"])
    assert policy["Statement"][1]["Resource"] == ["arn:aws:s3:::llm-test-models-123456789012/*"]
    addons = {a.inputs["addonName"] for a in declared.of_type(ADDON)}
    assert "aws-mountpoint-s3-csi-driver" in addons and "aws-fsx-csi-driver" not in addons
    assert cluster.handle.storage is not None and cluster.handle.storage.kind == "s3-mountpoint"


def test_s3_storage_on_an_existing_bucket_creates_none(build, make_eks) -> None:
    _, declared = build(make_eks(storage={"kind": "s3-mountpoint", "bucketName": "team-weights"}))
    assert "aws:s3/bucket:Bucket" not in declared.types()
    (volume,) = declared.of_type("kubernetes:core/v1:PersistentVolume")
    assert volume.inputs["spec"]["csi"]["volumeAttributes"] == {"bucketName": "team-weights"}


# -- provider, outputs, determinism ----------------------------------------------------------


def test_children_use_the_given_aws_provider_and_the_cluster_k8s_provider(p5) -> None:
    cluster, declared = p5
    for resource in declared.resources:
        if resource.type.startswith("aws:"):
            assert "pulumi:providers:aws::aws::" in resource.provider, resource.name
        if resource.type.startswith("kubernetes:"):
            assert "pulumi:providers:kubernetes::llm-test-k8s::" in resource.provider, resource.name
    provider = declared.one("pulumi:providers:kubernetes")
    assert provider.name == "llm-test-k8s" and provider.parent_name == "llm-test"
    assert json.loads(provider.inputs["kubeconfig"])["current-context"] == "llm-test"
    assert cluster.handle.provider is not None


def test_outputs(p5) -> None:
    cluster, declared = p5
    assert declared.resolve(cluster.cluster_name) == "llm-test"
    assert declared.resolve(cluster.vpc_id).startswith("llm-test-network-vpc-")
    subnets = declared.resolve(cluster.private_subnet_ids)
    assert [s.rsplit("-", 1)[0] for s in subnets] == [f"llm-test-network-private-us-east-2{z}" for z in "abc"]
    assert declared.resolve(cluster.oidc_provider_arn).endswith("/llm-test-oidc-provider")
    assert declared.resolve(cluster.handle.kubeconfig) == declared.resolve(cluster.kubeconfig)
    assert declared.one("disagg:cluster:AwsGpuCluster").name == "llm-test"


def test_two_declarations_are_identical(build, dev_eks) -> None:
    def snapshot():
        _, declared = build(dev_eks, "llm-dev")
        return sorted(json.dumps([r.type, r.name, r.parent, r.inputs], sort_keys=True) for r in declared.resources)

    assert snapshot() == snapshot()
