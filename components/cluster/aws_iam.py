"""IAM for the EKS cluster, as pure data: managed policies per role and policy documents.

Least privilege, role by role:

* the control plane role gets ``AmazonEKSClusterPolicy`` only;
* the node role gets what a kubelet needs (``AmazonEKSWorkerNodePolicy``, image pulls from ECR,
  optionally Session Manager) and *not* the CNI policy: the VPC CNI gets its own role through
  IRSA, so pods on the node cannot use the node's credentials to manage network interfaces;
* each CSI driver gets a role for its own service account (IRSA), the S3 one scoped to one bucket.
"""

from __future__ import annotations

import json
from typing import Any

CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly")
NODE_SSM_POLICY = "AmazonSSMManagedInstanceCore"
CNI_POLICY = "AmazonEKS_CNI_Policy"
FSX_CSI_POLICY = "AmazonFSxFullAccess"
"""The policy the FSx for Lustre CSI driver documents for its controller (it creates file systems)."""
CLUSTER_ADMIN_ACCESS_POLICY = "AmazonEKSClusterAdminPolicy"

CNI_SERVICE_ACCOUNT = ("kube-system", "aws-node")
FSX_CSI_SERVICE_ACCOUNT = ("kube-system", "fsx-csi-controller-sa")
S3_CSI_SERVICE_ACCOUNT = ("kube-system", "s3-csi-driver-sa")


def aws_partition(region: str) -> str:
    """The ARN partition of ``region`` (``aws``, ``aws-cn`` or ``aws-us-gov``)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def managed_policy_arn(policy: str, partition: str = "aws") -> str:
    """ARN of the AWS managed IAM policy ``policy``."""
    return f"arn:{partition}:iam::aws:policy/{policy}"


def access_policy_arn(policy: str, partition: str = "aws") -> str:
    """ARN of an EKS access policy (used by access entries, not IAM)."""
    return f"arn:{partition}:eks::aws:cluster-access-policy/{policy}"


def node_policy_arns(partition: str = "aws", ssm: bool = True) -> list[str]:
    """Managed policies of the node role."""
    names = [*NODE_POLICIES, *([NODE_SSM_POLICY] if ssm else [])]
    return [managed_policy_arn(name, partition) for name in names]


def service_trust_policy(service: str) -> str:
    """Trust policy letting an AWS service (``eks.amazonaws.com``, ``ec2.amazonaws.com``) assume a role."""
    return _document(
        [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]
    )


def irsa_trust_policy(oidc_provider_arn: str, issuer_url: str, namespace: str, service_account: str) -> str:
    """Trust policy letting one Kubernetes service account assume a role (IRSA)."""
    issuer = issuer_url.removeprefix("https://")
    return _document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Federated": oidc_provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer}:aud": "sts.amazonaws.com",
                        f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                    }
                },
            }
        ]
    )


def s3_mountpoint_policy(bucket_arn: str) -> str:
    """What Mountpoint for S3 needs on one bucket: list it, read, write and delete its objects."""
    return _document(
        [
            {"Sid": "ListBucket", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [bucket_arn]},
            {
                "Sid": "ReadWriteObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"],
                "Resource": [f"{bucket_arn}/*"],
            },
        ]
    )


def _document(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)
