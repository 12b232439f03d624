"""Pure parts of the AWS cluster: subnet plan, kubeconfig, IAM documents, names (no mocks)."""

from __future__ import annotations

import ipaddress
import json

import pytest

from components.cluster import aws_iam
from components.cluster.aws import (
    admin_entry_names,
    eks_kubeconfig,
    fsx_storage_class_parameters,
    gpu_zones,
    storage_zone,
)
from components.cluster.aws_node_pool import node_group_capacity_type, node_group_taints, placement_group_name
from components.config.cluster import GpuNodePoolConfig, StorageConfig
from components.config.subnets import plan_subnets

ZONES = ["us-east-2a", "us-east-2b", "us-east-2c"]


def pool(**fields) -> GpuNodePoolConfig:
    return GpuNodePoolConfig.model_validate({"name": "h100", "instanceType": "p5.48xlarge", "availabilityZone": "us-east-2a", **fields})


# -- subnet plan -------------------------------------------------------------------------------


def test_plan_of_a_16_gives_private_19s_and_gpu_and_public_22s() -> None:
    plan = plan_subnets("10.60.0.0/16", ZONES)
    assert [(p.private, p.gpu, p.public) for p in plan.values()] == [
        ("10.60.0.0/19", "10.60.192.0/22", "10.60.224.0/22"),
        ("10.60.32.0/19", "10.60.196.0/22", "10.60.228.0/22"),
        ("10.60.64.0/19", "10.60.200.0/22", "10.60.232.0/22"),
    ]


def test_plan_of_a_20_still_fits_six_zones_without_overlap() -> None:
    zones = [f"us-east-1{z}" for z in "abcdef"]
    plan = plan_subnets("10.0.16.0/20", zones)
    networks = [ipaddress.ip_network(c) for p in plan.values() for c in (p.private, p.gpu, p.public)]
    assert all(n.subnet_of(ipaddress.ip_network("10.0.16.0/20")) for n in networks)
    assert not any(a.overlaps(b) for i, a in enumerate(networks) for b in networks[i + 1 :])
    assert plan["us-east-1a"].private == "10.0.16.0/23"


def test_a_zone_keeps_its_subnets_when_zones_are_added() -> None:
    assert plan_subnets("10.60.0.0/16", ZONES)["us-east-2b"] == plan_subnets("10.60.0.0/16", [*ZONES, "us-east-2d"])["us-east-2b"]


def test_plan_refuses_seven_zones() -> None:
    with pytest.raises(ValueError, match="7 availability zones: the layout has room for 6"):
        plan_subnets("10.0.0.0/16", [f"z{i}" for i in range(7)])


def test_gpu_zones_are_those_pools_are_pinned_to_in_config_order(make_eks, make_pool) -> None:
    config = make_eks(
        gpuNodePools=[
            make_pool(name="b", availabilityZone="us-east-2c"),
            make_pool(name="a", availabilityZone="us-east-2a"),
            make_pool(name="c", availabilityZone="us-east-2a"),
        ]
    )
    assert gpu_zones(config) == ["us-east-2a", "us-east-2c"]
    assert storage_zone(config) == "us-east-2c"
    assert storage_zone(make_eks()) == "us-east-2a"


# -- kubeconfig --------------------------------------------------------------------------------


def test_kubeconfig_uses_aws_eks_get_token() -> None:
    text = eks_kubeconfig("llm-prod", "https://ABC.gr7.us-east-2.eks.amazonaws.com", "Q0E=", "us-east-2")
    config = json.loads(text)
    assert config["current-context"] == "llm-prod"
    assert config["clusters"] == [
        {"name": "llm-prod", "cluster": {"server": "https://ABC.gr7.us-east-2.eks.amazonaws.com", "certificate-authority-data": "Q0E="}}
    ]
    assert config["contexts"] == [{"name": "llm-prod", "context": {"cluster": "llm-prod", "user": "llm-prod"}}]
    (user,) = config["users"]
    assert user["user"]["exec"] == {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "aws",
        "args": ["--region", "us-east-2", "eks", "get-token", "--cluster-name", "llm-prod", "--output", "json"],
        "interactiveMode": "Never",
    }


def test_kubeconfig_is_sorted_indented_text_without_a_token() -> None:
    """The stack output is text: keys sorted and two-space indented, so an unchanged cluster gives
    a byte-identical output (no diff on `pulumi up`), and it embeds no token."""
    text = eks_kubeconfig("c", "https://x", "Q0E=", "us-west-2")
    assert text.splitlines()[:12] == [
        "{",
        '  "apiVersion": "v1",',
        '  "clusters": [',
        "    {",
        '      "cluster": {',
        '        "certificate-authority-data": "Q0E=",',
        '        "server": "https://x"',
        "      },",
        '      "name": "c"',
        "    }",
        "  ],",
        '  "contexts": [',
    ]
    assert [line.strip() for line in text.splitlines() if line.startswith('  "')] == [
        '"apiVersion": "v1",', '"clusters": [', '"contexts": [', '"current-context": "c",', '"kind": "Config",',
        '"preferences": {},', '"users": [',
    ]
    assert "token" not in json.loads(text)["users"][0]["user"]


# -- IAM ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "partition"), [("us-west-2", "aws"), ("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")]
)
def test_partition_of_region(region: str, partition: str) -> None:
    assert aws_iam.aws_partition(region) == partition


def test_managed_policy_arns() -> None:
    """The node role's policies as attached (the component test checks the node role's list)."""
    assert aws_iam.managed_policy_arn("AmazonEKSWorkerNodePolicy") == "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy"
    assert aws_iam.managed_policy_arn("AmazonEC2ContainerRegistryReadOnly", "aws-us-gov") == (
        "arn:aws-us-gov:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
    )
    assert aws_iam.access_policy_arn("AmazonEKSClusterAdminPolicy") == (
        "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
    )


def test_node_role_has_no_cni_policy() -> None:
    assert aws_iam.CNI_POLICY not in aws_iam.NODE_POLICIES


def test_service_trust_policy() -> None:
    assert json.loads(aws_iam.service_trust_policy("eks.amazonaws.com")) == {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }


def test_irsa_trust_policy_is_scoped_to_one_service_account() -> None:
    document = json.loads(
        aws_iam.irsa_trust_policy(
            "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-2.amazonaws.com/id/ABC",
            "https://oidc.eks.us-east-2.amazonaws.com/id/ABC",
            "kube-system",
            "aws-node",
        )
    )
    (statement,) = document["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"] == {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-2.amazonaws.com/id/ABC"}
    assert statement["Condition"] == {
        "StringEquals": {
            "oidc.eks.us-east-2.amazonaws.com/id/ABC:aud": "sts.amazonaws.com",
            "oidc.eks.us-east-2.amazonaws.com/id/ABC:sub": "system:serviceaccount:kube-system:aws-node",
        }
    }


def test_s3_policy_is_scoped_to_the_bucket() -> None:
    document = json.loads(aws_iam.s3_mountpoint_policy("arn:aws:s3:::models"))
    assert [(s["Action"], s["Resource"]) for s in document["Statement"]] == [
        (["s3:ListBucket"], ["arn:aws:s3:::models"]),
        (["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"], ["arn:aws:s3:::models/*"]),
    ]


def test_admin_entry_names_are_role_names_unless_they_clash() -> None:
    assert admin_entry_names(
        [
            "arn:aws:iam::123456789012:role/platform-admins",
            "arn:aws:iam::123456789012:role/team/Admins",
            "arn:aws:iam::210987654321:role/admins",
        ]
    ) == {
        "arn:aws:iam::123456789012:role/platform-admins": "platform-admins",
        "arn:aws:iam::123456789012:role/team/Admins": "123456789012-admins",
        "arn:aws:iam::210987654321:role/admins": "210987654321-admins",
    }


# -- node pools and storage --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "ON_DEMAND"),
        ({"capacityType": "spot", "placementGroup": False}, "SPOT"),
        ({"capacityType": "capacity-block", "capacityReservationId": "cr-0a1b2c3d4e5f60718"}, "CAPACITY_BLOCK"),
    ],
)
def test_capacity_type(fields: dict, expected: str) -> None:
    assert node_group_capacity_type(pool(**fields)) == expected


def test_taint_and_placement_group_name() -> None:
    assert node_group_taints() == [{"key": "nvidia.com/gpu", "effect": "NO_SCHEDULE"}]
    assert placement_group_name("llm-prod", "h100") == "llm-prod-h100"


def test_fsx_storage_class_parameters_are_strings() -> None:
    parameters = fsx_storage_class_parameters(StorageConfig(size_gib=4800, throughput_per_unit=500), "subnet-1", "sg-1")
    assert parameters == {
        "subnetId": "subnet-1",
        "securityGroupIds": "sg-1",
        "deploymentType": "PERSISTENT_2",
        "perUnitStorageThroughput": "500",
        "fileSystemTypeVersion": "2.15",
    }
