"""IAM for the EKS cluster, as pure data: managed policies per role and policy documents.

Least privilege, role by role:

* the control plane role gets ``AmazonEKSClusterPolicy`` only;
* the node role gets what a kubelet needs (``AmazonEKSWorkerNodePolicy``, image pulls from ECR,
  optionally Session Manager) and *not* the CNI policy: the VPC CNI gets its own role through
  IRSA, so pods on the node cannot use the node's credentials to manage network interfaces;
* each CSI driver gets a role for its own service account (IRSA), with an inline policy of the
  actions it calls (FSx: file systems only; S3: one bucket) rather than a managed FullAccess policy.
"""

from __future__ import annotations

import json
from typing import Any

CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly")
NODE_SSM_POLICY = "AmazonSSMManagedInstanceCore"
CNI_POLICY = "AmazonEKS_CNI_Policy"
FSX_CSI_ACTIONS = (
    "fsx:CreateFileSystem",
    "fsx:DeleteFileSystem",
    "fsx:DescribeFileSystems",
    "fsx:TagResource",
    "fsx:UpdateFileSystem",
)
"""What the FSx for Lustre CSI controller calls (instead of ``AmazonFSxFullAccess``). Source:
kubernetes-sigs/aws-fsx-csi-driver docs/install.md (commit 5b227125add708cd0b87c76abe1a4c074e71dfc5),
"Using IAM instance profile" policy; pkg/cloud/cloud.go calls exactly Create/Delete/Describe/
UpdateFileSystem. Its S3 data-repository statements (``s3:ListBucket``, the s3.data-source service
role) are left out: this project links no S3 bucket to the file system."""
MAX_METADATA_HOPS = 1
"""IMDSv2 response hop limit of every node: pods (one hop further) cannot read the node role's
credentials; they get their own through IRSA. EKS best practices, "Restrict access to the
instance profile assigned to the worker node". Host-network pods (aws-node, kube-proxy) are not
a hop further and keep IMDS; the FSx CSI node driver, which is not, falls back to the Kubernetes
API for its instance data (aws-fsx-csi-driver pkg/cloud/metadata.go, NewMetadataService, commit
5b227125add708cd0b87c76abe1a4c074e71dfc5)."""
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


def fsx_csi_policy(partition: str = "aws") -> str:
    """Least-privilege policy of the FSx CSI controller: the file-system actions it calls, and the
    FSx service-linked role (created on the account's first file system)."""
    return _document(
        [
            {"Sid": "ManageFileSystems", "Effect": "Allow", "Action": list(FSX_CSI_ACTIONS), "Resource": ["*"]},
            {
                "Sid": "FsxServiceLinkedRole",
                "Effect": "Allow",
                "Action": ["iam:CreateServiceLinkedRole"],
                "Resource": ["*"],
                "Condition": {"StringLike": {"iam:AWSServiceName": ["fsx.amazonaws.com"]}},
            },
        ]
    )


def _document(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)
